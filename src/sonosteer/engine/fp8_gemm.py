"""The float8 linears' GEMM as one Triton kernel with split-K reduced inside it (fast path, CUDA).

Why: at batch 1 the frame's float8 linears have 256 or 1024 rows, so cuBLASLt's kernel covers
the output with about a hundred tiles that each walk all of K (5120 for the feed-forward output):
a few microseconds of latency per GEMM, 240 times a frame, on a GPU of 132 SMs. Splitting K over
more programs shortens each program's walk, but the partial sums must be added somewhere. A
separate reduction kernel, or atomics into a zeroed output, would cost the launch or the memset
that the split saves. Here every program writes its float32 partial tile to a workspace and
counts itself in with one atomic per output tile; the last one to arrive adds the others'
partials to its own, applies both float8 scales and the bias, writes the output and sets the
counter back to zero, so that the next call (and the next CUDA-graph replay) finds it clean.

The tiling and the split are autotuned per shape before capture. On CPU (and where Triton is
missing) the op runs the same arithmetic in torch.
"""

from __future__ import annotations

import torch

from sonosteer.engine.triton_kernels import triton_missing

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op's torch arithmetic is used instead
    triton = None

K_MULTIPLE = 128
"""Every tiling steps through K in tiles of 128 without masks: linears whose input width is not a
multiple of this keep cuBLASLt's GEMM."""
N_MULTIPLE = 64
"""Output widths must fill whole tiles of 64 columns (every SDXL width does)."""
TILE_COUNTERS = 4096
"""Arrival counters per engine: output tiles of one split-K launch (1280 x 256 rows has 80 of 64 x 64;
a tiling that would need more is left out for that shape)."""


def _configs() -> list:
    """(BLOCK_M, BLOCK_N, SPLIT_K, warps, stages) to autotune over, once per shape before capture."""
    shapes = [
        (64, 64, 1, 4, 3), (64, 64, 2, 4, 3), (64, 64, 4, 4, 3), (128, 64, 2, 4, 3), (128, 64, 4, 4, 3),
        (64, 128, 2, 4, 3), (128, 128, 1, 8, 3), (128, 128, 2, 8, 3), (64, 32, 2, 4, 3), (64, 32, 4, 4, 3),
        (64, 64, 8, 4, 3),
    ]
    return [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": K_MULTIPLE, "SPLIT_K": split}, num_warps=warps, num_stages=stages)
        for m, n, split, warps, stages in shapes
    ]


def _prune(configs: list, named_args: dict, **kwargs) -> list:
    """The tilings that fit the shape: K splits into whole steps, N into whole tiles, counters suffice."""
    m, n, k = named_args["M"], kwargs.get("N", named_args.get("N")), kwargs.get("K", named_args.get("K"))
    kept = []
    for config in configs:
        meta = config.kwargs
        tiles = -(-m // meta["BLOCK_M"]) * (n // meta["BLOCK_N"])
        if k % (meta["BLOCK_K"] * meta["SPLIT_K"]) or n % meta["BLOCK_N"]:
            continue
        if meta["SPLIT_K"] > 1 and tiles > TILE_COUNTERS:
            continue
        kept.append(config)
    return kept


if triton is not None:
    _CONFIGS = _configs()

    @triton.jit
    def _epilogue(acc, scale, bias_ptr, out_ptr, offs_m, offs_n, rows, N: tl.constexpr, HAS_BIAS: tl.constexpr):
        """out = acc * scale (+ bias), in the output's dtype."""
        y = acc * scale
        if HAS_BIAS:
            y += tl.load(bias_ptr + offs_n)[None, :].to(tl.float32)
        tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], y.to(out_ptr.dtype.element_ty), mask=rows)

    @triton.autotune(configs=_CONFIGS, key=["M", "N", "K"], prune_configs_by={"early_config_prune": _prune})
    @triton.jit
    def _fp8_gemm_kernel(
        x_ptr, w_ptr, x_scale_ptr, w_scale_ptr, bias_ptr, out_ptr, partial_ptr, counter_ptr, M,
        N: tl.constexpr, K: tl.constexpr, HAS_BIAS: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT_K: tl.constexpr,
    ):
        """out[m, n] = sum_k x[m, k] w[n, k] * x_scale * w_scale + bias[n], K split over program_id(1)."""
        tile, split = tl.program_id(0), tl.program_id(1)
        blocks_m = tl.cdiv(M, BLOCK_M)
        pid_m = tile % blocks_m  # neighbouring programs share one weight tile (read once from L2)
        pid_n = tile // blocks_m
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        k_start = split * (K // SPLIT_K) + tl.arange(0, BLOCK_K)
        rows = offs_m[:, None] < M
        x_ptrs = x_ptr + offs_m[:, None] * K + k_start[None, :]
        w_ptrs = w_ptr + offs_n[:, None] * K + k_start[None, :]
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for _ in range(K // SPLIT_K // BLOCK_K):
            acc = tl.dot(tl.load(x_ptrs, mask=rows, other=0.0), tl.trans(tl.load(w_ptrs)), acc)
            x_ptrs += BLOCK_K
            w_ptrs += BLOCK_K
        scale = tl.load(x_scale_ptr) * tl.load(w_scale_ptr)
        if SPLIT_K == 1:
            _epilogue(acc, scale, bias_ptr, out_ptr, offs_m, offs_n, rows, N, HAS_BIAS)
        else:
            tile_offsets = offs_m[:, None] * N + offs_n[None, :]
            tl.store(partial_ptr + split * M * N + tile_offsets, acc, mask=rows)
            tl.debug_barrier()  # every thread's partial is written before the arrival is counted (release)
            arrived = tl.atomic_add(counter_ptr + tile, 1, sem="acq_rel", scope="gpu")
            if arrived == SPLIT_K - 1:  # the last program of this tile: the others' partials are visible
                for other in tl.static_range(SPLIT_K):
                    if other != split:
                        acc += tl.load(partial_ptr + other * M * N + tile_offsets, mask=rows, other=0.0, cache_modifier=".cg")
                tl.store(counter_ptr + tile, 0)  # clean for the next call
                _epilogue(acc, scale, bias_ptr, out_ptr, offs_m, offs_n, rows, N, HAS_BIAS)


def reference_gemm(
    x: torch.Tensor, weight: torch.Tensor, x_scale: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """The op's arithmetic in torch (CPU, and the check for the kernel): see `fp8_gemm`."""
    y = (x.float() @ weight.float().t()) * (x_scale.float() * weight_scale.float())
    if bias is not None:
        y = y + bias.float()
    return y.to(out_dtype)


@torch.library.custom_op("sonosteer::fp8_gemm", mutates_args=())
def fp8_gemm(
    x: torch.Tensor,
    weight: torch.Tensor,
    x_scale: torch.Tensor,
    weight_scale: torch.Tensor,
    bias: torch.Tensor | None,
    counters: torch.Tensor,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """(M, N) = x weight^T * x_scale * weight_scale + bias for float8 x (M, K) and weight (N, K) with
    float32 scalar scales, in out_dtype. counters: int32 zeros (TILE_COUNTERS,) that the kernel
    borrows and leaves at zero (one set per engine; calls on one stream may share it)."""
    if not (x.is_cuda and triton is not None):
        return reference_gemm(x, weight, x_scale, weight_scale, bias, out_dtype)
    return launch(x, weight, x_scale, weight_scale, bias, counters, out_dtype)


def launch(x, weight, x_scale, weight_scale, bias, counters, out_dtype, tiles=None) -> torch.Tensor:
    """Run the Triton kernel: the op's CUDA path. tiles: fixed (BLOCK_M, BLOCK_N, SPLIT_K) instead of
    autotuning (the probe's one small launch)."""
    x, weight = x.contiguous(), weight.contiguous()  # the pointer arithmetic assumes rows of K
    (rows, k), n = x.shape, weight.shape[0]
    out = torch.empty((rows, n), device=x.device, dtype=out_dtype)
    splits = max(c.kwargs["SPLIT_K"] for c in _prune(_CONFIGS, {"M": rows}, N=n, K=k)) if tiles is None else tiles[2]
    partial = torch.empty((splits, rows, n), device=x.device, dtype=torch.float32)  # no split: never touched
    kernel, options = _fp8_gemm_kernel, {}
    if tiles is not None:  # the kernel under the autotuner, with these tiles
        kernel = kernel.fn
        options = {"BLOCK_M": tiles[0], "BLOCK_N": tiles[1], "BLOCK_K": K_MULTIPLE, "SPLIT_K": tiles[2]}
    grid = lambda meta: (triton.cdiv(rows, meta["BLOCK_M"]) * (n // meta["BLOCK_N"]), meta["SPLIT_K"])  # noqa: E731
    kernel[grid](
        x, weight, x_scale, weight_scale, bias if bias is not None else out, out, partial, counters, rows,
        N=n, K=k, HAS_BIAS=bias is not None, **options,
    )
    return out


@fp8_gemm.register_fake
def _fp8_gemm_fake(x, weight, x_scale, weight_scale, bias, counters, out_dtype):
    return x.new_empty((x.shape[0], weight.shape[0]), dtype=out_dtype)


def fits(in_features: int, out_features: int) -> bool:
    """Whether a linear of these widths fits the kernel's tilings (K in steps of 128, N in tiles of 64)."""
    return in_features % K_MULTIPLE == 0 and out_features % N_MULTIPLE == 0


def new_counters(device: torch.device) -> torch.Tensor:
    """The zeroed arrival counters that the kernel borrows (one set per engine)."""
    return torch.zeros(TILE_COUNTERS, dtype=torch.int32, device=device)


def probe(device: torch.device) -> str | None:
    """Why the kernel cannot run on `device`, or None when it runs there, matches the torch arithmetic and
    leaves its counters at zero (one small split-K launch)."""
    if (reason := triton_missing(device)) is not None:
        return reason
    if triton is None:
        return "Triton is installed but failed to import"
    from sonosteer.engine.quantize import FP8  # noqa: PLC0415 - quantize imports this module

    generator = torch.Generator(device=device).manual_seed(0)
    x, weight = (torch.randn(n, 256, device=device, generator=generator).to(FP8) for n in (48, 64))
    one = torch.ones((), device=device)
    counters = new_counters(device)
    try:
        got = launch(x, weight, one, one, None, counters, torch.float16, tiles=(32, 32, 2))
    except Exception as error:  # noqa: BLE001 - any failure to build or launch means "use cuBLASLt"
        return f"{type(error).__name__}: {error}"
    error = float((got.float() - reference_gemm(x, weight, one, one, None, torch.float16).float()).abs().max())
    if error > 0.5:  # sums of 256 products of float8 values: fp16 rounding of |y| ~ 16 is ~0.01
        return f"the kernel's output differs from the reference by {error:.3g}"
    if int(counters.abs().sum()):
        return "the kernel left its tile counters set"
    return None
