"""The fast attention path: fused self-attention QKV, and cross-attention K/V computed once per prompt.

Why: at batch 1 the UNet's frame time is dominated by small, latency-bound kernels. Each
self-attention's three projections become one GEMM. Each cross-attention's K and V depend only
on the text embedding, and the prompt SLERP is a per-token linear combination of the two prompts
(`sonosteer.engine.slerp.weights_from_geometry`), so K(slerp(A, B)) = w_a * K(A) + w_b * K(B)
exactly: K/V of both prompts are projected once when the prompt pair changes, and each frame
blends them inside the graph with one elementwise kernel, instead of 140 GEMMs.

The attention itself is our Triton kernel (`triton_attention.py`, the default where Triton runs: no
memset per call; with float8 linears it writes the output projection's float8 input and computes the
cross-attention query itself) or PyTorch's SDPA with cuDNN's or flash kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonosteer.engine.quantize import FP8_MAX, Fp8Linear, to_fp8
from sonosteer.engine.slerp import pair_geometry, weights_from_geometry
from sonosteer.engine.triton_attention import PROJECTION_BLOCK_K, attention, supports

SDPA_KERNELS = ("cudnn", "flash")
"""PyTorch SDPA back-ends; any other attention kernel name is our Triton kernel ("triton")."""
BLEND_GRID_POINTS = 129
"""Prompt blends at which the cross-attention output bound is evaluated (`CrossAttentionKV.set_pair`)."""
BLEND_GRID_MARGIN = 1.05
"""Headroom over the grid's maximum for the blends between grid points (beyond it, float8 saturates)."""


def _float8_out_scale(attn: nn.Module) -> torch.Tensor | None:
    """The fixed float8 input scale of an attention's output projection, None when it reads fp16."""
    out = attn.to_out[0]
    return out.input_scale if isinstance(out, Fp8Linear) and out.input_bound is not None else None


class FusedSelfAttentionProcessor:
    """Self-attention with one QKV projection (`attn.to_qkv`, made by diffusers' fuse_projections).

    triton: our kernel, reading Q, K and V in place, in float8 when the output projection is float8.
    """

    def __init__(self, triton: bool = False):
        self.triton = triton
        self.pdl = False  # programmatic dependent launch: set by the engine (opt-in, launch_pdl)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        batch, tokens, _ = hidden_states.shape
        q, k, v = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        if self.triton:
            return attn.to_out[0](attention(q, k, v, attn.heads, _float8_out_scale(attn), pdl=self.pdl))
        head_dim = q.shape[-1] // attn.heads
        q, k, v = (x.view(batch, tokens, attn.heads, head_dim).transpose(1, 2) for x in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return attn.to_out[0](out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim))


class CachedCrossAttentionProcessor:
    """Cross-attention whose K and V are a slice of the blended buffer `attn.kv_source.packed`.

    triton: our kernel; with a float8 query projection (no bias) it computes the query itself from
    the layer norm's float8 output, and with a float8 output projection it writes float8 at this
    attention's per-prompt-pair scale (`attn.kv_source.out_scale(index)`).
    """

    def __init__(self, index: int, offset: int, width: int, triton: bool = False):
        self.index, self.offset, self.width, self.triton = index, offset, width, triton
        self.pdl = False  # programmatic dependent launch: set by the engine (opt-in, launch_pdl)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        batch, tokens, _ = hidden_states.shape
        kv = attn.kv_source.packed[:, self.offset : self.offset + 2 * self.width]
        k, v = kv[:, : self.width], kv[:, self.width :]
        if self.triton:
            return self._triton(attn, hidden_states, k, v)
        q = attn.to_q(hidden_states)
        head_dim = q.shape[-1] // attn.heads
        q = q.view(batch, tokens, attn.heads, head_dim).transpose(1, 2)
        k = k.reshape(1, -1, attn.heads, head_dim).transpose(1, 2).expand(batch, -1, -1, -1)
        v = v.reshape(1, -1, attn.heads, head_dim).transpose(1, 2).expand(batch, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v)
        return attn.to_out[0](out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim))

    def _triton(self, attn, hidden_states: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        to_q, to_out = attn.to_q, attn.to_out[0]
        float8_out = isinstance(to_out, Fp8Linear) and to_out.input_bound is None
        out_scale = attn.kv_source.out_scale(self.index) if float8_out else None
        if isinstance(to_q, Fp8Linear) and to_q.bias is None and to_q.in_features % PROJECTION_BLOCK_K == 0:
            x = to_fp8(hidden_states, to_q.input_bound / FP8_MAX)  # fuses into the layer norm
            out = attention(x, k, v, attn.heads, out_scale, to_q.weight_fp8, to_q.gemm_scale, self.pdl)
        else:
            out = attention(to_q(hidden_states), k, v, attn.heads, out_scale, pdl=self.pdl)
        return to_out(out, input_scale=out_scale) if float8_out else to_out(out)


class CrossAttentionKV(nn.Module):
    """K/V projections of every cross-attention, packed token-major: one (tokens, total) row per token.

    Per prompt pair (rare, outside the graph): `set_pair` copies both prompts' packed K/V (from
    `project`, cached per prompt) and their SLERP geometry into fixed buffers, and bounds each
    attention's output for float8 (`out_scale`). Per frame (inside the graph): `forward(t)` writes
    packed = w_a(t) * kv_a + w_b(t) * kv_b, which the cross-attention processors read.
    """

    def __init__(self, attentions: list[nn.Module], sequence_length: int):
        super().__init__()
        first = attentions[0].to_k.weight
        self.key_proj = nn.ModuleList(a.to_k for a in attentions)
        self.value_proj = nn.ModuleList(a.to_v for a in attentions)
        widths = [a.to_k.out_features for a in attentions]
        total = 2 * sum(widths)
        model = {"device": first.device, "dtype": first.dtype}
        f32 = {"device": first.device, "dtype": torch.float32}
        for name in ("kv_a", "kv_b", "packed"):
            self.register_buffer(name, torch.zeros(sequence_length, total, **model), persistent=False)
        for name in ("norm_a", "norm_b", "cos_ab"):
            self.register_buffer(name, torch.ones(sequence_length, 1, **f32), persistent=False)
        for index in range(len(attentions)):  # one allocation each: cuBLASLt wants its scale pointers aligned
            self.register_buffer(f"out_scale_{index}", torch.ones((), **f32), persistent=False)
        self.value_columns: list[slice] = []
        offset = 0
        for index, (attn, width) in enumerate(zip(attentions, widths)):
            attn.set_processor(CachedCrossAttentionProcessor(index, offset, width))
            self.value_columns.append(slice(offset + width, offset + 2 * width))
            offset += 2 * width

    @torch.no_grad()
    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Packed K/V (tokens, total) in the model dtype for one prompt's (1, tokens, context) embedding."""
        x = tokens[0].to(self.packed.dtype)
        return torch.cat([p(x) for pair in zip(self.key_proj, self.value_proj) for p in pair], dim=1)

    @torch.no_grad()
    def set_pair(self, kv_a: torch.Tensor, kv_b: torch.Tensor, tokens_a: torch.Tensor, tokens_b: torch.Tensor) -> None:
        """Load a prompt pair: both packed K/V, the per-token SLERP geometry of their embeddings, and
        the float8 output scales that bound every attention's output over the blends."""
        self.kv_a.copy_(kv_a)
        self.kv_b.copy_(kv_b)
        for buffer, value in zip((self.norm_a, self.norm_b, self.cos_ab), pair_geometry(tokens_a[0], tokens_b[0])):
            buffer.copy_(value)
        for index, bound in enumerate(self.output_bounds() / FP8_MAX):
            self.out_scale(index).copy_(bound)

    def out_scale(self, index: int) -> torch.Tensor:
        """Cross-attention `index`'s float8 output scale (a float32 scalar on the device, set per prompt pair)."""
        return getattr(self, f"out_scale_{index}")

    def output_bounds(self) -> torch.Tensor:
        """(attentions,) largest |output| each cross-attention can give at any prompt blend.

        An attention's output is a convex combination of its V rows, and each blended row is
        w_a(t) v_a + w_b(t) v_b, so |output| <= max over tokens and t of |w_a| max|v_a| + |w_b| max|v_b|,
        taken on a grid of blends with a margin for the blends between its points.
        """
        grid = torch.linspace(0.0, 1.0, BLEND_GRID_POINTS, device=self.kv_a.device)
        shape = (BLEND_GRID_POINTS, *self.norm_a.shape)
        t = grid.view(-1, 1, 1).expand(shape)
        w_a, w_b = weights_from_geometry(*(g.expand(shape) for g in (self.norm_a, self.norm_b, self.cos_ab)), t)
        peak_a, peak_b = (
            torch.stack([kv[:, columns].abs().amax(dim=1) for columns in self.value_columns], dim=1).float()
            for kv in (self.kv_a, self.kv_b)
        )  # (tokens, attentions)
        bounds = (w_a.abs() * peak_a + w_b.abs() * peak_b).amax(dim=(0, 1))
        return (bounds * BLEND_GRID_MARGIN).clamp_min(1e-6)

    def forward(self, t: torch.Tensor) -> None:
        w_a, w_b = weights_from_geometry(self.norm_a, self.norm_b, self.cos_ab, t)
        self.packed.copy_(w_a.to(self.packed.dtype) * self.kv_a + w_b.to(self.packed.dtype) * self.kv_b)


def uses_our_kernel(kernel: str, device: torch.device, head_dim: int) -> bool:
    """Whether an attention runs our op: asked for, and on CUDA only where the kernel takes the head size
    (elsewhere the op is torch arithmetic, which takes any)."""
    return kernel not in SDPA_KERNELS and (device.type != "cuda" or supports(head_dim))


def install_fast_attention(unet: nn.Module, sequence_length: int, kernel: str = "triton") -> CrossAttentionKV:
    """Switch every attention of `unet` to the fast path; returns the cross-attention K/V holder.

    Self-attention: Q, K and V weights are concatenated into one projection and the separate ones
    dropped. Cross-attention: K/V projections move into the returned module (used per prompt, not
    per frame). kernel: "triton" (ours, for every attention whose head size it takes; the op runs its
    torch arithmetic off CUDA), or an SDPA back-end: "cudnn" (PyTorch's first choice on Hopper) or
    "flash" (turns cuDNN's SDPA off for the process: no memset per call, but at batch 1 its grids
    leave SMs idle).
    """
    from diffusers.models.attention_processor import Attention  # noqa: PLC0415 - engine-only import

    def ours(module: nn.Module) -> bool:
        return uses_our_kernel(kernel, module.to_out[0].weight.device, module.inner_dim // module.heads)

    crosses = []
    for module in unet.modules():
        if not isinstance(module, Attention):
            continue
        if module.is_cross_attention:
            crosses.append(module)
        else:
            module.fuse_projections()
            del module.to_q, module.to_k, module.to_v
            module.set_processor(FusedSelfAttentionProcessor(triton=ours(module)))
    if not crosses:
        raise ValueError("the UNet has no cross-attention: not an SDXL-architecture model")
    kv = CrossAttentionKV(crosses, sequence_length)
    for module in crosses:
        module.processor.triton = ours(module)
        del module.to_k, module.to_v
        module.kv_source = kv  # a shared submodule: the processors read its blended buffer
    if torch.cuda.is_available() and kernel in SDPA_KERNELS:
        torch.backends.cuda.enable_cudnn_sdp(kernel == "cudnn")
    return kv
