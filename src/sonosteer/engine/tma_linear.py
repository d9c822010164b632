"""The float8 linear as a Triton GEMM whose tiles arrive by TMA (fast path, Hopper and newer).

cuBLASLt's per-tensor float8 GEMM is the best library kernel at the frame's shapes, but at 256 and
1024 rows with at most 1280 inputs a plain `tl.dot` loop fed by the tensor memory accelerator
(host-side tensor descriptors: one asynchronous bulk copy per tile, no address arithmetic in the
loop) beats it per call on an H200: 4.01 against 4.21 us at 256 x 1280 -> 1280 (180 calls a frame),
3.81 against 4.44 at 1024 x 640 -> 640. With 2560 or 5120 inputs one program walks too many K tiles
and cuBLASLt, which splits K, stays (`TMA_MAX_IN_FEATURES`); so it does at every shape where no tiling
of ours was measured faster (`TUNED_TILINGS`; at 4096 rows none was). Both scales and the bias are
applied in the epilogue, as cuBLASLt does, so the op is `torch._scaled_mm`'s arithmetic.

On CPU (and where Triton is missing) the op runs as the same arithmetic in torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

try:
    import triton
    import triton.language as tl
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # CPU-only installs, or a Triton without host-side tensor descriptors
    triton = None

TMA_MAX_IN_FEATURES = 1280
"""Float8 linears with more inputs keep cuBLASLt (5120 -> 1280 took 12.5 us against its 8.1 on an H200)."""
TMA_ALIGN = 16
"""TMA needs the rows' stride in bytes (the input features, for float8) to be a multiple of this."""


TUNED_TILINGS: dict[tuple[int, int, int], tuple[int, int, int, int, int]] = {
    # (rows, in_features, out_features): (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages), the best of 22 tilings
    # where it beat cuBLASLt in an H200 sweep, kernels alone. Batch 1 at 512 px (twelfth round):
    (256, 1280, 1280): (64, 64, 128, 4, 4),  # 4.01 against cuBLASLt's 4.21 us
    (256, 1280, 3840): (64, 64, 128, 4, 4),  # 4.79 against 5.05
    (1024, 640, 640): (128, 64, 128, 4, 4),  # 3.81 against 4.44
    (1024, 640, 1920): (64, 128, 128, 4, 3),
    # Batch 2 at 512 px (fifteenth round; the batch-1 tilings above took up to 38 % longer than cuBLASLt here):
    (512, 1280, 1280): (128, 64, 128, 4, 4),  # 4.57 against 4.83
    (512, 1280, 3840): (128, 64, 128, 4, 4),  # 6.41 against 6.92
    (2048, 640, 640): (64, 64, 128, 4, 4),  # 4.55 against 5.19
    (2048, 640, 1920): (128, 128, 128, 8, 3),  # 7.34 against 7.70
    # Batch 4 at 512 px, or batch 1 at 1024 px: only this one beat cuBLASLt (10.49 against 11.17 us); at
    # 1024 x 1280 -> 1280 it tied (6.03 against 6.00) and at 4096 rows it lost (6.24 against 5.95, 13.23 against 12.91)
    (1024, 1280, 3840): (128, 128, 128, 4, 3),
}
"""Shapes on which our TMA GEMM runs in the engine; every other shape keeps cuBLASLt (`Fp8Linear`)."""


def tiling(rows: int, in_features: int, out_features: int) -> tuple[int, int, int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_K, warps, stages) for a float8 GEMM: the tuned one where there is one, else
    wide tiles only where there are rows enough to fill the GPU with them."""
    tuned = TUNED_TILINGS.get((rows, in_features, out_features))
    if tuned is not None:
        return tuned
    if rows >= 1024:
        return (128, 64, 128, 4, 4) if out_features <= 640 else (64, 128, 128, 4, 3)
    return 64, 64, 128, 4, 4


def beats_cublaslt(rows: int, in_features: int, out_features: int) -> bool:
    """Whether our TMA GEMM was measured faster than cuBLASLt at this shape (`TUNED_TILINGS`)."""
    return (rows, in_features, out_features) in TUNED_TILINGS


if triton is not None:

    @triton.jit
    def _linear_fp8_tma_kernel(
        a_desc, w_desc, scale_a_ptr, scale_b_ptr, bias_ptr, out_ptr, M, N, K,
        HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        """out (M, N) = a (M, K) w (N, K)^T * scale_a * scale_b + bias, a and w read by TMA (zero beyond their ends)."""
        pid = tl.program_id(0)
        blocks_m = tl.cdiv(M, BLOCK_M)
        pid_m = pid % blocks_m  # neighbouring programs share one weight tile (read once from L2)
        pid_n = pid // blocks_m
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in tl.range(0, K, BLOCK_K):
            acc = tl.dot(a_desc.load([pid_m * BLOCK_M, k]), w_desc.load([pid_n * BLOCK_N, k]).T, acc)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        out = acc * (tl.load(scale_a_ptr) * tl.load(scale_b_ptr))
        if HAS_BIAS:
            out += tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0)[None, :].to(tl.float32)
        mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
        tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


@torch.library.custom_op("sonosteer::linear_fp8_tma", mutates_args=())
def linear_fp8_tma(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    bias: torch.Tensor | None,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """(M, N) out_dtype = x weight^T * scale_a * scale_b + bias for float8 x (M, K) and weight (N, K), the
    scales one-element float32 tensors: `torch._scaled_mm`'s per-tensor arithmetic."""
    if x.is_cuda and triton is not None:
        x, weight = x.contiguous(), weight.contiguous()  # TMA reads rows of K bytes
        rows, features = x.shape
        width = weight.shape[0]
        block_m, block_n, block_k, warps, stages = tiling(rows, features, width)
        out = torch.empty((rows, width), device=x.device, dtype=out_dtype)
        grid = (triton.cdiv(rows, block_m) * triton.cdiv(width, block_n),)
        _linear_fp8_tma_kernel[grid](
            TensorDescriptor.from_tensor(x, [block_m, block_k]), TensorDescriptor.from_tensor(weight, [block_n, block_k]),
            scale_a, scale_b, bias if bias is not None else out, out, rows, width, features,
            HAS_BIAS=bias is not None, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
            num_warps=warps, num_stages=stages,
        )
        return out
    y = x.float() @ weight.float().t() * (scale_a.float() * scale_b.float())
    return (y if bias is None else y + bias.float()).to(out_dtype)


@linear_fp8_tma.register_fake
def _linear_fp8_tma_fake(x, weight, scale_a, scale_b, bias, out_dtype):
    return x.new_empty((x.shape[0], weight.shape[0]), dtype=out_dtype)


T = TypeVar("T")


def run_counting_tma_gemms(model: nn.Module, run: Callable[[], T], on_cuda: bool) -> tuple[T, int]:
    """`run()`'s result, and how many of `model`'s float8 GEMMs (modules with `tma` and `runs_tma`) ran
    with TMA loads in it: their shapes decide, so the count is the frame's, not the modules'."""
    ran: set[int] = set()

    def note(module: nn.Module, args: tuple) -> None:
        x = args[0]
        if module.runs_tma(x.numel() // x.shape[-1], on_cuda):
            ran.add(id(module))

    hooks = [m.register_forward_pre_hook(note) for m in model.modules() if getattr(m, "tma", False) and hasattr(m, "runs_tma")]
    try:
        result = run()
    finally:
        for hook in hooks:
            hook.remove()
    return result, len(ran)


def tma_fits(in_features: int) -> bool:
    """Whether a float8 linear with this many inputs can run the TMA kernel (`beats_cublaslt` says where it does)."""
    return in_features <= TMA_MAX_IN_FEATURES and in_features % TMA_ALIGN == 0
