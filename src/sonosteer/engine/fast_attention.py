"""The fast attention path: fused self-attention QKV, and cross-attention K/V computed once per prompt.

Why: at batch 1 the UNet's frame time is dominated by small, latency-bound kernels. Each
self-attention's three projections become one GEMM. Each cross-attention's K and V depend only
on the text embedding, and the prompt SLERP is a per-token linear combination of the two prompts
(`sonosteer.engine.slerp.weights_from_geometry`), so K(slerp(A, B)) = w_a * K(A) + w_b * K(B) exactly: K/V of both prompts are
projected once when the prompt pair changes, and each frame blends them with two elementwise
kernels outside the graph, instead of 140 GEMMs inside it. The captured graph reads the blended
K/V from fixed buffers (views into one packed tensor), like every other per-frame input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
    """Cross-attention whose K and V are read from `attn.kv_cache` (2, tokens, inner), filled outside the graph."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        batch, tokens, _ = hidden_states.shape
        q = attn.to_q(hidden_states)
        head_dim = q.shape[-1] // attn.heads
        k, v = attn.kv_cache.unbind(0)
        q = q.view(batch, tokens, attn.heads, head_dim).transpose(1, 2)
        k = k.view(1, -1, attn.heads, head_dim).transpose(1, 2).expand(batch, -1, -1, -1)
        v = v.view(1, -1, attn.heads, head_dim).transpose(1, 2).expand(batch, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v)
        return attn.to_out[0](out.transpose(1, 2).reshape(batch, tokens, attn.heads * head_dim))


class CrossAttentionKV(nn.Module):
    """K/V projections of every cross-attention, packed token-major into one (tokens, total) buffer.

    `project(tokens)` gives a prompt's packed K/V (cache it per prompt); `blend(kv_a, kv_b, w_a, w_b)`
    writes w_a * kv_a + w_b * kv_b (per-token weights) into the buffer the graph reads.
    """

    def __init__(self, attentions: list[nn.Module], sequence_length: int):
        super().__init__()
        first = attentions[0].to_k.weight
        self.key_proj = nn.ModuleList(a.to_k for a in attentions)
        self.value_proj = nn.ModuleList(a.to_v for a in attentions)
        widths = [a.to_k.out_features for a in attentions]
        self.total = 2 * sum(widths)
        self.register_buffer(
            "packed", torch.zeros(sequence_length, self.total, device=first.device, dtype=first.dtype), persistent=False
        )
        offset = 0
        for attn, width in zip(attentions, widths):
            view = self.packed[:, offset : offset + 2 * width].unflatten(1, (2, width)).transpose(0, 1)
            attn.register_buffer("kv_cache", view, persistent=False)
            offset += 2 * width

    @torch.no_grad()
    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Packed K/V (tokens, total) in the model dtype for one prompt's (1, tokens, context) embedding."""
        x = tokens[0].to(self.packed.dtype)
        return torch.cat([p(x) for pair in zip(self.key_proj, self.value_proj) for p in pair], dim=1)

    @torch.no_grad()
    def blend(self, kv_a: torch.Tensor, kv_b: torch.Tensor, w_a: torch.Tensor, w_b: torch.Tensor) -> None:
        """packed = w_a * kv_a + w_b * kv_b, in place; w_a, w_b are (tokens, 1)."""
        torch.mul(kv_a, w_a.to(self.packed.dtype), out=self.packed)
        self.packed.addcmul_(kv_b, w_b.to(self.packed.dtype))


def install_fast_attention(unet: nn.Module, sequence_length: int) -> CrossAttentionKV:
    """Switch every attention of `unet` to the fast path; returns the cross-attention K/V holder.

    Self-attention: Q, K and V weights are concatenated into one projection and the separate ones
    dropped. Cross-attention: K/V projections move into the returned module (used per prompt, not
    per frame). SDPA then uses the flash back-end (cuDNN's adds a memset per call at batch 1).
    """
    from diffusers.models.attention_processor import Attention  # noqa: PLC0415 - engine-only import

    crosses = []
    for module in unet.modules():
        if not isinstance(module, Attention):
            continue
        if module.is_cross_attention:
            crosses.append(module)
            module.set_processor(CachedCrossAttentionProcessor())
        else:
            module.fuse_projections()
            del module.to_q, module.to_k, module.to_v
            module.set_processor(FusedSelfAttentionProcessor())
    if not crosses:
        raise ValueError("the UNet has no cross-attention: not an SDXL-architecture model")
    kv = CrossAttentionKV(crosses, sequence_length)
    for module in crosses:
        del module.to_k, module.to_v
    if torch.cuda.is_available():
        torch.backends.cuda.enable_cudnn_sdp(False)
    return kv
