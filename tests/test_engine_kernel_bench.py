"""`sonosteer bench kernels` records one frame's calls: every per-frame linear, conv and attention once,
none of the per-prompt ones, with the shapes the architecture implies (the CUDA replay is a GPU job)."""

from __future__ import annotations

from engine_fixtures import control_sequence, tiny_settings
from torch import nn

from sonosteer.engine.kernel_bench import conv_key, linear_key, record_frame
from sonosteer.engine.steered_engine import SteeredEngine


def test_one_frame_records_every_per_frame_call_once(tiny_weights):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64, attention_kernel="cudnn"))
    engine.apply(control_sequence()[0])
    generator = engine.generator
    calls = record_frame(generator)

    per_prompt = {id(m) for m in generator.cross_kv.modules()}  # cross-attention K/V: projected once per prompt
    expected_linears = [m for m in generator.unet.modules() if isinstance(m, nn.Linear) and id(m) not in per_prompt]
    assert sorted(map(id, (m for m, _ in calls.linears))) == sorted(map(id, expected_linears))

    decoder_convs = [m for m in generator.decoder.decoder.modules() if isinstance(m, nn.Conv2d)]
    unet_convs = [m for m in generator.unet.modules() if isinstance(m, nn.Conv2d)]
    assert sorted(map(id, (m for m, _ in calls.convs))) == sorted(map(id, unet_convs + decoder_convs))

    from diffusers.models.attention_processor import Attention

    attentions = [m for m in generator.unet.modules() if isinstance(m, Attention)]
    assert len(calls.attentions) == len(attentions)
    latent_tokens = (64 // 8) ** 2
    for q, k, v in calls.attentions:  # (batch, heads, tokens, head_dim); cross-attention keys are the 77 prompt tokens
        assert q[0] == 1 and q[2] in {latent_tokens // 4**i for i in range(4)} and k == v
        assert k[2] in {q[2], 77}
    assert sum(k[2] == 77 for _, k, _ in calls.attentions) == len(attentions) // 2

    fused_qkv = [(m, s) for m, s in calls.linears if m.out_features == 3 * m.in_features and m.bias is None]
    assert fused_qkv and all(linear_key(m, s)[0] == s[0] * s[1] for m, s in fused_qkv)  # M = batch x tokens
    first_conv, shape = calls.convs[0]
    assert conv_key(first_conv, shape) == (1, 4, first_conv.out_channels, 8, 8, 3, 1)  # conv_in on the latent


def test_kernel_names_are_categorised_by_who_made_them():
    from sonosteer.engine.kernel_profile import categorize

    # Inductor's fused epilogue after a convolution is Triton work, not cuDNN's.
    assert categorize("triton_poi_fused_convolution_relu_3").startswith("Triton pointwise")
    assert categorize("triton_per_fused_add_native_layer_norm_7").startswith("Triton reduction")
    assert categorize("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc") == "convolution"
    assert categorize("nvjet_hsh_64x64_64x7_2x1_v_bz_coopA_NNN") == "GEMM"
    assert categorize("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3") == "attention"
    assert categorize("Memset (Device)") == "memset / copy"
    assert categorize("_geglu_fp8_kernel").startswith("fused float8 GEGLU")
    assert categorize("_geglu_fp8_tma_kernel").startswith("fused float8 GEGLU")
    assert categorize("_linear_fp8_tma_kernel").startswith("float8 linear (ours")  # not "GEMM": it is ours
    # An inductor kernel named after the op whose input it makes is still inductor's.
    assert categorize("triton_per_fused__to_copy_clamp_linear_fp8_tma_native_layer_norm_93").startswith("Triton reduction")
