"""The generator is one graph: torch.compile(fullgraph=True) captures it (no hooks, no data-dependent
branches), and in-place updates reach the compiled graph without recompiling (checked on CPU with the
aot_eager backend; tests/test_engine_gpu.py checks inductor + CUDA graphs on a GPU)."""

from __future__ import annotations

import numpy as np
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
