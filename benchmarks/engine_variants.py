"""Speed variants of the steered one-step SDXL-Turbo frame on CUDA, measured side by side.

Standalone exploration for the <= 7 ms issue: full-size SDXL UNet + TAESD architectures with
random fp16 weights (timing does not depend on weight values), four steered blocks, 512x512,
batch 1. Each variant is compiled, timed (CUDA events, median and p99), and compared with the
fp16 eager reference: relative error of x0 and mean absolute difference of the uint8 frame.

    python benchmarks/engine_variants.py --variants base,fast,fast+fp8 [--profile]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

SDXL_UNET = dict(
    act_fn="silu", addition_embed_type="text_time", addition_embed_type_num_heads=64,
    addition_time_embed_dim=256, attention_head_dim=[5, 10, 20], block_out_channels=[320, 640, 1280],
    cross_attention_dim=2048, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    in_channels=4, layers_per_block=2, mid_block_type="UNetMidBlock2DCrossAttn", norm_eps=1e-5,
    norm_num_groups=32, out_channels=4, projection_class_embeddings_input_dim=2816, sample_size=64,
    transformer_layers_per_block=[1, 2, 10], up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    use_linear_projection=True,
)
TAESD = dict(
    in_channels=3, out_channels=3, encoder_block_out_channels=[64, 64, 64, 64],
    decoder_block_out_channels=[64, 64, 64, 64], act_fn="relu", latent_channels=4,
    upsampling_scaling_factor=2, num_encoder_blocks=[1, 3, 3, 3], num_decoder_blocks=[3, 3, 3, 1],
    latent_magnitude=3, latent_shift=0.5, scaling_factor=1.0,
)
BLOCK_PATHS = ["down_blocks.2.attentions.1", "mid_block.attentions.0", "up_blocks.0.attentions.0", "up_blocks.0.attentions.1"]
SIGMA = 14.6146
TOKENS = 77


class Steered(nn.Module):
    def __init__(self, inner: nn.Module, channels: int, hw: int):
        super().__init__()
        self.inner = inner
        g = torch.Generator().manual_seed(channels)
        self.register_buffer("direction", F.normalize(torch.randn(channels, generator=g), dim=0))
        self.register_buffer("strength", torch.zeros(()))
        self.register_buffer("amap", torch.ones(1, 1, hw, hw))

    def forward(self, hidden_states, *args, **kwargs):
        out = self.inner(hidden_states, *args, **kwargs)[0]
        out = out + (self.strength * self.amap) * self.direction.view(1, -1, 1, 1)
        return (out,)


class FusedSelfAttnProcessor:
    """Self-attention with one QKV GEMM (attn.to_qkv from diffusers' fuse_projections)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        b, n, _ = hidden_states.shape
        q, k, v = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        hd = q.shape[-1] // attn.heads
        q, k, v = (t.view(b, n, attn.heads, hd).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, attn.heads * hd)
        return attn.to_out[0](out)


class CachedCrossAttnProcessor:
    """Cross-attention whose K and V come from the attention's `kv` buffer (filled outside the graph).

    K = E W_k^T is linear in the text embedding E, and a SLERP of two embeddings is a per-token
    linear combination, so blending precomputed K/V of both prompts equals projecting the blend.
    """

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        b, n, _ = hidden_states.shape
        q = attn.to_q(hidden_states)
        hd = q.shape[-1] // attn.heads
        k, v = attn.kv_cache.unbind(0)  # each (tokens, inner), strided views of the packed buffer
        q = q.view(b, n, attn.heads, hd).transpose(1, 2)
        k = k.view(1, -1, attn.heads, hd).transpose(1, 2)
        v = v.view(1, -1, attn.heads, hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, attn.heads * hd)
        return attn.to_out[0](out)


class CrossKV:
    """Packed K/V of every cross-attention: per-prompt precompute, per-frame blend (outside the graph)."""

    def __init__(self, unet):
        from diffusers.models.attention_processor import Attention

        self.attns = [m for m in unet.modules() if isinstance(m, Attention) and m.is_cross_attention]
        inner = [a.to_k.out_features for a in self.attns]
        self.offsets = [0]
        for d in inner:
            self.offsets.append(self.offsets[-1] + 2 * d)
        p = next(unet.parameters())
        # token-major: one row per token, so a per-token blend weight broadcasts along rows
        self.packed = torch.zeros(TOKENS, self.offsets[-1], device=p.device, dtype=p.dtype)
        for a, off, d in zip(self.attns, self.offsets, inner):
            a.register_buffer("kv_cache", self.packed[:, off:off + 2 * d].unflatten(1, (2, d)).transpose(0, 1), persistent=False)
            a.set_processor(CachedCrossAttnProcessor())

    @torch.no_grad()
    def project(self, emb):
        """Packed K/V (tokens, total) of one prompt embedding (1, tokens, 2048)."""
        cols = []
        for a in self.attns:
            cols += [a.to_k(emb[0]), a.to_v(emb[0])]
        return torch.cat(cols, dim=1)

    @torch.no_grad()
    def blend(self, kv_a, kv_b, w_a, w_b):
        """packed = w_a * kv_a + w_b * kv_b with per-token weights (tokens,)."""
        torch.add(kv_a * w_a[:, None].to(kv_a.dtype), kv_b * w_b[:, None].to(kv_b.dtype), out=self.packed)


def slerp_weights(a, b, t):
    """Per-token SLERP weights between two (1, tokens, dim) embeddings (linear where nearly parallel)."""
    a32, b32 = a[0].float(), b[0].float()
    cos = (F.normalize(a32, dim=-1) * F.normalize(b32, dim=-1)).sum(-1).clamp(-1, 1)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    lin = so < 1e-4
    w_a = torch.where(lin, torch.full_like(so, 1 - t), torch.sin((1 - t) * omega) / so.clamp_min(1e-8))
    w_b = torch.where(lin, torch.full_like(so, t), torch.sin(t * omega) / so.clamp_min(1e-8))
    return w_a, w_b


def build(dtype):
    from diffusers import AutoencoderTiny, UNet2DConditionModel

    with torch.device("cuda"):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**SDXL_UNET).to(dtype).eval()
        torch.manual_seed(1)
        vae = AutoencoderTiny(**TAESD).to(dtype).eval()
    for path in BLOCK_PATHS:
        parent_path, name = path.rsplit(".", 1)
        parent = unet.get_submodule(parent_path)
        parent._modules[name] = Steered(parent._modules[name], 1280, 16).to("cuda", dtype)
    return unet, vae


class Frame(nn.Module):
    def __init__(self, unet, decoder, dtype):
        super().__init__()
        self.unet, self.decoder = unet, decoder
        dev = "cuda"
        g = torch.Generator(device=dev).manual_seed(7)
        self.register_buffer("latent", torch.zeros(1, 4, 64, 64, device=dev, dtype=dtype))
        self.register_buffer("noise", torch.randn(1, 4, 64, 64, device=dev, dtype=dtype, generator=g))
        self.register_buffer("emb", torch.randn(1, TOKENS, 2048, device=dev, dtype=dtype, generator=g))
        self.register_buffer("pooled", torch.randn(1, 1280, device=dev, dtype=dtype, generator=g))
        self.register_buffer("time_ids", torch.tensor([[512, 512, 0, 0, 512, 512]], device=dev, dtype=dtype))
        self.register_buffer("t", torch.tensor([999], device=dev))

    def x0(self):
        noisy = self.latent + self.noise * SIGMA
        scaled = noisy * (1.0 / math.sqrt(SIGMA**2 + 1))
        eps = self.unet(scaled, self.t, encoder_hidden_states=self.emb,
                        added_cond_kwargs={"text_embeds": self.pooled, "time_ids": self.time_ids}, return_dict=False)[0]
        return noisy - SIGMA * eps

    def forward(self):
        x0 = self.x0()
        img = self.decoder(x0)
        return x0, (img.clamp(-1, 1) * 127.5 + 127.5).to(torch.uint8)[0].permute(1, 2, 0)


def time_fn(fn, iters=300, warmup=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def kernel_breakdown(fn, steps=10):
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    per = defaultdict(lambda: [0.0, 0])
    for evt in prof.events():
        if evt.device_type == torch.autograd.DeviceType.CUDA:
            per[evt.name][0] += evt.device_time / 1000.0 / steps
            per[evt.name][1] += 1
    total = sum(v[0] for v in per.values())
    print(f"  kernel time {total:.2f} ms/frame, {sum(v[1] for v in per.values()) // steps} kernels/frame")
    for name, (ms, cnt) in sorted(per.items(), key=lambda kv: -kv[1][0])[:12]:
        print(f"   {ms:7.3f} ms x{cnt // steps:4d}  {name[:100]}")


def apply_variant(frame, unet, parts, kv_state):
    if "flash" in parts or "fast" in parts:
        torch.backends.cuda.enable_cudnn_sdp(False)
    if "fast" in parts:
        from diffusers.models.attention_processor import Attention

        for m in unet.modules():
            if isinstance(m, Attention) and not m.is_cross_attention:
                m.fuse_projections()
                del m.to_q, m.to_k, m.to_v
                m.set_processor(FusedSelfAttnProcessor())
        kv = CrossKV(unet)
        kv_a, kv_b = kv.project(kv_state["emb_a"]), kv.project(kv_state["emb_b"])
        kv.blend(kv_a, kv_b, *kv_state["weights"])
        for a in kv.attns:
            del a.to_k, a.to_v
    if "cl" in parts:
        frame.to(memory_format=torch.channels_last)
    if "fp8" in parts:
        # PerRow needs bf16 weights; with fp16 weights torchao offers per-tensor scales
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerTensor, quantize_

        quantize_(unet, Float8DynamicActivationFloat8WeightConfig(granularity=PerTensor()),
                  filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and m.in_features >= 640 and m.out_features >= 640)
    if "cdt" in parts:
        import torch._inductor.config as ic

        ic.coordinate_descent_tuning = True
        ic.conv_1x1_as_mm = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="base,fast")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only-compile", default="", help="internal: compile one variant, print its compile time")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    dtype = torch.float16
    print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
    results = {}
    variants = [args.only_compile] if args.only_compile else args.variants.split(",")
    ref = None
    for variant in variants:
        parts = set(variant.split("+"))
        torch._dynamo.reset()
        torch.backends.cuda.enable_cudnn_sdp(True)
        unet, vae = build(dtype)
        frame = Frame(unet, vae.decoder, dtype)
        # two prompts blended at t=0.3, steering on in two blocks: the reference does the same the plain way
        g = torch.Generator(device="cuda").manual_seed(11)
        emb_b = torch.randn(1, TOKENS, 2048, device="cuda", dtype=dtype, generator=g)
        w_a, w_b = slerp_weights(frame.emb, emb_b, 0.3)
        emb_blend = (w_a[:, None] * frame.emb[0].float() + w_b[:, None] * emb_b[0].float()).to(dtype)[None]
        kv_state = {"emb_a": frame.emb.clone(), "emb_b": emb_b, "weights": (w_a, w_b)}
        frame.emb.copy_(emb_blend)
        unet.get_submodule(BLOCK_PATHS[0]).strength.fill_(40.0)
        unet.get_submodule(BLOCK_PATHS[3]).strength.fill_(-25.0)
        with torch.inference_mode():
            if ref is None and not args.only_compile:
                x0_ref, img_ref = frame()
                ref = (x0_ref.float().clone(), img_ref.clone())
                print(f"reference x0 norm {x0_ref.float().norm():.3f}, finite {bool(torch.isfinite(x0_ref).all())}", flush=True)
            apply_variant(frame, unet, parts, kv_state)
            mode = "max-autotune" if "ma" in parts else "reduce-overhead"
            t0 = time.perf_counter()
            cf = torch.compile(frame, fullgraph=True, mode=mode, dynamic=False)
            for _ in range(3):
                x0, img = cf()
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - t0
            if args.only_compile:
                print(f"COMPILE_S {compile_s:.1f}")
                return
            x0, img = (t.clone() for t in cf())
            rel = float((x0.float() - ref[0]).norm() / ref[0].norm())
            mad = float((img.float() - ref[1].float()).abs().mean())
            med, p99 = time_fn(cf)
            mem = torch.cuda.max_memory_allocated() / 1e9
            results[variant] = dict(median_ms=med, p99_ms=p99, x0_rel_err=rel, frame_mad=mad, compile_s=compile_s, mem_gb=mem)
            print(f"VARIANT {variant}: median {med:.2f} ms p99 {p99:.2f} ms | x0 rel err {rel:.4f} frame MAD {mad:.2f} | compile {compile_s:.0f} s | mem {mem:.1f} GB", flush=True)
            if args.profile:
                torch._dynamo.reset()
                kernel_breakdown(torch.compile(frame, fullgraph=True, mode="default", dynamic=False))
        del unet, vae, frame, cf
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
