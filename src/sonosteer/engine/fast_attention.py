"""The fast attention path: fused self-attention QKV, and cross-attention K/V computed once per prompt.

Why: at batch 1 the UNet's frame time is dominated by small, latency-bound kernels. Each
self-attention's three projections become one GEMM. Each cross-attention's K and V depend only
on the text embedding, and the prompt SLERP is a per-token linear combination of the two prompts
(`sonosteer.engine.slerp.weights_from_geometry`), so K(slerp(A, B)) = w_a * K(A) + w_b * K(B)
exactly: K/V of both prompts are projected once when the prompt pair changes, and each frame
blends them inside the graph with one elementwise kernel, instead of 140 GEMMs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonosteer.engine.slerp import pair_geometry, weights_from_geometry


class FusedSelfAttentionProcessor:
    """Self-attention with one QKV projection (`attn.to_qkv`, made by diffusers' fuse_projections)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        batch, tokens, _ = hidden_states.shape
        q, k, v = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        head_dim = q.shape[-1] // attn.heads
        q, k, v = (x.view(batch, tokens, attn.heads, head_dim).transpose(1, 2) for x in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return attn.to_out[0](out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim))


class CachedCrossAttentionProcessor:
    """Cross-attention whose K and V are a slice of the blended buffer `attn.kv_source.packed`."""

    def __init__(self, offset: int, width: int):
        self.offset, self.width = offset, width

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        batch, tokens, _ = hidden_states.shape
        q = attn.to_q(hidden_states)
        head_dim = q.shape[-1] // attn.heads
        kv = attn.kv_source.packed[:, self.offset : self.offset + 2 * self.width]
        k, v = kv[:, : self.width], kv[:, self.width :]
        q = q.view(batch, tokens, attn.heads, head_dim).transpose(1, 2)
        k = k.reshape(1, -1, attn.heads, head_dim).transpose(1, 2).expand(batch, -1, -1, -1)
        v = v.reshape(1, -1, attn.heads, head_dim).transpose(1, 2).expand(batch, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v)
        return attn.to_out[0](out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim))


class CrossAttentionKV(nn.Module):
    """K/V projections of every cross-attention, packed token-major: one (tokens, total) row per token.

    Per prompt pair (rare, outside the graph): `set_pair` copies both prompts' packed K/V (from
    `project`, cached per prompt) and their SLERP geometry into fixed buffers. Per frame (inside
    the graph): `forward(t)` writes packed = w_a(t) * kv_a + w_b(t) * kv_b, which the cross-attention
    processors read.
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
        offset = 0
        for attn, width in zip(attentions, widths):
            attn.set_processor(CachedCrossAttentionProcessor(offset, width))
            offset += 2 * width

    @torch.no_grad()
    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Packed K/V (tokens, total) in the model dtype for one prompt's (1, tokens, context) embedding."""
        x = tokens[0].to(self.packed.dtype)
        return torch.cat([p(x) for pair in zip(self.key_proj, self.value_proj) for p in pair], dim=1)

    @torch.no_grad()
    def set_pair(self, kv_a: torch.Tensor, kv_b: torch.Tensor, tokens_a: torch.Tensor, tokens_b: torch.Tensor) -> None:
        """Load a prompt pair: both packed K/V and the per-token SLERP geometry of their embeddings."""
        self.kv_a.copy_(kv_a)
        self.kv_b.copy_(kv_b)
        for buffer, value in zip((self.norm_a, self.norm_b, self.cos_ab), pair_geometry(tokens_a[0], tokens_b[0])):
            buffer.copy_(value)

    def forward(self, t: torch.Tensor) -> None:
        w_a, w_b = weights_from_geometry(self.norm_a, self.norm_b, self.cos_ab, t)
        self.packed.copy_(w_a.to(self.packed.dtype) * self.kv_a + w_b.to(self.packed.dtype) * self.kv_b)


def install_fast_attention(unet: nn.Module, sequence_length: int, sdpa_backend: str = "cudnn") -> CrossAttentionKV:
    """Switch every attention of `unet` to the fast path; returns the cross-attention K/V holder.

    Self-attention: Q, K and V weights are concatenated into one projection and the separate ones
    dropped. Cross-attention: K/V projections move into the returned module (used per prompt, not
    per frame). sdpa_backend: "cudnn" (PyTorch's first choice on Hopper) or "flash" (turns cuDNN's
    SDPA off for the process: no memset per call, but at batch 1 its grids leave SMs idle).
    """
    from diffusers.models.attention_processor import Attention  # noqa: PLC0415 - engine-only import

    crosses = []
    for module in unet.modules():
        if not isinstance(module, Attention):
            continue
        if module.is_cross_attention:
            crosses.append(module)
        else:
            module.fuse_projections()
            del module.to_q, module.to_k, module.to_v
            module.set_processor(FusedSelfAttentionProcessor())
    if not crosses:
        raise ValueError("the UNet has no cross-attention: not an SDXL-architecture model")
    kv = CrossAttentionKV(crosses, sequence_length)
    for module in crosses:
        del module.to_k, module.to_v
        module.kv_source = kv  # a shared submodule: the processors read its blended buffer
    if torch.cuda.is_available():
        torch.backends.cuda.enable_cudnn_sdp(sdpa_backend == "cudnn")
    return kv
