"""Where does the one-step SDXL-Turbo frame spend its time on the GPU? (exploration for the speed issue)

Standalone: full-size SDXL UNet + TAESD architectures with random fp16 weights (timing does not
depend on weight values), four steered blocks as plain tensor math, 512x512, batch 1.
Prints eager and compiled ms/frame and a kernel-time breakdown of the compiled graph.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from collections import defaultdict

import torch
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


class Steered(nn.Module):
    def __init__(self, inner: nn.Module, channels: int, hw: int):
        super().__init__()
        self.inner = inner
        self.register_buffer("direction", torch.randn(channels))
        self.register_buffer("strength", torch.zeros(()))
        self.register_buffer("amap", torch.ones(1, 1, hw, hw))

    def forward(self, hidden_states, *args, **kwargs):
        out = self.inner(hidden_states, *args, **kwargs)[0]
        out = out + (self.strength * self.amap) * self.direction.view(1, -1, 1, 1)
        return (out,)


def build(dtype, channels_last=False):
    from diffusers import AutoencoderTiny, UNet2DConditionModel

    with torch.device("cuda"):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**SDXL_UNET).to(dtype).eval()
        vae = AutoencoderTiny(**TAESD).to(dtype).eval()
    for path in BLOCK_PATHS:
        parent_path, name = path.rsplit(".", 1)
        parent = unet.get_submodule(parent_path)
        parent._modules[name] = Steered(parent._modules[name], 1280, 16).to("cuda", dtype)
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
        vae = vae.to(memory_format=torch.channels_last)
    return unet, vae


class Frame(nn.Module):
    def __init__(self, unet, vae, dtype):
        super().__init__()
        self.unet, self.decoder = unet, vae.decoder
        self.sigma = 14.6146
        dev = "cuda"
        self.register_buffer("latent", torch.zeros(1, 4, 64, 64, device=dev, dtype=dtype))
        self.register_buffer("noise", torch.randn(1, 4, 64, 64, device=dev, dtype=dtype))
        self.register_buffer("emb", torch.randn(1, 77, 2048, device=dev, dtype=dtype))
        self.register_buffer("pooled", torch.randn(1, 1280, device=dev, dtype=dtype))
        self.register_buffer("time_ids", torch.tensor([[512, 512, 0, 0, 512, 512]], device=dev, dtype=dtype))
        self.register_buffer("t", torch.tensor([999], device=dev))

    def forward(self):
        noisy = self.latent + self.noise * self.sigma
        scaled = noisy / math.sqrt(self.sigma**2 + 1)
        eps = self.unet(scaled, self.t, encoder_hidden_states=self.emb,
                        added_cond_kwargs={"text_embeds": self.pooled, "time_ids": self.time_ids}, return_dict=False)[0]
        x0 = noisy - self.sigma * eps
        img = self.decoder(x0)
        return (img.clamp(-1, 1) * 127.5 + 127.5).to(torch.uint8)[0].permute(1, 2, 0)


def time_fn(fn, iters=200, warmup=20):
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


def categorize(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("flash", "fmha", "attn", "attention", "sdpa")):
        return "attention"
    if any(k in n for k in ("conv", "implicit_gemm", "winograd", "fprop", "dgrad")):
        return "conv"
    if any(k in n for k in ("gemm", "nvjet", "cutlass", "xmma", "sm90", "matmul", "mm_")):
        return "gemm"
    if "triton" in n:
        if "red" in n or "per_fused" in n:
            return "triton reduction (norms)"
        return "triton pointwise"
    if "norm" in n:
        return "norm"
    return "other"


def profile(fn, label, steps=10):
    from torch.profiler import ProfilerActivity, profile as tprof

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with tprof(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    per_kernel = defaultdict(lambda: [0.0, 0])
    for evt in prof.events():
        if evt.device_type == torch.autograd.DeviceType.CUDA:
            per_kernel[evt.name][0] += evt.device_time / 1000.0 / steps
            per_kernel[evt.name][1] += 1
    total = sum(v[0] for v in per_kernel.values())
    cats = defaultdict(lambda: [0.0, 0])
    for name, (ms, cnt) in per_kernel.items():
        c = categorize(name)
        cats[c][0] += ms
        cats[c][1] += cnt // steps
    print(f"\n[{label}] kernel time per frame {total:.2f} ms, kernels per frame {sum(v[1] for v in per_kernel.values()) // steps}")
    for c, (ms, cnt) in sorted(cats.items(), key=lambda kv: -kv[1][0]):
        print(f"  {c:28s} {ms:7.3f} ms  {cnt:5d} launches")
    print("  top kernels:")
    for name, (ms, cnt) in sorted(per_kernel.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"   {ms:7.3f} ms x{cnt // steps:4d}  {name[:110]}")
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="eager,compiled,profile")
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), flush=True)
    dtype = torch.float16
    t0 = time.perf_counter()
    unet, vae = build(dtype, args.channels_last)
    frame = Frame(unet, vae, dtype)
    print(f"built in {time.perf_counter() - t0:.1f} s; params {sum(p.numel() for p in unet.parameters()) / 1e9:.2f} B", flush=True)
    results = {}
    steps = args.steps.split(",")
    with torch.inference_mode():
        if "eager" in steps:
            results["eager"] = time_fn(frame, iters=50, warmup=5)
            print("eager", results["eager"], flush=True)
            x0_split = {}
            results["unet_eager"] = time_fn(lambda: frame.unet(frame.latent, frame.t, encoder_hidden_states=frame.emb, added_cond_kwargs={"text_embeds": frame.pooled, "time_ids": frame.time_ids}, return_dict=False), iters=30, warmup=3)
            results["taesd_eager"] = time_fn(lambda: frame.decoder(frame.latent), iters=50, warmup=5)
            print("unet eager", results["unet_eager"], "taesd eager", results["taesd_eager"], flush=True)
        if "compiled" in steps:
            t0 = time.perf_counter()
            cf = torch.compile(frame, fullgraph=True, mode="reduce-overhead", dynamic=False)
            cf()
            cf()
            torch.cuda.synchronize()
            results["compile_s"] = time.perf_counter() - t0
            results["compiled"] = time_fn(cf, iters=300, warmup=20)
            print("compiled", results["compiled"], "compile s", results["compile_s"], flush=True)
            results["mem_gb"] = torch.cuda.max_memory_allocated() / 1e9
        if "profile" in steps:
            torch._dynamo.reset()
            t0 = time.perf_counter()
            cfd = torch.compile(frame, fullgraph=True, mode="default", dynamic=False)
            cfd()
            print(f"default-mode compile {time.perf_counter() - t0:.1f} s", flush=True)
            results["default_mode"] = time_fn(cfd, iters=100, warmup=10)
            print("compiled default mode (no cudagraph)", results["default_mode"], flush=True)
            results["kernel_ms"] = profile(cfd, "compiled default mode")
            td = torch.compile(frame.decoder, fullgraph=True, mode="default", dynamic=False)
            x = frame.latent.clone()
            profile(lambda: td(x), "TAESD decoder compiled")
    print("RESULTS", json.dumps(results))


if __name__ == "__main__":
    main()
