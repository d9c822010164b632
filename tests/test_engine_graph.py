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


def test_inductor_options_are_checked_against_this_torch():
    from sonosteer.engine.compiling import check_inductor_options

    check_inductor_options((("conv_1x1_as_mm", True), ("triton.cudagraphs", False)))  # both exist
    with pytest.raises(ValueError, match="unknown inductor option 'triton.no_such_setting'"):
        check_inductor_options((("conv_1x1_as_mm", True), ("triton.no_such_setting", True)))
    with pytest.raises(ValueError, match="'no_such_setting'"):
        check_inductor_options((("no_such_setting", 1),))
