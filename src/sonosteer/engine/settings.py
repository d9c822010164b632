"""EngineSettings: which weights, which size, which device and how to run them (plain data, no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sonosteer.paths import cache_root

DEFAULT_MODEL = "stabilityai/sdxl-turbo"
DEFAULT_DECODER = "madebyollin/taesdxl"
DEFAULT_SAES = "surokpro2/sdxl-saes"

SIZE_STEP_PX = 64
"""Frame sides must be multiples of this: the latent is 1/8 of the image and the UNet halves it twice more."""
MAX_SIDE_PX = 2048

DTYPES = ("auto", "float16", "bfloat16", "float32")
ATTENTION_PATHS = ("fast", "reference")
COMPILE_MODES = ("reduce-overhead", "max-autotune")
QUANTIZATIONS = ("auto", "none", "fp8")
GRAPH_CAPTURES = ("manual", "trees")
ATTENTION_KERNELS = ("triton", "cudnn", "flash")


def check_frame_size(height: int, width: int) -> None:
    """Raise ValueError unless both sides are positive multiples of 64 (at most 2048)."""
    for name, side in (("height", height), ("width", width)):
        if not isinstance(side, int) or side <= 0 or side % SIZE_STEP_PX or side > MAX_SIDE_PX:
            lower = max(SIZE_STEP_PX, (side // SIZE_STEP_PX) * SIZE_STEP_PX) if isinstance(side, int) else 512
            raise ValueError(
                f"frame {name} must be a multiple of {SIZE_STEP_PX} px between {SIZE_STEP_PX} and {MAX_SIDE_PX}, "
                f"got {side!r} (try {lower} or {min(MAX_SIDE_PX, lower + SIZE_STEP_PX)}; SDXL-Turbo is trained at 512)"
            )


@dataclass(frozen=True)
class EngineSettings:
    """How to build the SDXL-Turbo engine.

    model / decoder / saes: a Hugging Face repo id or a local folder (diffusers layout for the
        model, AutoencoderTiny layout for the decoder, sdxl-unbox layout for the SAEs).
    model_variant: weights variant of a hub model ("fp16" downloads half the bytes); local folders
        use the variant when its files are there and the plain files otherwise.
    device: "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    dtype: "auto" (float16 on CUDA, float32 on CPU) or a torch dtype name.
    compile: None = on for CUDA (one CUDA graph), off on CPU (eager).
    compile_backend: torch.compile backend; "inductor" with CUDA graphs is the product path,
        "aot_eager" checks graph capture without a compiler (tests).
    channels_last: None = on for CUDA (measured faster there), off on CPU.
    ring_size: host frame buffers; a frame from render() stays valid for ring_size - 1 renders.
    allow_download: fetch missing hub weights (still refused when HF_HUB_OFFLINE=1).
    compile_cache_dir: where inductor keeps compiled kernels between runs (None = cache root), in a
        subfolder per version of our custom ops (`compiling.compile_cache_folder`).
    attention: "fast" (default: fused self-attention QKV, cross-attention K/V projected once per
        prompt and blended per frame, the time conditioning folded for the one timestep, the
        decoder's convolution epilogues inside cuDNN; same function, fewer kernels) or
        "reference" (diffusers' own modules, the exact published fp16 path).
    attention_kernel: the fast path's attention on CUDA: "triton" (our kernel, `triton_attention.py`:
        no memset per call, float8 output for float8 output projections, the cross-attention query
        computed inside; cuDNN's SDPA where Triton cannot run), or PyTorch's SDPA with "cudnn" or
        "flash" kernels.
    compile_mode: inductor mode on CUDA: "reduce-overhead" (no autotuning) or "max-autotune"
        (Triton GEMM autotuning and coordinate-descent tuning: longer first compile, cached on disk).
    inductor_options: extra inductor config for the compile, as (name, value) pairs, e.g.
        (("conv_1x1_as_mm", True),); for measuring variants (`sonosteer bench engine --inductor`).
    graph_capture: how the compiled generator becomes one CUDA graph on CUDA: "manual" (captured
        once with torch.cuda.graph and replayed: the least host work per frame) or "trees"
        (inductor's own CUDA-graph trees).
    quantize: "auto" (float8 on the fast path where the GPU has float8 tensor cores and, checked
        at build on the loaded model, it moves x0 by at most 2 %; else fp16), "none" or "fp8":
        the QKV, cross-attention query and feed-forward linears in float8 with one scale per
        tensor, the activation's fixed from a bound its layer norm guarantees. On an H100 with
        random weights: 0.5 ms faster a frame, x0 within 0.4 % of fp16 (docs/engine-performance.md).
        The exact published fp16 path is attention="reference" (`--exact`).
    fuse_geglu: with float8 on CUDA, the feed-forward's first linear and its GEGLU as one Triton
        kernel that writes the second linear's float8 input (`fused_geglu.py`); False keeps
        cuBLASLt's GEMM and inductor's GEGLU kernel (for measuring).
    fp8_convs: with float8 on CUDA, the resnets' 3x3 convolutions whose input has at most
        fp8_conv_max_pixels pixels per image in float8, as one Triton kernel each, their input
        bounded by the group norm before them (`fp8_conv.py`). On an H200 the 24 convolutions of the
        32x32 and 16x16 latents took the frame 0.14 ms faster, measured in one process (6.60 against
        6.74 ms for the graph, 95 % interval -0.142 to -0.139 ms), x0 1.2 % from the fp16 reference
        path instead of 0.8 %. Under quantize="auto" convolutions that move x0 past 2 % go back to
        fp16 before the linears do; False keeps cuDNN's fp16 convolutions.
    fp8_conv_max_pixels: with fp8_convs, the largest input (height x width, per image) of a
        float8 convolution; None for all. 1024 takes the 32x32 and 16x16 latents of a 512 px frame:
        x0 0.9 % from fp16 where all 34 convolutions give 2.1 % (exact arithmetic on the CPU).
    fp8_fast_accum: with float8 on CUDA, cuBLASLt's float8 GEMMs accumulate in the tensor cores'
        own precision instead of promoting partial sums to float32 (`torch._scaled_mm`'s
        use_fast_accum), as our Triton float8 kernels already do (Triton's default on Hopper). On an
        H200 the frame's graph took 0.15 ms less (6.91 against 7.05 ms), x0 still 0.5 % from the
        fp16 reference path; False promotes them (for measuring).
    tma_gemms: with float8 on Hopper or newer, the float8 linears with at most 1280 inputs run our
        Triton GEMM whose tiles arrive by TMA instead of cuBLASLt's (`tma_linear.py`) at the shapes
        where it was measured faster, and the fused GEGLU loads its tiles by TMA too up to 640 programs
        (210 linears and 70 GEGLUs a frame at 512 px). On an H200 the frame's graph took 0.055 ms
        less, measured in one process (6.50 against 6.56 ms, 95 % interval -0.056 to -0.054 ms), and
        batch 4 ran at 296 frames/s; False keeps cuBLASLt and pointer loads (for measuring).
    persistent_norms: with inductor on CUDA, rows of up to 2048 elements (the 1280-wide layer norms)
        reduce in one pass, where inductor's own limit of 1024 makes them loop over each row twice
        (`inductor_choices.py`). On an H200 the frame's graph took 0.165 ms less (6.70 against 6.86
        ms); False keeps inductor's heuristics (for measuring).
    launch_pdl: opt-in, for measuring: our Triton kernels (attention, fused GEGLU) with programmatic
        dependent launch, so each starts while the kernel before it finishes (Hopper and newer). Off by
        default: on an H200 it made the frame's graph 0.3 ms slower (7.27 against 6.97 ms), although
        the attention calls replayed alone gained 0.04 ms.
    gpu_jpeg: encode frames to JPEG on the GPU (nvJPEG through torchvision) so that only the JPEG
        bytes cross to the host; None = on when CUDA and torchvision's nvJPEG work.
    """

    model: str = DEFAULT_MODEL
    model_variant: str | None = "fp16"
    decoder: str = DEFAULT_DECODER
    saes: str = DEFAULT_SAES
    height: int = 512
    width: int = 512
    device: str = "auto"
    dtype: str = "auto"
    compile: bool | None = None
    compile_backend: str = "inductor"
    channels_last: bool | None = None
    ring_size: int = 3
    allow_download: bool = True
    compile_cache_dir: Path | None = None
    prompt_cache_size: int = 32
    noise_cache_size: int = 32
    attention: str = "fast"
    attention_kernel: str = "triton"
    compile_mode: str = "reduce-overhead"
    inductor_options: tuple[tuple[str, bool | int | float | str], ...] = ()
    graph_capture: str = "manual"
    quantize: str = "auto"
    fuse_geglu: bool = True
    fp8_convs: bool = True
    fp8_conv_max_pixels: int | None = 1024
    fp8_fast_accum: bool = True
    tma_gemms: bool = True
    persistent_norms: bool = True
    launch_pdl: bool = False
    gpu_jpeg: bool | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        check_frame_size(self.height, self.width)
        choices = (
            ("dtype", DTYPES),
            ("attention", ATTENTION_PATHS),
            ("compile_mode", COMPILE_MODES),
            ("attention_kernel", ATTENTION_KERNELS),
            ("graph_capture", GRAPH_CAPTURES),
            ("quantize", QUANTIZATIONS),
        )
        for name, allowed in choices:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.fp8_conv_max_pixels is not None and self.fp8_conv_max_pixels < 1:
            raise ValueError(f"fp8_conv_max_pixels must be at least 1 (or None for all), got {self.fp8_conv_max_pixels}")
        if self.ring_size < 2:
            raise ValueError(f"ring_size must be at least 2 (one frame out, one being written), got {self.ring_size}")
        if self.prompt_cache_size < 2 or self.noise_cache_size < 2:
            raise ValueError("prompt_cache_size and noise_cache_size must be at least 2 (the A and B slots)")

    def resolved_compile_cache_dir(self) -> Path:
        """The folder for inductor's on-disk caches (kept across runs so a second start is fast)."""
        return Path(self.compile_cache_dir) if self.compile_cache_dir else cache_root() / "torch-compile"
