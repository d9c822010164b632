"""Inductor's heuristics with persistent rows up to 2048 elements: the decision itself, the compile
wrapper that installs it, and (on a GPU) the 1280-wide layer norm compiling to one single-pass kernel."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sympy
import torch
from torch._inductor.choices import InductorChoices
from torch._inductor.runtime.hints import ReductionHint
from torch._inductor.virtualized import V

from sonosteer.engine.inductor_choices import (
    PERSISTENT_ROW_LIMIT,
    PersistentRowChoices,
    compiling_with_persistent_rows,
)


@dataclass
class _Features:
    """What the heuristics read of inductor's SIMDKernelFeatures (a kernel over 256 rows)."""

    reduction_numel: sympy.Expr
    hint: ReductionHint
    numel: sympy.Expr = sympy.Integer(256)

    def get_reduction_hint(self) -> ReductionHint:
        return self.hint


class _Graph:
    """The graph handler inductor's default heuristic asks about sizes: known when they are numbers."""

    class sizevars:  # noqa: N801 - mirrors V.graph.sizevars
        @staticmethod
        def statically_known_leq(left: sympy.Expr, right: int) -> bool:
            return bool(left.is_number and int(left) <= right)

        @staticmethod
        def optimization_hint(size: sympy.Expr) -> int:
            return int(size)


def _persistent(numel: sympy.Expr | int, hint: ReductionHint = ReductionHint.INNER, cooperative: bool = False) -> bool:
    features = _Features(sympy.sympify(numel), hint)
    with V.set_graph_handler(_Graph()):
        return PersistentRowChoices.should_use_persistent_reduction(features, cooperative)


def test_rows_up_to_the_limit_reduce_in_one_pass_and_wider_rows_keep_inductors_choice():
    assert PERSISTENT_ROW_LIMIT == 2048
    assert _persistent(1280) and _persistent(2048)  # SDXL's 1280-wide layer norms; inductor's own limit is 1024
    assert not _persistent(2049) and not _persistent(40960)  # a group norm's groups stay looped
    assert not _persistent(1280, cooperative=True)  # split over blocks: not a single-pass row
    assert not _persistent(1280, hint=ReductionHint.DEFAULT)  # column-like reductions: inductor decides
    assert _persistent(1024) and _persistent(64, hint=ReductionHint.DEFAULT)  # inductor's own persistent ones stay


def test_symbolic_rows_are_left_to_inductor():
    assert not _persistent(sympy.Symbol("s0", positive=True, integer=True))


def test_the_compile_wrapper_installs_the_heuristics_only_while_it_runs():
    seen = []
    call = compiling_with_persistent_rows(lambda: seen.append(type(V.choices)) or len(seen))
    before = type(V.choices)
    assert call() == 1 and call() == 2
    assert seen == [PersistentRowChoices, PersistentRowChoices]
    assert type(V.choices) is before and before is not PersistentRowChoices
    assert issubclass(PersistentRowChoices, InductorChoices)
    assert PersistentRowChoices().uuid().endswith(str(PERSISTENT_ROW_LIMIT))  # inductor's cache key changes with the limit


class _RowNorm(torch.nn.Module):
    """An argument-free generator like the engine's: a layer norm over a buffer of 1280-wide rows."""

    def __init__(self):
        super().__init__()
        self.register_buffer("rows", torch.randn(4, 1280))

    def forward(self) -> torch.Tensor:
        return torch.nn.functional.layer_norm(self.rows, (1280,))


@pytest.fixture(scope="module")
def recorded() -> dict:
    """What a compile backend registered as "sonosteer_recorder" saw at its last compile: the heuristics in
    force and the inductor options it was given."""
    from torch._dynamo.backends.registry import register_backend

    seen: dict = {}

    def recorder(gm, example_inputs, options=None):
        seen.update(choices=type(V.choices), options=options or {})
        return gm.forward

    register_backend(name="sonosteer_recorder")(recorder)
    return seen


@pytest.mark.parametrize("persistent_norms", [True, False])
def test_the_engine_compiles_under_these_heuristics_with_them_in_the_cache_key(recorded, persistent_norms):
    from sonosteer.engine.compiling import compile_generator
    from sonosteer.engine.settings import EngineSettings

    recorded.clear()
    torch._dynamo.reset()
    settings = EngineSettings(compile_backend="sonosteer_recorder", graph_capture="trees", persistent_norms=persistent_norms)
    generator = _RowNorm()
    generate = compile_generator(generator, settings, True, [generator.rows])  # as graphed on CUDA
    torch.testing.assert_close(generate(), torch.nn.functional.layer_norm(generator.rows, (1280,)))
    assert (recorded["choices"] is PersistentRowChoices) == persistent_norms
    assert (recorded["options"].get("inductor_choices_class") is PersistentRowChoices) == persistent_norms
    assert type(V.choices) is not PersistentRowChoices  # only while compiling


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_1280_wide_layer_norm_compiles_to_one_single_pass_kernel():
    from torch._inductor.utils import run_and_get_code

    norm = torch.nn.LayerNorm(1280, device="cuda", dtype=torch.float16)
    x, residual = (torch.randn(256, 1280, device="cuda", dtype=torch.float16) for _ in range(2))

    def add_norm(a, b):
        return norm(a + b)

    codes = {}
    for name, wrap in (("default", lambda f: f), ("ours", compiling_with_persistent_rows)):
        torch._dynamo.reset()
        compiled = torch.compile(add_norm, fullgraph=True, dynamic=False)
        with torch._inductor.config.patch(fx_graph_cache=False):  # both compile: neither reuses the other's kernels
            out, code = run_and_get_code(wrap(lambda: compiled(x, residual)))
        torch.testing.assert_close(out, norm(x + residual), atol=2e-3, rtol=2e-3)
        codes[name] = "\n".join(code)
    assert "triton_red_" in codes["default"] and "triton_per_" not in codes["default"], codes["default"][-3000:]
    assert "triton_per_" in codes["ours"] and "triton_red_" not in codes["ours"], codes["ours"][-3000:]
