"""The fast path's attention as one Triton kernel per call: no memset, optional float8 output, and for
cross-attention the query projection inside the same kernel (CUDA).

Why: at batch 1 each of the frame's 140 attentions is a few microseconds of latency-bound work.
cuDNN's SDPA adds a memset before every call, writes fp16 that the output projection then reads in
fp16, and the cross-attention query is a GEMM of its own before it. This kernel reads Q, K and V
where the projections left them (token-major rows, any row stride: no transposes), keeps one query
tile of one head per program with an online softmax over the keys, and can

- write float8 at a fixed or per-prompt scale (`out_scale`), so the output projection becomes a
  float8 GEMM with no cast kernel: the output is a convex combination of V's rows, so max |V|
  bounds it;
- compute its query tile itself from the float8 layer-norm output and the head's slice of the
  query weights (`q_weight`), which removes the cross-attention's query GEMM and its launch: each
  program needs only its own tile of Q.

On CPU (and where Triton is missing) the op runs the same arithmetic in torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sonosteer.engine.quantize import FP8, FP8_MAX
from sonosteer.engine.triton_kernels import triton_missing

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op's torch arithmetic is used instead
    triton = None

PROJECTION_BLOCK_K = 128
"""The fused query projection steps through its input in tiles of this many features without masks."""
LOG2_E = 1.4426950408889634


def _configs() -> list:
    """(BLOCK_M queries, BLOCK_N keys, warps, stages) to autotune over, once per shape before capture."""
    shapes = [
        (64, 64, 4, 2), (64, 64, 4, 3), (32, 64, 4, 2), (128, 64, 8, 2),
        (64, 128, 4, 2), (32, 128, 4, 2), (128, 128, 8, 2), (16, 128, 4, 2),
    ]
    return [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=warps, num_stages=stages) for m, n, warps, stages in shapes
    ]


if triton is not None:

    @triton.autotune(configs=_configs(), key=["queries", "KEYS", "heads", "PROJECT_K", "FP8_OUT"])
    @triton.heuristics({"EVEN_KEYS": lambda meta: meta["KEYS"] % meta["BLOCK_N"] == 0})
    @triton.jit
    def _attention_kernel(
        q_ptr, q_weight_ptr, k_ptr, v_ptr, out_ptr, out_scale_ptr,
        q_batch_stride, q_row_stride, k_batch_stride, k_row_stride, v_batch_stride, v_row_stride,
        queries, heads, q_scale, qk_scale_log2,
        KEYS: tl.constexpr, HEAD_DIM: tl.constexpr, PROJECT_K: tl.constexpr, PROJECT_STEP: tl.constexpr, FP8_OUT: tl.constexpr,
        USE_PDL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, EVEN_KEYS: tl.constexpr,
    ):
        """out[b, m, h] = softmax(q k^T / sqrt(d)) v for one (query tile, head, batch item) per program.

        PROJECT_K > 0: q_ptr is float8 x (rows of PROJECT_K) and q = x W_q[h]^T * q_scale.
        FP8_OUT: out = float8(o / out_scale), saturating at +-448.
        """
        pid_m, head, batch = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows[:, None] < queries
        dims = tl.arange(0, HEAD_DIM)
        if USE_PDL:
            tl.extra.cuda.gdc_wait()  # launched early: wait for the kernel that wrote our inputs
        q_rows = q_ptr + batch * q_batch_stride + rows[:, None] * q_row_stride
        if PROJECT_K > 0:
            steps = tl.arange(0, PROJECT_STEP)
            x_ptrs = q_rows + steps[None, :]
            w_ptrs = q_weight_ptr + (head * HEAD_DIM + dims)[:, None] * PROJECT_K + steps[None, :]
            acc_q = tl.zeros((BLOCK_M, HEAD_DIM), dtype=tl.float32)
            for _ in range(PROJECT_K // PROJECT_STEP):
                acc_q = tl.dot(tl.load(x_ptrs, mask=row_ok, other=0.0), tl.trans(tl.load(w_ptrs)), acc_q)
                x_ptrs += PROJECT_STEP
                w_ptrs += PROJECT_STEP
            q = (acc_q * q_scale).to(k_ptr.dtype.element_ty)
        else:
            q = tl.load(q_rows + head * HEAD_DIM + dims[None, :], mask=row_ok, other=0.0)
        k_base = k_ptr + batch * k_batch_stride + head * HEAD_DIM + dims[None, :]
        v_base = v_ptr + batch * v_batch_stride + head * HEAD_DIM + dims[None, :]
        m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
        l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
        acc = tl.zeros((BLOCK_M, HEAD_DIM), dtype=tl.float32)
        for start in range(0, KEYS, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            if EVEN_KEYS:
                k = tl.load(k_base + cols[:, None] * k_row_stride)
                v = tl.load(v_base + cols[:, None] * v_row_stride)
            else:
                k = tl.load(k_base + cols[:, None] * k_row_stride, mask=cols[:, None] < KEYS, other=0.0)
                v = tl.load(v_base + cols[:, None] * v_row_stride, mask=cols[:, None] < KEYS, other=0.0)
            s = tl.dot(q, tl.trans(k)) * qk_scale_log2
            if not EVEN_KEYS:
                s = tl.where(cols[None, :] < KEYS, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            p = tl.math.exp2(s - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None])
            m_i = m_new
        out = acc / l_i[:, None]
        if FP8_OUT:
            out = out * (1.0 / tl.load(out_scale_ptr))
            out = tl.minimum(tl.maximum(out, -448.0), 448.0)
        width = heads * HEAD_DIM
        out_ptrs = out_ptr + (batch * queries + rows[:, None]) * width + head * HEAD_DIM + dims[None, :]
        tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=row_ok)


def _batched(x: torch.Tensor) -> torch.Tensor:
    """x as (batch, rows, features) with unit feature stride (views stay views)."""
    x = x if x.dim() == 3 else x.unsqueeze(0)
    return x if x.stride(-1) == 1 else x.contiguous()


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    out_scale: torch.Tensor | None = None,
    q_weight: torch.Tensor | None = None,
    q_scale: float = 1.0,
) -> torch.Tensor:
    """The op's arithmetic in torch (CPU, and the check for the kernel): see `attention`."""
    if q_weight is not None:
        q = (q.float() @ q_weight.float().t() * q_scale).to(k.dtype)
    q, k, v = _batched(q), _batched(k), _batched(v)
    batch, queries, width = q.shape
    head_dim = width // heads
    split = lambda x: x.reshape(x.shape[0], x.shape[1], heads, head_dim).transpose(1, 2)  # noqa: E731
    kk, vv = split(k).expand(batch, -1, -1, -1), split(v).expand(batch, -1, -1, -1)
    out = F.scaled_dot_product_attention(split(q), kk, vv).transpose(1, 2).reshape(batch, queries, width)
    if out_scale is not None:
        return (out.float() / out_scale).clamp(-FP8_MAX, FP8_MAX).to(FP8)
    return out


@torch.library.custom_op("sonosteer::attention", mutates_args=())
def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    out_scale: torch.Tensor | None = None,
    q_weight: torch.Tensor | None = None,
    q_scale: float = 1.0,
    pdl: bool = False,
) -> torch.Tensor:
    """Multi-head attention on token-major rows: (batch, queries, heads * d) from q (batch, queries,
    heads * d) and k, v (batch or 1, keys, heads * d) or (keys, heads * d), shared by the batch.

    q_weight (heads * d, c) float8: q is then float8 x (batch, queries, c) and the query is
    x q_weight^T * q_scale. out_scale (a float32 scalar tensor): the output is float8 of
    o / out_scale, saturating. pdl: launch with programmatic dependent launch (Hopper and newer).
    """
    if not (q.is_cuda and triton is not None):
        return reference_attention(q, k, v, heads, out_scale, q_weight, q_scale)
    return launch(q, k, v, heads, out_scale, q_weight, q_scale, pdl)


def launch(q, k, v, heads, out_scale=None, q_weight=None, q_scale=1.0, pdl=False, tiles=None) -> torch.Tensor:
    """Run the Triton kernel: the op's CUDA path. tiles: fixed (BLOCK_M, BLOCK_N) instead of autotuning
    (the probe's one small launch)."""
    q, k, v = _batched(q), _batched(k), _batched(v)
    batch, queries, keys, width = q.shape[0], q.shape[1], k.shape[1], k.shape[2]
    head_dim = width // heads
    project_k = 0
    if q_weight is not None:
        q_weight, project_k = q_weight.contiguous(), q.shape[2]
        if project_k % PROJECTION_BLOCK_K:
            raise ValueError(f"the fused query projection needs input widths that are multiples of {PROJECTION_BLOCK_K}")
    out = torch.empty((batch, queries, width), device=q.device, dtype=FP8 if out_scale is not None else k.dtype)
    grid = lambda meta: (triton.cdiv(queries, meta["BLOCK_M"]), heads, batch)  # noqa: E731
    kv_batch = lambda x: x.stride(0) if x.shape[0] > 1 else 0  # noqa: E731 - one K/V for the whole batch
    options = {"launch_pdl": True} if pdl else {}
    kernel = _attention_kernel
    if tiles is not None:  # the kernel under the autotuner, with these tiles
        kernel, options = kernel.fn, options | {"BLOCK_M": tiles[0], "BLOCK_N": tiles[1]}
    kernel[grid](
        q, q_weight if q_weight is not None else q, k, v, out, out_scale if out_scale is not None else out,
        q.stride(0), q.stride(1), kv_batch(k), k.stride(1), kv_batch(v), v.stride(1),
        queries, heads, float(q_scale), LOG2_E / math.sqrt(head_dim),
        KEYS=keys, HEAD_DIM=head_dim, PROJECT_K=project_k, PROJECT_STEP=PROJECTION_BLOCK_K, FP8_OUT=out_scale is not None,
        USE_PDL=pdl, **options,
    )
    return out


@attention.register_fake
def _attention_fake(q, k, v, heads, out_scale=None, q_weight=None, q_scale=1.0, pdl=False):
    batch = q.shape[0] if q.dim() == 3 else 1
    width = k.shape[-1]
    return q.new_empty((batch, q.shape[-2], width), dtype=FP8 if out_scale is not None else k.dtype)


def supports(head_dim: int) -> bool:
    """Whether the kernel takes this head size: a power of two from 16 (the tensor cores' smallest K) to 128."""
    return head_dim in (16, 32, 64, 128)


def probe(device: torch.device) -> str | None:
    """Why the kernel cannot run on `device`, or None when it runs there and matches the torch arithmetic
    (one small launch: Triton without a C compiler, say, fails here instead of in the first frame)."""
    if (reason := triton_missing(device)) is not None:
        return reason
    if triton is None:
        return "Triton is installed but failed to import"
    generator = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn(1, 32, 64, device=device, dtype=torch.float16, generator=generator) for _ in range(3))
    try:
        got = launch(q, k, v, heads=1, tiles=(16, 32))
    except Exception as error:  # noqa: BLE001 - any failure to build or launch means "use the library kernel"
        return f"{type(error).__name__}: {error}"
    error = float((got.float() - reference_attention(q, k, v, heads=1).float()).abs().max())
    return None if error < 1e-2 else f"the kernel's output differs from the reference by {error:.3g}"
