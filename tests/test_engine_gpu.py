"""On a CUDA GPU: the compiled CUDA-graph engine (inductor; one torch.cuda.graph by default, inductor's
graph trees as the alternative) matches eager within fp16 tolerance after in-place updates of strength,
mask, feature, prompt blend, noise angle, prompts and seeds; frames handed out survive the next
replays; nvJPEG frames decode to the rendered frame; the fp8 mode compiles to what it computes eagerly;
the captured kernels launched one by one (for profiling) compute the replayed frame.
Run with `python -m pytest -m gpu tests/test_engine_gpu.py`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_fixtures import control_sequence, tiny_settings

import sonosteer.engine.steered_engine as steered_engine
from sonosteer.engine.quantize import Fp8Linear, quantize_fp8
from sonosteer.engine.steered_engine import SteeredEngine

COMMON = {"device": "cuda", "dtype": "float16", "height": 512, "width": 512}

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def engines(tiny_weights, tmp_path_factory):
    cache = tmp_path_factory.mktemp("inductor-cache")
    graph = SteeredEngine.from_settings(tiny_settings(tiny_weights, compile=True, compile_cache_dir=cache, **COMMON))
    eager = SteeredEngine.from_settings(tiny_settings(tiny_weights, compile=False, **COMMON))
    graph.warmup()
    return graph, eager


def _matches_eager_after_in_place_updates(graph, eager):
    previous = previous_reference = None
    for i, controls in enumerate(control_sequence()):
        graph.apply(controls)
        eager.apply(controls)
        frame = graph.render().astype(np.int16)
        reference = eager.render().astype(np.int16)
        diff = np.abs(frame - reference)
        print(f"frame {i}: compiled vs eager max {diff.max()}, mean {diff.mean():.3f}")
        assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8, f"frame {i} differs from eager"
        if previous is not None:  # a stale graph would replay the previous frame bit for bit
            assert not np.array_equal(frame, previous), f"frame {i}: the update did not reach the CUDA graph"
            assert np.abs(frame - previous_reference).mean() > diff.mean(), f"frame {i} is closer to the old frame"
        previous, previous_reference = frame, reference
    assert {"gpu", "d2h", "apply"} <= set(graph.last_timings_ms)


def test_cuda_graph_matches_eager_after_in_place_updates(engines):
    graph, eager = engines
    assert graph.label.startswith("SDXL-Turbo, CUDA graph") and graph.settings.graph_capture == "manual"
    _matches_eager_after_in_place_updates(graph, eager)


def test_inductor_graph_trees_match_eager_too(engines, tiny_weights, tmp_path):
    _, eager = engines
    trees = SteeredEngine.from_settings(
        tiny_settings(tiny_weights, compile=True, compile_cache_dir=tmp_path, graph_capture="trees", **COMMON)
    )
    trees.warmup()
    _matches_eager_after_in_place_updates(trees, eager)
    trees.close()


def test_gpu_jpeg_frames_decode_to_the_rendered_frame(engines):
    simplejpeg = pytest.importorskip("simplejpeg")
    graph, _ = engines
    if not graph.encodes_jpeg:
        pytest.skip(graph.jpeg_reason)
    for controls in control_sequence()[:3]:
        graph.apply(controls)
        pixels = graph.render().astype(np.int16)
        jpeg = graph.render_jpeg(90)
        assert jpeg[:2] == b"\xff\xd8" and 5_000 < len(jpeg) < 400_000
        decoded = simplejpeg.decode_jpeg(jpeg).astype(np.int16)
        assert decoded.shape == pixels.shape
        # As close to the frame as libjpeg-turbo gets at the same quality (4:2:0), with a little slack.
        cpu = simplejpeg.encode_jpeg(pixels.astype(np.uint8), quality=90, colorspace="RGB", colorsubsampling="420")
        cpu_error = np.abs(simplejpeg.decode_jpeg(cpu).astype(np.int16) - pixels).mean()
        assert np.abs(decoded - pixels).mean() < 1.5 * cpu_error + 0.5
    assert graph.last_timings_ms["d2h"] == 0.0 and graph.last_timings_ms["jpeg"] > 0.0


def test_fp8_mode_compiles_to_what_it_computes_eagerly(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(steered_engine, "quantize_fp8", lambda unet, **options: quantize_fp8(unet, min_features=32, **options))
    settings = {"quantize": "fp8", **COMMON}
    graph = SteeredEngine.from_settings(tiny_settings(tiny_weights, compile=True, compile_cache_dir=tmp_path, **settings))
    eager = SteeredEngine.from_settings(tiny_settings(tiny_weights, compile=False, **settings))
    assert any(isinstance(m, Fp8Linear) for m in graph.generator.unet.modules())
    graph.warmup()
    _matches_eager_after_in_place_updates(graph, eager)


def test_frames_handed_out_survive_replays(engines):
    graph, _ = engines
    controls = control_sequence()
    graph.apply(controls[1])
    first = graph.render()
    kept = first.copy()
    for c in controls[2 : 2 + graph.ring_size - 1]:
        graph.apply(c)
        graph.render()
    assert np.array_equal(first, kept)


def test_kernels_launched_one_by_one_compute_the_captured_frame(engines):
    """The profiler's path (the captured function called directly) renders what the CUDA graph replays."""
    graph, _ = engines
    graph.apply(control_sequence()[3])
    replayed = graph._replay().float()  # uint8 RGB
    launched = graph.launch_kernels().float()
    assert replayed.shape == launched.shape
    assert (replayed - launched).abs().max().item() <= 1, "launched kernels differ from the CUDA graph"
    assert replayed.std().item() > 1  # a real frame, not an empty buffer
