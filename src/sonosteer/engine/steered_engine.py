"""SteeredEngine: the SDXL-Turbo Renderer. FrameControls in (in-place writes), uint8 RGB frames out.

Per frame, `apply` writes the four strengths and masks, the prompt blend and the noise angle on
the host and sends them in one host-to-device copy (`frame_upload.py`); a new feature copies one
decoder column (device to device), a new prompt or seed copies a cached tensor. `render` replays
the one-step generator (one CUDA graph when compiled) and copies the frame into a ring of pinned
host buffers; `launch` + `collect_jpeg` replay it and encode the frame on the GPU (nvJPEG), so
that only the JPEG bytes cross to the host and the next frame can be applied while this one renders.
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sonosteer.blocks import BLOCKS, Block
from sonosteer.bridge.frame_controls import FrameControls, PromptRef
from sonosteer.bridge.slerp import resolve_prompt
from sonosteer.engine.architectures import pooled_width
from sonosteer.engine.devices import MAKE_ROOM, describe_device, resolve_device, resolve_dtype
from sonosteer.engine.compiling import compile_generator, compile_plan
from sonosteer.engine.cuda_graph import CapturedGraph
from sonosteer.engine.errors import EngineError, GpuOutOfMemoryError, is_out_of_memory
from sonosteer.engine.fast_attention import install_fast_attention
from sonosteer.engine.frame_ring import FrameRing
from sonosteer.engine.frame_upload import FrameUpload
from sonosteer.engine.fused_decoder import fuse_decoder_epilogues
from sonosteer.engine.fp8_conv import Fp8Conv3x3, run_recording_conv_pixels
from sonosteer.engine.fused_geglu import Fp8Geglu
from sonosteer.engine.generator import OneStepGenerator, one_step_schedule
from sonosteer.engine import gpu_jpeg, triton_attention
from sonosteer.engine.loading import EngineParts, load_parts
from sonosteer.engine.lru_cache import LruCache
from sonosteer.engine.noise import NoiseBank
from sonosteer.engine.renderer import FeatureInfo, ProgressFn
from sonosteer.engine.sae import BlockSae
from sonosteer.engine.prompts import PromptEmbedding
from sonosteer.engine.quantize import (
    FLOAT8_X0_TOLERANCE,
    Fp8Linear,
    quantize_fp8,
    relative_error,
    resolve_quantize,
    restore,
)
from sonosteer.engine.tma_linear import run_counting_tma_gemms
from sonosteer.engine.triton_kernels import pdl_missing, set_programmatic_launch, tma_missing, triton_missing
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.slerp import slerp
from sonosteer.engine.steering import SteeredBlock, block_grid, install_steering, resize_mask
from sonosteer.engine.time_conditioning import fold_time_conditioning
from sonosteer.engine.weights import resolve_weights


class DeadFeatureWarning(UserWarning):
    """A dead SAE feature (mean activation 0) was selected: it is applied, and steers nothing."""


@dataclass
class _BlockState:
    """What the engine last wrote into one block's wrapper (host-side copies, so no GPU reads)."""

    block: Block
    wrapper: SteeredBlock
    sae: BlockSae
    directions: torch.Tensor
    grid_hw: tuple[int, int]
    scale_host: np.ndarray
    mask_host: np.ndarray
    feature_id: int = -1
    mean_activation: float = 0.0
    mask_bytes: bytes | None = None  # the last mask written, as float32 bytes (compared each frame)


class SteeredEngine:
    """Implements `sonosteer.engine.renderer.Renderer` with SAE-steered one-step SDXL-Turbo.

    Dead features may be selected: they are applied (their mean activation is 0, so they steer
    nothing) and a DeadFeatureWarning is issued once per block and feature; `features()` lists
    them so a UI can grey them out. An out-of-range feature id is a ValueError and changes nothing.
    """

    kind = "sdxl-turbo"

    def __init__(self, parts: EngineParts, settings: EngineSettings | None = None):
        settings = settings or EngineSettings()
        settings.validate()
        self.settings = settings
        self.height, self.width, self.ring_size = settings.height, settings.width, settings.ring_size
        first = next(parts.unet.parameters())
        self.device, self.dtype = first.device, first.dtype
        self._cuda = self.device.type == "cuda"
        latent_hw = (self.height // 8, self.width // 8)

        wrappers = install_steering(parts.unet, {n: s.d_model for n, s in parts.saes.items()}, latent_hw, self.dtype)
        if settings.channels_last if settings.channels_last is not None else self._cuda:
            parts.unet.to(memory_format=torch.channels_last)
            parts.decoder.to(memory_format=torch.channels_last)
        self.attention_kernel = self._attention_kernel(settings) if settings.attention == "fast" else "diffusers"
        self._cross_kv = (
            install_fast_attention(parts.unet, parts.sequence_length, self.attention_kernel)
            if settings.attention == "fast"
            else None
        )
        timestep, sigma = one_step_schedule(parts.scheduler_config)
        self._time_conditioning = None
        if settings.attention == "fast":  # same arithmetic as diffusers' modules, fewer kernels
            self._time_conditioning = fold_time_conditioning(parts.unet, timestep)
            fuse_decoder_epilogues(parts.decoder)
        self.generator = OneStepGenerator(
            parts.unet,
            parts.decoder,
            height=self.height,
            width=self.width,
            timestep=timestep,
            sigma=sigma,
            sequence_length=parts.sequence_length,
            pooled_width=pooled_width(parts.unet.config),
            dtype=self.dtype,
            cross_kv=self._cross_kv,
        )
        grids = {block.short_name: block_grid(parts.unet.config, block, latent_hw) for block in BLOCKS}
        fields = {"blend": (), "angle": ()}
        for name, grid_hw in grids.items():
            fields |= {f"{name}.scale": (), f"{name}.mask": grid_hw}
        self._upload = FrameUpload(fields, self.device)
        self.generator.blend, self.generator.angle = self._upload.view("blend"), self._upload.view("angle")
        self._blocks = []
        for block in BLOCKS:
            name, wrapper = block.short_name, wrappers[block.short_name]
            wrapper.scale, wrapper.activation_map = self._upload.view(f"{name}.scale"), self._upload.view(f"{name}.mask")
            self._blocks.append(
                _BlockState(
                    block=block,
                    wrapper=wrapper,
                    sae=parts.saes[name],
                    directions=parts.saes[name].directions.to(self.device, self.dtype),
                    grid_hw=grids[name],
                    scale_host=self._upload.host(f"{name}.scale"),
                    mask_host=self._upload.host(f"{name}.mask"),
                )
            )
        self.prompt_encoder = parts.prompt_encoder
        self._embeddings: dict[PromptRef, PromptEmbedding] = {}
        self._prompt_kv = LruCache(lambda ref: self._cross_kv.project(self._embedding(ref).tokens), 8)
        self.noise = NoiseBank(tuple(self.generator.noise_a.shape), self.device, settings.noise_cache_size)
        self._ring = FrameRing(settings.ring_size, self.height, self.width, pinned=self._cuda)
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(3)] if self._cuda else []
        self._launched: torch.Tensor | None = None  # the frame started by launch(), until collected
        self._launch_s = 0.0
        self._prompt_pair: tuple[str, str] | None = None
        self._seed_pair: tuple[int, int] | None = None
        self._warned_dead: set[tuple[str, int]] = set()
        self._closed = False
        self.last_timings_ms: dict[str, float] = {}
        self.warmup_s: float | None = None
        self.apply(FrameControls())
        self.quantize = resolve_quantize(settings.quantize, self.device, settings.attention)
        self.float8_x0_error: float | None = None
        self.fused_geglus = self.fp8_convs = self.fp8_attention_outputs = self.tma_gemms = 0
        if self.quantize == "fp8":
            triton_runs = triton_missing(self.device) is None
            self._convert_to_float8(
                explicit=settings.quantize == "fp8",
                fuse_geglu=settings.fuse_geglu and triton_runs,
                convs=settings.fp8_convs and triton_runs,
                attention_outputs=self.attention_kernel == "triton" and triton_runs,
                fast_accum=settings.fp8_fast_accum,
                conv_max_pixels=settings.fp8_conv_max_pixels,
                tma=settings.tma_gemms and tma_missing(self.device) is None,
            )
        self.launch_pdl = self._programmatic_launch(settings.launch_pdl)
        self._compiled, self._graphed = compile_plan(settings, self._cuda)
        self._generate = (
            compile_generator(self.generator, settings, self._graphed, self._mutable_buffers())
            if self._compiled
            else self.generator
        )
        self.jpeg_reason = self._gpu_jpeg_reason(settings.gpu_jpeg)
        self.encodes_jpeg = self.jpeg_reason is None
        mode = "CUDA graph" if self._graphed else ("compiled" if self._compiled else "eager")
        if self._graphed and settings.compile_mode != "reduce-overhead":
            mode += f" ({settings.compile_mode})"
        if settings.attention == "fast" and self._cuda:  # elsewhere every kernel choice is torch arithmetic
            mode += f", {self.attention_kernel} attention"
        if self.quantize == "fp8":  # then _convert_to_float8 has measured the error
            fused = ", fused GEGLU" if self.fused_geglus else ""
            outputs = ", fp8 attention outputs" if self.fp8_attention_outputs else ""
            convs = f", fp8 convs ({self.fp8_convs})" if self.fp8_convs else ""
            tma = f", TMA GEMMs ({self.tma_gemms})" if self.tma_gemms else ""
            accum = ", fast accumulation" if settings.fp8_fast_accum and self._cuda else ""  # a GPU setting
            mode += f", fp8 linears{fused}{outputs}{convs}{tma}{accum} (x0 {100 * self.float8_x0_error:.1f} % from fp16)"
        if self.launch_pdl:
            mode += ", PDL"
        if self.encodes_jpeg:
            mode += ", nvJPEG"
        dtype_name = str(self.dtype).removeprefix("torch.")
        self.label = f"SDXL-Turbo, {mode}, {dtype_name} on {describe_device(self.device)}"
        self.description = parts.description

    def _programmatic_launch(self, wanted: bool) -> bool:
        """Whether our kernels launch with programmatic dependent launch (set on them; raises if asked for and impossible)."""
        if wanted and (reason := pdl_missing(self.device)) is not None:
            raise EngineError(f"launch_pdl=True, but {reason}")
        set_programmatic_launch(self.generator, wanted)
        return wanted

    def _attention_kernel(self, settings: EngineSettings) -> str:
        """The fast path's attention kernel: the setting, except that our Triton kernel gives way (with a
        warning) to cuDNN's SDPA on a GPU where it cannot run. Off CUDA the op is torch arithmetic."""
        if settings.attention_kernel != "triton" or not self._cuda:
            return settings.attention_kernel
        if (reason := triton_attention.probe(self.device)) is None:
            return "triton"
        warnings.warn(f"our Triton attention kernel cannot run here ({reason}): using cuDNN's SDPA", stacklevel=3)
        return "cudnn"

    def _convert_to_float8(
        self,
        explicit: bool,
        fuse_geglu: bool,
        convs: bool,
        attention_outputs: bool = False,
        fast_accum: bool = False,
        conv_max_pixels: int | None = None,
        tma: bool = False,
    ) -> None:
        """Float8 transformer linears (with fused GEGLUs, float8 attention outputs and projections, and
        float8 resnet convolutions at up to conv_max_pixels input pixels per image, all if None),
        checked on the model in hand: x0 of the current frame against fp16.

        Under quantize="auto" an error beyond FLOAT8_X0_TOLERANCE puts the fp16 convolutions back,
        then, if still beyond, every fp16 module (with a warning); quantize="fp8" keeps float8 and
        reports the error in the label. Our Triton kernels, if they fail to build or run here (Triton
        without a C compiler, say), give way, with a warning, to cuBLASLt's float8 GEMMs, inductor's
        GEGLU and cuDNN's convolutions.
        """
        with torch.no_grad():
            reference, pixels = run_recording_conv_pixels(self.generator.unet, self.generator.denoise)
        limit = math.inf if conv_max_pixels is None else conv_max_pixels
        replaced = quantize_fp8(
            self.generator.unet,
            fuse_geglu=fuse_geglu,
            convs=convs and (lambda conv: pixels.get(id(conv), math.inf) <= limit),
            attention_outputs=attention_outputs,
            fast_accum=fast_accum,
            tma=tma,
        )
        if not replaced:
            if explicit:
                raise ValueError("quantize='fp8' found no transformer linears to convert: not an SDXL-architecture UNet")
            self.quantize = "none"  # nothing wide enough to gain from float8 (a tiny test model)
            return
        try:
            with torch.no_grad():
                x0, self.tma_gemms = run_counting_tma_gemms(self.generator.unet, self.generator.denoise, self._cuda)
        except Exception as error:
            if not (fuse_geglu or convs or attention_outputs or tma):
                raise
            restore(replaced)
            warnings.warn(
                f"our float8 Triton kernels failed on this machine ({type(error).__name__}: {error}); "
                "using cuBLASLt's float8 GEMMs, a separate GEGLU kernel, fp16 attention output projections "
                "and cuDNN's fp16 convolutions",
                stacklevel=3,
            )
            replaced = quantize_fp8(self.generator.unet, fast_accum=fast_accum)
            self.tma_gemms = 0
            with torch.no_grad():
                x0 = self.generator.denoise()
        self.float8_x0_error = relative_error(x0, reference)
        conv_replacements = [r for r in replaced if isinstance(getattr(r[0], r[1]), Fp8Conv3x3)]
        if self.float8_x0_error > FLOAT8_X0_TOLERANCE and not explicit and conv_replacements:
            restore(conv_replacements)  # the convolutions' operands round the most: fp16 convolutions first
            replaced = [r for r in replaced if r not in conv_replacements]
            warnings.warn(
                f"float8 convolutions moved x0 by {100 * self.float8_x0_error:.1f} % on this model (more than "
                f"{100 * FLOAT8_X0_TOLERANCE:.0f} %): keeping them in fp16",
                stacklevel=3,
            )
            with torch.no_grad():
                self.float8_x0_error = relative_error(self.generator.denoise(), reference)
        modules = list(self.generator.unet.modules())
        self.fused_geglus = sum(isinstance(m, Fp8Geglu) for m in modules)
        self.fp8_convs = sum(isinstance(m, Fp8Conv3x3) for m in modules)
        self.fp8_attention_outputs = sum(isinstance(getattr(m, "to_out", [None])[0], Fp8Linear) for m in modules)
        if self.float8_x0_error > FLOAT8_X0_TOLERANCE and not explicit:
            restore(replaced)
            self.quantize = "none"
            self.fused_geglus = self.fp8_convs = self.fp8_attention_outputs = self.tma_gemms = 0
            warnings.warn(
                f"float8 moved x0 by {100 * self.float8_x0_error:.1f} % on this model (more than "
                f"{100 * FLOAT8_X0_TOLERANCE:.0f} %): rendering in fp16 (quantize='fp8' forces float8)",
                stacklevel=3,
            )

    @classmethod
    def from_settings(cls, settings: EngineSettings | None = None, progress: ProgressFn | None = None) -> "SteeredEngine":
        """Find (or download) the weights, load them and build the engine; raises WeightsMissingError."""
        settings = settings or EngineSettings()
        settings.validate()
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        weights = resolve_weights(settings, progress=_scaled(progress, 0.0, 0.3))
        built: list[SteeredEngine] = []

        def build() -> None:  # the loaded weights live only in this frame: gone when building fails
            parts = load_parts(weights, device, dtype, settings.prompt_cache_size, _scaled(progress, 0.3, 0.95))
            built.append(cls(parts, settings))

        oom = _out_of_memory_message(build)
        if oom is not None:
            raise _out_of_memory("loading the model", oom)
        engine = built[0]
        if progress:
            progress(1.0, f"engine ready: {engine.label}")
        return engine

    def _gpu_jpeg_reason(self, wanted: bool | None) -> str | None:
        """None when frames will be JPEG-encoded on the GPU; otherwise why not (raises if asked for and impossible)."""
        if wanted is False:
            return "GPU JPEG encoding is turned off"
        reason = gpu_jpeg.probe(self.device)
        if reason is not None and wanted:
            raise EngineError(f"gpu_jpeg=True, but {reason}")
        return reason

    def _mutable_buffers(self) -> list[torch.Tensor]:
        names = ("prompt_a", "prompt_b", "pooled_a", "pooled_b", "blend", "noise_a", "noise_b", "angle")
        tensors = [getattr(self.generator, n) for n in names]
        if self._cross_kv is not None:
            tensors += list(self._cross_kv.buffers())
        if self._time_conditioning is not None:
            tensors.append(self._time_conditioning.projected)
        for state in self._blocks:
            tensors += [state.wrapper.direction, state.wrapper.scale, state.wrapper.activation_map]
        return tensors

    # --- per frame -------------------------------------------------------------------------

    def apply(self, controls: FrameControls) -> None:
        """Write one frame's controls into the fixed buffers (validated first: a bad frame changes nothing)."""
        self._check_open()
        start = time.perf_counter()
        controls.validate()
        for state, bc in zip(self._blocks, controls.blocks):
            self._check_feature(state, bc.feature_id)
        for state, bc in zip(self._blocks, controls.blocks):
            if bc.feature_id != state.feature_id:  # rare path: one decoder column, device to device
                self._select_feature(state, int(bc.feature_id))
            state.scale_host[...] = float(bc.strength) * state.mean_activation
            mask_bytes = np.ascontiguousarray(bc.mask, dtype=np.float32).tobytes()  # cheaper than array_equal
            if mask_bytes != state.mask_bytes:
                state.mask_host[...] = resize_mask(bc.mask, state.grid_hw).numpy()
                state.mask_bytes = mask_bytes
        gen = self.generator
        pair = (controls.prompt_a, controls.prompt_b)
        if pair != self._prompt_pair:
            a, b = self._embedding(controls.prompt_a), self._embedding(controls.prompt_b)
            gen.prompt_a.copy_(a.tokens)
            gen.pooled_a.copy_(a.pooled)
            gen.prompt_b.copy_(b.tokens)
            gen.pooled_b.copy_(b.pooled)
            if self._cross_kv is not None:
                self._cross_kv.set_pair(
                    self._prompt_kv.get(controls.prompt_a), self._prompt_kv.get(controls.prompt_b), a.tokens, b.tokens
                )
            self._prompt_pair = pair
        if (controls.seed_a, controls.seed_b) != self._seed_pair:
            gen.noise_a.copy_(self.noise(controls.seed_a))
            gen.noise_b.copy_(self.noise(controls.seed_b))
            self._seed_pair = (int(controls.seed_a), int(controls.seed_b))
        self._upload.host("blend")[...] = float(controls.prompt_blend)
        self._upload.host("angle")[...] = float(controls.noise_angle_rad)
        self._upload.upload()
        self.last_timings_ms["apply"] = (time.perf_counter() - start) * 1e3

    def _check_feature(self, state: _BlockState, feature_id: int) -> None:
        n = state.sae.n_features
        if isinstance(feature_id, bool) or not isinstance(feature_id, (int, np.integer)) or not 0 <= feature_id < n:
            raise ValueError(
                f"block {state.block.short_name}: feature {feature_id!r} is out of range; "
                f"its SAE has {n} features (0..{n - 1})"
            )

    def _select_feature(self, state: _BlockState, feature_id: int) -> None:
        state.wrapper.direction.copy_(state.directions[feature_id])
        state.mean_activation = float(state.sae.mean_activation[feature_id])
        state.feature_id = feature_id
        key = (state.block.short_name, feature_id)
        if feature_id in state.sae.dead_ids and key not in self._warned_dead:
            self._warned_dead.add(key)
            warnings.warn(
                f"block {state.block.short_name}: feature {feature_id} is dead (mean activation 0); it steers nothing",
                DeadFeatureWarning,
                stacklevel=3,
            )

    def _embedding(self, ref: PromptRef) -> PromptEmbedding:
        """A prompt's conditioning; a PromptBlend (a frozen blend) is the SLERP of its parts' embeddings."""
        if len(self._embeddings) > 64:
            self._embeddings.clear()
        return resolve_prompt(ref, self.prompt_encoder, _slerp_embedding, self._embeddings)

    def prepare_prompts(self, *prompts: PromptRef) -> None:
        """Encode prompts ahead of time (e.g. when a destination is loaded) so the next apply() only copies."""
        for prompt in prompts:
            self._embedding(prompt)
            if self._cross_kv is not None:
                self._prompt_kv.get(prompt)

    def render(self) -> np.ndarray:
        """The current frame as (height, width, 3) uint8; valid for ring_size - 1 further renders."""
        self._check_open()
        if self._launched is not None:
            raise RuntimeError("collect_jpeg() the launched frame before rendering another")
        start = time.perf_counter()
        slot, array = self._ring.next()
        if self._cuda:
            begin, generated, copied = self._events
            begin.record()
            frame = self._replay()
            generated.record()
            slot.copy_(frame, non_blocking=True)
            copied.record()
            copied.synchronize()
            gpu_ms, d2h_ms = begin.elapsed_time(generated), generated.elapsed_time(copied)
        else:
            frame = self._replay()
            mid = time.perf_counter()
            slot.copy_(frame)
            gpu_ms, d2h_ms = (mid - start) * 1e3, (time.perf_counter() - mid) * 1e3
        self.last_timings_ms.update(gpu=gpu_ms, d2h=d2h_ms, render=(time.perf_counter() - start) * 1e3)
        return array

    def render_jpeg(self, quality: int) -> bytes:
        """The current frame as JPEG bytes, encoded on the GPU: `launch()` then `collect_jpeg()`."""
        self.launch()
        return self.collect_jpeg(quality)

    def launch(self) -> None:
        """Start the current frame on the GPU and return at once; `collect_jpeg` waits for it.

        Between the two the host may plan and `apply` the next frame: apply's writes are queued on
        the same CUDA stream, so they land after this frame's graph has read its buffers. Available
        when `encodes_jpeg` (CUDA and torchvision's nvJPEG); `jpeg_reason` says why not.
        """
        self._check_open()
        if not self.encodes_jpeg:
            raise RuntimeError(f"this engine does not encode JPEG: {self.jpeg_reason}")
        if self._launched is not None:
            raise RuntimeError("collect_jpeg() the launched frame before launching the next")
        begin, generated, _ = self._events
        self._launch_s = time.perf_counter()
        begin.record()
        self._launched = self._replay()
        generated.record()

    def collect_jpeg(self, quality: int) -> bytes:
        """JPEG bytes of the frame started by the last `launch()`; only the bytes cross to the host."""
        self._check_open()
        if self._launched is None:
            raise RuntimeError("collect_jpeg() needs a launch() first")
        begin, generated, encoded = self._events
        frame, self._launched = self._launched, None
        jpeg = gpu_jpeg.encode(frame, quality)  # waits for the frame and the encode
        encoded.record()
        encoded.synchronize()
        self.last_timings_ms.update(
            gpu=begin.elapsed_time(generated),
            d2h=0.0,
            jpeg=generated.elapsed_time(encoded),
            render=(time.perf_counter() - self._launch_s) * 1e3,
        )
        return jpeg

    def launch_kernels(self) -> torch.Tensor:
        """One frame's generator, its compiled kernels launched one by one instead of replayed as a CUDA graph
        (what a profiler can attribute per kernel); the plain generator when not captured by hand."""
        generate = self._generate.fn if isinstance(self._generate, CapturedGraph) else self._generate
        with torch.no_grad():
            return generate()

    def _replay(self) -> torch.Tensor:
        if self._graphed and self.settings.graph_capture == "trees":
            torch.compiler.cudagraph_mark_step_begin()
        with torch.no_grad():
            return self._generate()

    # --- lifecycle -------------------------------------------------------------------------

    def warmup(self, progress: ProgressFn | None = None) -> None:
        """Run the first frames: compiles and captures the CUDA graph when compiled (slow once, cached on disk)."""
        self._check_open()
        start = time.perf_counter()
        oom = _out_of_memory_message(lambda: self._warm_up_frames(progress))
        if oom is not None:  # nothing half-captured is kept: the engine lets go of its models and graph
            self.close()
            raise _out_of_memory("warming up (compiling and capturing; the engine was closed)", oom)
        self.warmup_s = time.perf_counter() - start
        if progress:
            progress(1.0, f"warm-up done in {self.warmup_s:.1f} s")

    def _warm_up_frames(self, progress: ProgressFn | None) -> None:
        steps = 3 if self._graphed else (2 if self._compiled else 1)
        for i in range(steps):
            if progress:
                message = (
                    "compiling the generator into one CUDA graph (first start takes minutes; cached for the next)"
                    if i == 0 and self._compiled
                    else "capturing the CUDA graph" if self._graphed and i == 1 else "rendering a warm-up frame"
                )
                progress(i / steps, message)
            self.render()
        if self.encodes_jpeg:
            self.render_jpeg(85)  # nvJPEG's first call sets up its handles

    def features(self) -> dict[str, FeatureInfo]:
        return {s.block.short_name: FeatureInfo(s.sae.n_features, s.sae.dead_ids) for s in self._blocks}

    def close(self) -> None:
        """Release the models and GPU memory; the engine cannot render afterwards."""
        if self._closed:
            return
        self._closed = True
        self._generate = None
        self.generator = None
        self._blocks = []
        self.prompt_encoder = None
        self._cross_kv = None
        self._prompt_kv = None
        self.noise = None
        if self._cuda:
            torch.cuda.empty_cache()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this engine was closed; build a new one")


def _out_of_memory_message(work: Callable[[], object]) -> str | None:
    """Run `work`; the message of the GPU running out of memory if it did (other errors rise), else None.
    Returned, not raised: the error and the tensors its frames held are gone when the caller counts free memory."""
    try:
        work()
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        return str(exc)
    return None


def _out_of_memory(doing: str, torch_message: str) -> GpuOutOfMemoryError:
    """The error for a GPU that ran out of memory while `doing`: how much is free now and how to make room."""
    gc.collect()
    free = ""
    if torch.cuda.is_available():
        try:
            torch.cuda.empty_cache()
            free_bytes, total_bytes = torch.cuda.mem_get_info()
            free = f" {free_bytes / 2**30:.1f} of {total_bytes / 2**30:.1f} GiB are free now."
        except RuntimeError:  # the CUDA context itself may be what broke
            pass
    first_line = (torch_message.strip().splitlines() or ["out of memory"])[0][:240].rstrip(".")
    return GpuOutOfMemoryError(
        f"the GPU ran out of memory while {doing}: {first_line}.{free} {MAKE_ROOM} and start again, "
        "or choose a smaller --size, or play with --engine preview "
        "(the controls drawn as colour fields, no generated images)."
    )


def _slerp_embedding(a: PromptEmbedding, b: PromptEmbedding, t: float) -> PromptEmbedding:
    return PromptEmbedding(slerp(a.tokens, b.tokens, t), slerp(a.pooled, b.pooled, t))


def _scaled(progress: ProgressFn | None, low: float, high: float) -> ProgressFn | None:
    """A progress callback that maps [0, 1] onto [low, high] of `progress`."""
    if progress is None:
        return None
    return lambda fraction, message: progress(low + (high - low) * fraction, message)
