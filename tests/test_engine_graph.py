"""The generator is one graph: torch.compile(fullgraph=True) captures it (no hooks, no data-dependent
branches), and in-place updates reach the compiled graph without recompiling (checked on CPU with the
aot_eager backend; tests/test_engine_gpu.py checks inductor + CUDA graphs on a GPU)."""

from __future__ import annotations

import os
import numpy as np
import pytest
import torch
from engine_fixtures import control_sequence, tiny_settings

from sonosteer.engine.steered_engine import SteeredEngine


def test_full_graph_capture_follows_in_place_updates_without_recompiling(tiny_weights):
    graph = SteeredEngine.from_settings(
        tiny_settings(tiny_weights, height=64, width=64, compile=True, compile_backend="aot_eager")
    )
    eager = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    assert graph.label == "SDXL-Turbo, compiled, float32 on CPU"
    previous = None
    with torch._dynamo.config.patch(error_on_recompile=True):
        for controls in control_sequence():
            graph.apply(controls)
            eager.apply(controls)
            frame = graph.render().copy()
            assert np.array_equal(frame, eager.render())
            assert previous is None or not np.array_equal(frame, previous), "each update must change the frame"
            previous = frame


def test_compile_cache_goes_to_the_configured_folder_unless_the_user_chose_one(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from sonosteer.engine.compiling import use_compile_cache

    ours = tmp_path / "ours"
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    use_compile_cache(ours)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(ours) and ours.is_dir()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what inductor writes on its first look
    use_compile_cache(ours)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(ours)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "users"))
    use_compile_cache(ours)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "users")


def test_ops_fingerprint_follows_the_op_files_content(tmp_path):
    from sonosteer.engine.compiling import ops_fingerprint

    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("op(x: Tensor) -> Tensor")
    second.write_text("fake(x): return x.new_empty(x.shape)")
    key = ops_fingerprint([first, second])
    assert key == ops_fingerprint([first, second]) and len(key) == 12
    first.write_text("op(x: Tensor, split: int = 1) -> Tensor")  # a schema change: compiled calls no longer fit
    assert ops_fingerprint([first, second]) != key


def test_op_modules_are_every_engine_file_that_registers_an_op():
    from pathlib import Path

    import sonosteer.engine as engine
    from sonosteer.engine.compiling import OP_MODULES

    folder = Path(engine.__file__).parent
    registering = {path.stem for path in folder.glob("*.py") if 'custom_op("sonosteer::' in path.read_text()}
    assert registering == set(OP_MODULES)


def test_the_compiled_engine_keeps_its_cache_per_version_of_our_ops(tiny_weights, tmp_path, monkeypatch):
    from sonosteer.engine.compiling import compile_cache_folder

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    settings = tiny_settings(
        tiny_weights, height=64, width=64, compile=True, compile_backend="aot_eager", compile_cache_dir=tmp_path
    )
    SteeredEngine.from_settings(settings)
    folder = compile_cache_folder(settings)
    assert folder.parent == tmp_path and folder.name.startswith("ops-")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(folder) and folder.is_dir()


def test_inductor_options_are_checked_against_this_torch():
    from sonosteer.engine.compiling import check_inductor_options

    check_inductor_options((("conv_1x1_as_mm", True), ("triton.cudagraphs", False)))  # both exist
    with pytest.raises(ValueError, match="unknown inductor option 'triton.no_such_setting'"):
        check_inductor_options((("conv_1x1_as_mm", True), ("triton.no_such_setting", True)))
    with pytest.raises(ValueError, match="'no_such_setting'"):
        check_inductor_options((("no_such_setting", 1),))
