"""The feed-forward's first GEMM and its GEGLU in one float8 Triton kernel (fast path, CUDA).

diffusers' GEGLU is a linear to 2N features followed by hidden * gelu(gate). With float8 linears
(`quantize.py`) that is cuBLASLt's GEMM writing 2N fp16 features, then an inductor kernel that
reads them back, applies the GEGLU and casts to float8 for the next linear: one launch and a
round trip of the widest activation of the block, 70 times a frame. Here one kernel keeps both
halves' accumulators side by side, applies the scales, biases, GEGLU and the next linear's fixed
float8 scale in its epilogue, and writes only the N float8 features that the next linear reads.
On Hopper and newer its tiles can arrive by TMA instead of pointer loads (`tma`): 10.69 against
11.39 us at 256 x 1280 -> 5120 on an H200, the same tiling and the same bits out.

On CPU (and where Triton is missing) the op runs as the same arithmetic in torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonosteer.engine.quantize import FP8, FP8_MAX, per_tensor_fp8, to_fp8

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op's torch arithmetic is used instead
    triton = None
try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # no Triton, or one older than 3.4: the pointer kernel only (`triton_kernels.tma_missing`)
    TensorDescriptor = None

K_MULTIPLE = 128
"""The kernel steps through K in tiles of up to 128 without masks; GEGLUs whose widths are not a
multiple of this keep the unfused float8 pair."""
TMA_TILING = (64, 64, 128, 4, 3)
"""(BLOCK_M, BLOCK_N, BLOCK_K, warps, stages) of the TMA kernel: the best of 22 tilings at both SDXL widths
in an H200 sweep, as the pointer kernel's autotuning found on an H100."""
TMA_MAX_PROGRAMS = 640
"""With more programs than this the autotuned pointer kernel (larger tiles) runs instead: in an H200 sweep
(fifteenth round) TMA's fixed tiling won up to 640 (10.49 against 11.22 us at 256 x 1280 -> 5120, 17.64
against 18.36 at 512 rows), tied at 1280 and 2560, and lost at 1024 x 1280 -> 5120 (34.27 against 32.18)."""


def _configs() -> list:
    """Tilings to autotune over (once per shape, at the first call). An H100 sweep of 84 tilings put
    64x64x128 with 4 warps and 3 stages first at both SDXL widths (12.5 us at 256 x 1280 -> 5120,
    cuBLASLt's GEMM alone: 12.5 us); the runners-up stay for other GPUs."""
    shapes = [(64, 64, 128, 4, 3), (64, 64, 128, 8, 3), (128, 64, 128, 8, 3), (128, 32, 128, 8, 3), (64, 64, 64, 4, 4)]
    return [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=warps, num_stages=stages)
        for m, n, k, warps, stages in shapes
    ]


if triton is not None:

    @triton.jit
    def _store_geglu(acc_h, acc_g, bias_ptr, out_ptr, offs_m, offs_n, M, N, gemm_scale, out_inv_scale):
        """Both kernels' epilogue: scales and biases on the two accumulators, hidden * gelu(gate), the next
        linear's float8 scale, saturation at +-448, and the rows below M stored."""
        hidden = acc_h * gemm_scale + tl.load(bias_ptr + offs_n)[None, :].to(tl.float32)
        gate = acc_g * gemm_scale + tl.load(bias_ptr + N + offs_n)[None, :].to(tl.float32)
        y = hidden * (0.5 * gate * (1.0 + tl.math.erf(gate * 0.7071067811865476))) * out_inv_scale
        y = tl.minimum(tl.maximum(y, -448.0), 448.0)
        rows = offs_m[:, None] < M
        tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], y.to(out_ptr.dtype.element_ty), mask=rows)

    @triton.autotune(configs=_configs(), key=["M", "N", "K"])
    @triton.jit
    def _geglu_fp8_kernel(
        x_ptr, w_ptr, bias_ptr, out_ptr, M, gemm_scale, out_inv_scale, N: tl.constexpr, K: tl.constexpr,
        USE_PDL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        """out[m, n] = fp8((h * gelu(g)) / out_scale), h = x W[n] * s + b[n], g = x W[N + n] * s + b[N + n]."""
        if USE_PDL:
            tl.extra.cuda.gdc_wait()  # launched early: wait for the kernel that wrote x
        pid = tl.program_id(0)
        blocks_m = tl.cdiv(M, BLOCK_M)
        pid_m = pid % blocks_m  # neighbouring programs share one weight tile (read once from L2)
        pid_n = pid // blocks_m
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        rows = offs_m[:, None] < M
        x_ptrs = x_ptr + offs_m[:, None] * K + offs_k[None, :]
        h_ptrs = w_ptr + offs_n[:, None] * K + offs_k[None, :]
        g_ptrs = h_ptrs + N * K
        acc_h = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for _ in range(K // BLOCK_K):
            a = tl.load(x_ptrs, mask=rows, other=0.0)
            acc_h = tl.dot(a, tl.trans(tl.load(h_ptrs)), acc_h)
            acc_g = tl.dot(a, tl.trans(tl.load(g_ptrs)), acc_g)
            x_ptrs += BLOCK_K
            h_ptrs += BLOCK_K
            g_ptrs += BLOCK_K
        _store_geglu(acc_h, acc_g, bias_ptr, out_ptr, offs_m, offs_n, M, N, gemm_scale, out_inv_scale)

    @triton.jit
    def _geglu_fp8_tma_kernel(
        x_desc, w_desc, bias_ptr, out_ptr, M, gemm_scale, out_inv_scale, N: tl.constexpr, K: tl.constexpr,
        USE_PDL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        """The kernel above with x's and W's tiles loaded by TMA (rows beyond M arrive as zeros)."""
        if USE_PDL:
            tl.extra.cuda.gdc_wait()
        pid = tl.program_id(0)
        blocks_m = tl.cdiv(M, BLOCK_M)
        pid_m = pid % blocks_m
        pid_n = pid // blocks_m
        acc_h = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in tl.range(0, K, BLOCK_K):
            a = x_desc.load([pid_m * BLOCK_M, k])
            acc_h = tl.dot(a, w_desc.load([pid_n * BLOCK_N, k]).T, acc_h)
            acc_g = tl.dot(a, w_desc.load([N + pid_n * BLOCK_N, k]).T, acc_g)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        _store_geglu(acc_h, acc_g, bias_ptr, out_ptr, offs_m, offs_n, M, N, gemm_scale, out_inv_scale)


def tma_programs(rows: int, width: int) -> int:
    """Programs of the TMA kernel (`TMA_TILING`) for `rows` x `width` outputs."""
    return -(-rows // TMA_TILING[0]) * (width // TMA_TILING[1])


@torch.library.custom_op("sonosteer::geglu_fp8", mutates_args=())
def geglu_fp8(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    gemm_scale: float,
    out_scale: float,
    pdl: bool = False,
    tma: bool = False,
) -> torch.Tensor:
    """float8 (M, N) = (hidden * gelu(gate)) / out_scale for float8 x (M, K) and weight (2N, K), where
    [hidden, gate] = x weight^T * gemm_scale + bias. pdl: programmatic dependent launch; tma: tiles
    loaded by TMA (both Hopper and newer)."""
    rows, width = x.shape[0], weight.shape[0] // 2
    if x.is_cuda and triton is not None:
        x, weight = x.contiguous(), weight.contiguous()  # the kernel's addressing assumes rows of K
        out = torch.empty((rows, width), device=x.device, dtype=FP8)
        options = {"launch_pdl": True} if pdl else {}
        if tma:
            block_m, block_n, block_k, warps, stages = TMA_TILING
            _geglu_fp8_tma_kernel[(tma_programs(rows, width),)](
                TensorDescriptor.from_tensor(x, [block_m, block_k]), TensorDescriptor.from_tensor(weight, [block_n, block_k]),
                bias, out, rows, gemm_scale, 1.0 / out_scale, N=width, K=x.shape[1], USE_PDL=pdl,
                BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages, **options,
            )
            return out
        grid = lambda meta: (triton.cdiv(rows, meta["BLOCK_M"]) * (width // meta["BLOCK_N"]),)  # noqa: E731
        _geglu_fp8_kernel[grid](
            x, weight, bias, out, rows, gemm_scale, 1.0 / out_scale, N=width, K=x.shape[1], USE_PDL=pdl, **options
        )
        return out
    hidden, gate = (x.float() @ weight.float().t() * gemm_scale + bias.float()).chunk(2, dim=-1)
    return to_fp8(hidden * F.gelu(gate), out_scale)


@geglu_fp8.register_fake
def _geglu_fp8_fake(x, weight, bias, gemm_scale, out_scale, pdl=False, tma=False):
    return x.new_empty((x.shape[0], weight.shape[0] // 2), dtype=FP8)


def fusable(geglu: nn.Module) -> bool:
    """Whether `geglu` is diffusers' GEGLU (exact gelu) with widths that fit the kernel's tiling."""
    from diffusers.models.activations import GEGLU  # noqa: PLC0415 - engine-only import

    return (
        type(geglu) is GEGLU
        and geglu.proj.in_features % K_MULTIPLE == 0
        and (geglu.proj.out_features // 2) % K_MULTIPLE == 0
    )


class Fp8Geglu(nn.Module):
    """diffusers' GEGLU as one float8 kernel: its input scaled by `input_bound`, its output float8 at
    `output_bound` / 448, the fixed input scale of the feed-forward's second `Fp8Linear`; tma: tiles
    loaded by TMA (Hopper and newer) where that is faster (`runs_tma`)."""

    def __init__(self, geglu: nn.Module, input_bound: float, output_bound: float, tma: bool = False):
        super().__init__()
        if not (input_bound > 0 and output_bound > 0):
            raise ValueError(f"bounds must be positive, got input {input_bound}, output {output_bound}")
        if not fusable(geglu):
            raise ValueError(f"{geglu} does not fit the fused kernel (diffusers' GEGLU, widths multiples of {K_MULTIPLE})")
        proj = geglu.proj
        self.in_features, self.out_features = proj.in_features, proj.out_features // 2
        self.input_bound, self.output_bound = float(input_bound), float(output_bound)
        weight_fp8, weight_scale = per_tensor_fp8(proj.weight)
        self.register_buffer("weight_fp8", weight_fp8)
        bias = proj.bias.detach() if proj.bias is not None else proj.weight.new_zeros(proj.out_features)
        self.register_buffer("bias", bias.float().clone())
        self.gemm_scale = self.input_bound / FP8_MAX * weight_scale
        self.pdl = False  # programmatic dependent launch: set by the engine (opt-in, launch_pdl)
        self.tma = bool(tma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = to_fp8(x.reshape(-1, self.in_features), self.input_bound / FP8_MAX)  # fuses into the layer norm
        tma = self.runs_tma(rows.shape[0], rows.is_cuda)
        y = geglu_fp8(rows, self.weight_fp8, self.bias, self.gemm_scale, self.output_bound / FP8_MAX, self.pdl, tma)
        return y.reshape(*x.shape[:-1], self.out_features)

    def runs_tma(self, rows: int, on_cuda: bool) -> bool:
        """Whether a call with `rows` rows loads by TMA: on CUDA up to `TMA_MAX_PROGRAMS` programs, beyond
        which the autotuned pointer kernel is faster (a static choice under torch.compile)."""
        return self.tma and (not on_cuda or tma_programs(rows, self.out_features) <= TMA_MAX_PROGRAMS)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, float8 e4m3 in and out, "
            f"|x| <= {self.input_bound:.4g}, |y| <= {self.output_bound:.4g}{', TMA loads' if self.tma else ''}"
        )

