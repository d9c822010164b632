"""Float8 linears for the fast path (the default on float8 GPUs, checked per model at build by the
engine): one scale per tensor, the activation's fixed in advance.

Each converted linear's input comes from a layer norm, or from the GEGLU after one, so its
magnitude has a hard bound that follows from the weights alone (`layer_norm_bound`,
`geglu_bound`): whatever the prompt, noise or steering, a layer norm's output is a standardised
vector times gamma plus beta. The activation's float8 scale is that bound / 448, fixed at
conversion, so the cast is a multiply, clamp and convert that inductor fuses into the kernel that
makes the input (the layer norm or the GEGLU), and the GEMM is cuBLASLt's per-tensor float8
kernel (its fastest float8 path: 3.25 ms for a frame's GEMMs against 3.86 in fp16) with both
scales and the bias applied in its epilogue: no kernel is added anywhere. A bound looser than
the real range costs nothing measurable: float8 e4m3 is floating point, and its relative step
is the same over 15 binades below 448.

Converted: self-attention QKV, the cross-attention query, and the feed-forward pair (and, with
`fp8_conv.py`, the resnets' 3x3 convolutions, bounded the same way by their group norms). The
attention output projections are converted when our attention kernel writes their float8 input
(`triton_attention.py`; an attention's output is bounded by its V rows). The transformer in/out
projections and the per-prompt cross-attention K/V stay in the model dtype.

Why our own module and not torchao's tensor subclasses: on the full UNet the subclass path did
not finish compiling within 9 minutes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn

from sonosteer.engine.tma_linear import TMA_ALIGN, TMA_MAX_IN_FEATURES, beats_cublaslt, linear_fp8_tma, tma_fits

FP8 = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8).max)  # 448
MIN_FEATURES = 640
FLOAT8_X0_TOLERANCE = 0.02
"""Largest relative change of x0 that "auto" accepts from float8 on the model in hand (the speed issue's 2 %)."""
GELU_NEGATIVE_MAX = 0.17
"""Largest |gelu(x)| for x < 0 (0.16997 at x = -0.75)."""
_SCALE_FLOOR = 1e-12  # an all-zero tensor gets scale ~0 instead of a division by zero


def relative_error(x: torch.Tensor, reference: torch.Tensor) -> float:
    """|x - reference| / |reference| (Frobenius norms): how the x0 of a variant is compared with its reference."""
    return float((x - reference).norm() / reference.norm())


def to_fp8(x: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """x / scale rounded to float8 e4m3; values beyond the range saturate at +-448 instead of becoming NaN."""
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8)


def per_tensor_fp8(weight: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(weight in float8, its scale): the scale maps the largest magnitude onto float8's largest value."""
    scale = max(float(weight.detach().abs().max()), _SCALE_FLOOR) / FP8_MAX
    return to_fp8(weight.detach(), scale), scale


def row_scales(x: torch.Tensor) -> torch.Tensor:
    """(rows, 1) float32 scales that map each row's largest magnitude onto float8's largest value."""
    return x.abs().amax(dim=-1, keepdim=True).float().clamp(min=_SCALE_FLOOR) / FP8_MAX


def _norm_affine(norm: nn.LayerNorm, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(gamma, beta, channels) of a layer norm as float32 on `device`, the identity when it has no affine."""
    channels = int(norm.normalized_shape[-1])
    ones = torch.ones(channels, device=device)
    gamma = norm.weight.detach().float().to(device) if norm.weight is not None else ones
    beta = norm.bias.detach().float().to(device) if norm.bias is not None else torch.zeros_like(ones)
    return gamma, beta, channels


def layer_norm_bound(norm: nn.LayerNorm) -> float:
    """Largest |output| a layer norm can give for any input.

    A standardised vector of C entries has zero mean and mean square at most 1, so no entry
    exceeds sqrt(C - 1) (attained by a single spike); the output is gamma * that + beta.
    """
    gamma, beta, channels = _norm_affine(norm, torch.device("cpu"))
    return float((gamma.abs() * math.sqrt(channels - 1) + beta.abs()).max())


def linear_after_norm_bounds(linear: nn.Linear, norm: nn.LayerNorm) -> torch.Tensor:
    """(out,) largest |(W u + b)_j| over every output u of `norm` (Cauchy-Schwarz, attained).

    u = gamma * z + beta with z zero-mean and |z| <= sqrt(C): (W u)_j = (w_j * gamma) . z + w_j . beta,
    and only the zero-mean part of w_j * gamma meets a zero-mean z.
    """
    weight = linear.weight.detach().float()
    gamma, beta, channels = _norm_affine(norm, weight.device)
    scaled = weight * gamma
    scaled = scaled - scaled.mean(dim=1, keepdim=True)
    offset = weight @ beta
    if linear.bias is not None:
        offset = offset + linear.bias.detach().float()
    return scaled.norm(dim=1) * math.sqrt(channels) + offset.abs()


def geglu_bound(geglu: nn.Module, norm: nn.LayerNorm) -> float:
    """Largest |hidden * gelu(gate)| diffusers' GEGLU (`geglu.proj`, then chunk) can give after `norm`."""
    hidden, gate = linear_after_norm_bounds(geglu.proj, norm).chunk(2)
    return float((hidden * gate.clamp(min=GELU_NEGATIVE_MAX)).max())


class Fp8Linear(nn.Module):
    """y = x W^T + b in float8: W scaled by its largest magnitude, x by `input_bound`, both per tensor.

    Inputs beyond `input_bound` saturate (they cannot occur where `quantize_fp8` installs it). A
    float8 input is taken as already divided by input_bound / 448 (the fused GEGLU's output).
    input_bound None: the input always arrives in float8 with its scale (`forward(x, input_scale)`),
    set per prompt pair (the cross-attention output projections). tma: the GEMM is our Triton kernel
    with TMA loads (`tma_linear.py`, Hopper and newer) instead of cuBLASLt's, at the shapes where it is faster.
    """

    def __init__(self, linear: nn.Linear, input_bound: float | None, fast_accum: bool = False, tma: bool = False):
        super().__init__()
        if input_bound is not None and not input_bound > 0:
            raise ValueError(f"input_bound must be positive, got {input_bound}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.out_dtype = linear.weight.dtype
        self.input_bound = None if input_bound is None else float(input_bound)
        self.fast_accum = bool(fast_accum)
        if tma and not tma_fits(self.in_features):
            raise ValueError(
                f"the TMA GEMM takes up to {TMA_MAX_IN_FEATURES} input features, a multiple of {TMA_ALIGN}; "
                f"got {self.in_features}"
            )
        self.tma = bool(tma)
        weight_fp8, weight_scale = per_tensor_fp8(linear.weight)
        device = weight_fp8.device
        self.register_buffer("weight_fp8", weight_fp8)  # (out, in), row-major: .t() is column-major
        self.register_buffer("weight_scale", torch.tensor(weight_scale, device=device))
        input_scale = 1.0 if input_bound is None else self.input_bound / FP8_MAX
        self.register_buffer("input_scale", torch.tensor(input_scale, device=device))
        self.gemm_scale = input_scale * weight_scale
        """The product of both scales, for kernels that run this GEMM themselves (the cross-attention's)."""
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor, input_scale: torch.Tensor | None = None) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if input_scale is None and self.input_bound is None:
            raise ValueError("this float8 linear takes float8 input with its scale: forward(x, input_scale)")
        if rows.dtype != FP8:
            rows = to_fp8(rows, self.input_bound / FP8_MAX if input_scale is None else input_scale)  # fuses into x's producer
        scale_a = self.input_scale if input_scale is None else input_scale
        if self.runs_tma(rows.shape[0], rows.is_cuda):
            y = linear_fp8_tma(rows, self.weight_fp8, scale_a, self.weight_scale, self.bias, self.out_dtype)
        else:
            y = torch._scaled_mm(
                rows, self.weight_fp8.t(), scale_a=scale_a, scale_b=self.weight_scale, bias=self.bias,
                out_dtype=self.out_dtype, use_fast_accum=self.fast_accum,
            )
        return y.reshape(*x.shape[:-1], self.out_features)

    def runs_tma(self, rows: int, on_cuda: bool) -> bool:
        """Whether a call with `rows` rows runs our TMA GEMM: on CUDA only at the shapes where it beat
        cuBLASLt (a static choice under torch.compile); on CPU the op is torch's arithmetic at any shape."""
        return self.tma and (not on_cuda or beats_cublaslt(rows, self.in_features, self.out_features))

    def extra_repr(self) -> str:
        bound = "scale per prompt pair" if self.input_bound is None else f"|x| <= {self.input_bound:.4g}"
        kernel = ", TMA GEMM" if self.tma else (", fast accumulation" if self.fast_accum else "")
        return f"in_features={self.in_features}, out_features={self.out_features}, float8 e4m3, {bound}{kernel}"


def float8_gemm_missing(device: torch.device) -> str | None:
    """Why `device` cannot run float8 GEMMs fast, or None when it can (CUDA compute capability >= 8.9)."""
    if not hasattr(torch, "_scaled_mm"):
        return f"torch {torch.__version__} has no float8 GEMMs"
    if device.type != "cuda":
        return f"{device.type} has no float8 tensor cores"
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 9):
        return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor}) has no float8 tensor cores (sm_89 or newer)"
    return None


def resolve_quantize(choice: str, device: torch.device, attention: str = "fast") -> str:
    """The settings' quantize choice made concrete: "auto" is "fp8" on the fast attention path where
    float8 GEMMs run, else "none" (the reference path stays the published fp16 one)."""
    if choice == "auto":
        return "none" if attention != "fast" or float8_gemm_missing(device) else "fp8"
    if choice == "fp8" and device.type == "cuda" and (reason := float8_gemm_missing(device)):
        raise ValueError(f"quantize='fp8' needs a GPU with float8 tensor cores: {reason}; use quantize='none'")
    return choice


Replacement = tuple[nn.Module, str, nn.Module]
"""(parent, attribute, the module that was there): what `restore` puts back."""


def value_bound(attention: nn.Module, norm: nn.LayerNorm) -> float:
    """Largest |output| a self-attention after `norm` can give: its output is a convex combination of
    its V rows, each a linear of the norm's output (the V rows of a fused `to_qkv`, or `to_v`)."""
    if hasattr(attention, "to_qkv"):
        bounds = linear_after_norm_bounds(attention.to_qkv, norm)
        return float(bounds[2 * bounds.numel() // 3 :].max())
    return float(linear_after_norm_bounds(attention.to_v, norm).max())


def quantize_fp8(
    unet: nn.Module,
    min_features: int = MIN_FEATURES,
    fuse_geglu: bool = False,
    convs: bool | Callable[[nn.Conv2d], bool] = False,
    attention_outputs: bool = False,
    fast_accum: bool = False,
    tma: bool = False,
) -> list[Replacement]:
    """Convert every layer-norm transformer block's QKV, cross-attention query and feed-forward
    linears (both sides >= min_features) to Fp8Linear with their input bounds; returns the
    replacements (none for a UNet without such blocks).

    fuse_geglu: the feed-forward's first linear and its GEGLU become one `Fp8Geglu` kernel that
    writes the second linear's float8 input (where the widths fit its tiling).
    convs: the resnets' 3x3 convolutions after a group norm and SiLU become `Fp8Conv3x3` kernels
        (all of them, or those for which this predicate of the convolution is true).
    attention_outputs: the output projections of the attentions that run our kernel (their
    processor's `triton`), which then writes their float8 input (`triton_attention.py`):
    self-attention at the fixed `value_bound`, cross-attention at a scale set per prompt pair.
    fast_accum: cuBLASLt's float8 GEMMs accumulate in the tensor cores' own precision, without
    promoting partial sums to float32 (as our Triton float8 kernels do on Hopper by default).
    tma: the float8 linears with at most 1280 inputs run our Triton GEMM with TMA loads instead of
    cuBLASLt's, and the fused GEGLUs load by TMA too (Hopper and newer).
    """
    if not hasattr(torch, "_scaled_mm"):
        raise RuntimeError(f"quantize='fp8' needs torch with float8 GEMMs (torch {torch.__version__} has none)")
    from diffusers.models.activations import GEGLU  # noqa: PLC0415 - engine-only import
    from diffusers.models.attention import BasicTransformerBlock  # noqa: PLC0415

    from sonosteer.engine.fp8_conv import Fp8Conv3x3, fusable as fusable_convs  # noqa: PLC0415 - they build on this module
    from sonosteer.engine.fused_geglu import Fp8Geglu, fusable  # noqa: PLC0415

    def fp8_linear(linear: nn.Linear, input_bound: float | None, runs_alone: bool = True) -> Fp8Linear:
        use_tma = tma and runs_alone and tma_fits(linear.in_features)
        return Fp8Linear(linear, input_bound, fast_accum=fast_accum, tma=use_tma)

    def wide(linear: nn.Module) -> bool:
        return isinstance(linear, nn.Linear) and min(linear.in_features, linear.out_features) >= min_features

    # (parent, attribute, float8 replacement of the module there); bounds come from unconverted weights.
    plan: list[tuple[nn.Module, str, Callable[[nn.Module], nn.Module]]] = []
    for block in unet.modules():
        if not isinstance(block, BasicTransformerBlock) or block.norm_type != "layer_norm" or block.pos_embed is not None:
            continue
        attentions = [(block.attn1, block.norm1, ("to_qkv", "to_q", "to_k", "to_v"))]
        if block.attn2 is not None:
            attentions.append((block.attn2, block.norm2, ("to_q",)))  # its K/V read the text, not the norm
        for attention, norm, names in attentions:
            ours = getattr(attention.processor, "triton", False)  # our kernel runs a cross-attention's query GEMM
            runs_alone = not (attention.is_cross_attention and ours)
            linear = functools.partial(fp8_linear, input_bound=layer_norm_bound(norm), runs_alone=runs_alone)
            plan += [(attention, name, linear) for name in names if wide(getattr(attention, name, None))]
            if attention_outputs and ours and wide(attention.to_out[0]):
                bound = None if attention.is_cross_attention else value_bound(attention, norm)
                plan.append((attention.to_out, "0", functools.partial(fp8_linear, input_bound=bound)))
        geglu, out = block.ff.net[0], block.ff.net[2]
        if isinstance(geglu, GEGLU) and wide(geglu.proj) and wide(out):
            input_bound, output_bound = layer_norm_bound(block.norm3), geglu_bound(geglu, block.norm3)
            if fuse_geglu and fusable(geglu):
                fused = functools.partial(Fp8Geglu, input_bound=input_bound, output_bound=output_bound, tma=tma)
                first = (block.ff.net, "0", fused)
            else:
                first = (geglu, "proj", functools.partial(fp8_linear, input_bound=input_bound))
            plan += [first, (block.ff.net, "2", functools.partial(fp8_linear, input_bound=output_bound))]
    if convs:
        chosen = convs if callable(convs) else (lambda conv: True)
        plan += [
            (resnet, name, functools.partial(Fp8Conv3x3, norm=norm))
            for resnet in unet.modules()
            for name, norm in fusable_convs(resnet)
            if chosen(getattr(resnet, name))
        ]
    replaced = []
    for parent, name, convert in plan:
        original = getattr(parent, name)
        setattr(parent, name, convert(original))
        replaced.append((parent, name, original))
    return replaced


def restore(replaced: list[Replacement]) -> None:
    """Undo `quantize_fp8`: the original linears go back where they were."""
    for parent, name, original in replaced:
        setattr(parent, name, original)
