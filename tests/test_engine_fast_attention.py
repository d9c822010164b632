"""The fast attention path computes the same frames as diffusers' own attention, and the engine's
torch SLERP is the bridge's reference formula (per token, norm interpolated)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from engine_fixtures import control_sequence, tiny_settings

from sonosteer.bridge.frame_controls import PromptBlend
from sonosteer.bridge.slerp import slerp as reference_slerp
from sonosteer.engine.quantize import FP8_MAX
from sonosteer.engine.slerp import slerp
from sonosteer.engine.steered_engine import SteeredEngine


def test_torch_slerp_is_the_bridge_formula():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(77, 48)), rng.normal(size=(77, 48))
    a[1] = 3.0 * b[1]  # parallel
    a[2] = -b[2]  # opposite
    a[3] = 0.0  # zero norm
    a[4] = 1e-9 * b[4]  # nearly zero
    for t in (0.0, 0.2, 0.5, 0.9, 1.0):
        got = slerp(torch.from_numpy(a), torch.from_numpy(b), t).double().numpy()
        np.testing.assert_allclose(got, reference_slerp(a, b, t), rtol=1e-5, atol=1e-5)


def test_slerp_closed_forms():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.equal(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    torch.testing.assert_close(slerp(a, b, 0.5), torch.tensor([1.0, 1.0]) / math.sqrt(2.0))
    torch.testing.assert_close(slerp(a, b, 1 / 3), torch.tensor([math.cos(math.pi / 6), 0.5]))


@pytest.fixture(scope="module")
def engines(tiny_weights):
    fast = SteeredEngine.from_settings(tiny_settings(tiny_weights, attention="fast"))
    reference = SteeredEngine.from_settings(tiny_settings(tiny_weights, attention="reference"))
    return fast, reference


def test_fast_attention_renders_what_the_reference_renders(engines):
    fast, reference = engines
    assert fast._cross_kv is not None and reference._cross_kv is None
    sequence = control_sequence()
    frozen = sequence[-1]
    frozen.prompt_a = PromptBlend("a harbour at dawn", "a neon arcade", 0.4)  # a frozen blend as destination A
    frozen.prompt_blend = 0.35
    for i, controls in enumerate([*sequence, frozen]):
        fast.apply(controls)
        reference.apply(controls)
        with torch.no_grad():
            x_fast, x_ref = fast.generator.denoise(), reference.generator.denoise()
        rel = float((x_fast - x_ref).norm() / x_ref.norm())
        assert rel < 1e-4, f"frame {i}: x0 differs by {rel:.2e}"
        diff = np.abs(fast.render().astype(int) - reference.render().astype(int))
        assert diff.max() <= 1, f"frame {i}: frames differ by up to {diff.max()}"


def test_prompt_kv_is_projected_once_per_prompt(engines):
    fast, _ = engines
    controls = control_sequence()[0]
    fast.apply(controls)
    misses = fast._prompt_kv.misses
    for blend in (0.1, 0.6, 0.9):  # moving the blend reuses both prompts' K/V
        controls.prompt_blend = blend
        fast.apply(controls)
    assert fast._prompt_kv.misses == misses


def test_unknown_attention_path_is_rejected(tiny_weights):
    with pytest.raises(ValueError, match="attention must be one of fast, reference"):
        tiny_settings(tiny_weights, attention="turbo").validate()


def test_cross_attention_output_scales_bound_every_blend_of_the_pair(engines):
    fast, _ = engines
    controls = control_sequence()[0]
    controls.prompt_a, controls.prompt_b = "a harbour at dawn", "a neon arcade"
    fast.apply(controls)
    kv = fast._cross_kv
    bounds = torch.stack([kv.out_scale(i) for i in range(len(kv.value_columns))]) * FP8_MAX
    observed = torch.zeros_like(bounds)
    with torch.no_grad():
        for t in torch.linspace(0.0, 1.0, 1001):
            kv(t)
            peaks = torch.stack([kv.packed[:, columns].abs().max() for columns in kv.value_columns]).float()
            observed = torch.maximum(observed, peaks)
    # Every blend's V rows (whose convex combinations the attention outputs are) stay within the bound,
    # and the bound is not so loose that float8 would lose precision to it.
    assert bool((observed <= bounds).all())
    assert bool((bounds <= 2.0 * observed).all())


def test_attentions_run_our_kernel_on_cuda_only_where_it_takes_the_head_size():
    from sonosteer.engine.fast_attention import uses_our_kernel

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert uses_our_kernel("triton", cuda, 64) and not uses_our_kernel("triton", cuda, 8)  # SDXL's 64; a tiny model's 8
    assert uses_our_kernel("triton", cpu, 8)  # the op's torch arithmetic takes any head size
    assert not uses_our_kernel("cudnn", cuda, 64) and not uses_our_kernel("flash", cpu, 64)
