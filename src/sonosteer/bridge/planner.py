"""FramePlanner: analysis bundle + scene + media time -> FrameControls, every frame.

`plan(t)` samples every channel it needs in one vectorised step, moves the physics (the
intensity through the block's blended physics, the position through a critically damped
follower) by the real media time since the previous call, and assembles the four blocks, the prompt pair and blend
and the noise angle. The media time may come irregularly: a pause repeats the same frame, a
small step back holds, and a seek (a jump back, or forward by more than SEEK_JUMP_S) puts every
model at rest on the new position instead of letting the springs fly.

Settings change through `set_scene` / `apply_update` (validated, state kept where it still
makes sense) and `load_destination`. All public methods hold one lock, so a server may apply
updates from its WebSocket task while the render loop calls `plan`.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from sonosteer.audio.bundle import AnalysisBundle
from sonosteer.audio.channels import GLOBAL_STEM, pair_key
from sonosteer.blocks import BLOCK_NAMES
from sonosteer.bridge.auto_config import effective_block
from sonosteer.bridge.blended import BlendedPhysics, model_weights
from sonosteer.bridge.composition import compose_bundle
from sonosteer.bridge.dance import dance_output, dance_strength, shape_intensity
from sonosteer.bridge.frame_controls import BlockControls, FrameControls
from sonosteer.bridge.masks import drawn_mask, pitch_mask_index, pitch_masks, preset_mask
from sonosteer.bridge.prominence import ProminenceEngine
from sonosteer.bridge.prompt import PromptModulator, freeze_destination, to_prompt_ref
from sonosteer.bridge.sampler import AudioSampler, ColumnSource
from sonosteer.bridge.settings import RANK_WEIGHTS, BlockSettings, Scene, SettingsError, apply_update
from sonosteer.bridge.spring import Spring

SEEK_JUMP_S = 0.5
"""A forward step longer than this is a seek (a stalled render loop at 2 FPS still integrates)."""
BACKWARD_HOLD_S = 0.05
"""A step back up to this long (clock correction, jitter) holds the state; longer is a seek."""
SILENCE_DB = -40.0
"""Below this level a stem is silent: hold blocks freeze, drift_home blocks fade to home."""
POSITION_PRESET = "linear"
"""Spring preset (critically damped) that smooths each block's position source."""
PERCUSSION_STEMS = ("drums", GLOBAL_STEM)
"""The first of these in the bundle supplies the percussion impulses of the sustained models."""

_ZERO = "const/zero"
_ENERGY_CHANNEL = {"direct": "energy_smooth", "flash": "flash", "sustain": "sustain"}
_POSITION_CHANNEL = {"pitch": "pitch_normalized", "chroma": "chroma_position", "brightness": "brightness"}


# Derived columns, computed once per stem from its channels.
def _cumulative(channel: str):
    def make(source: ColumnSource, group: str) -> np.ndarray:
        return np.cumsum(np.asarray(source.bundle.channel(group, channel), dtype=np.float64))

    return make


def _novelty_rise(source: ColumnSource, group: str) -> np.ndarray:
    """Rise of novelty_short per second, positive part, / its 95th percentile (1 = a strong rise here)."""
    novelty = np.asarray(source.bundle.channel(group, "novelty_short"), dtype=np.float64)
    rise = np.maximum(np.gradient(novelty) * source.bundle.frame_rate_hz, 0.0)
    positive = rise[rise > 0]
    scale = float(np.percentile(positive, 95)) if positive.size else 1.0
    return rise / scale if scale > 0 else rise


def _chroma_position(source: ColumnSource, group: str) -> np.ndarray:
    """Circular mean pitch class of the chroma in [0, 1): 0 = C, 1/12 = C#, ..."""
    chroma = np.asarray(source.bundle.channel(group, "chroma"), dtype=np.float64)
    angles = 2.0 * np.pi * np.arange(12) / 12.0
    x = chroma @ np.cos(angles)
    y = chroma @ np.sin(angles)
    return np.mod(np.arctan2(y, x), 2.0 * np.pi) / (2.0 * np.pi)


@dataclass(eq=False)
class _Block:
    """Runtime of one block: effective settings turned into column indices, constants and state."""

    settings: BlockSettings
    stem: str | None
    physics: BlendedPhysics | None = None
    mask: np.ndarray | None = None
    masks: tuple[np.ndarray, ...] | None = None
    strength: float = 0.0
    held_position: float = 0.0
    position: Spring | None = None
    """Critically damped follower of the position source: the lean glides, it never jumps."""
    fresh: bool = True
    """True until the physics have been put at rest on the first input they see."""
    # column names (resolved to indices in _index)
    c_intensity: str = _ZERO
    c_position: str | None = None
    c_rms: str = _ZERO
    c_energy: str = _ZERO
    c_pitch: str = _ZERO
    c_conf: str = _ZERO
    c_novelty: str = _ZERO
    c_rise: str = _ZERO
    c_layer: str = _ZERO
    c_pitchnorm: str = _ZERO

    def columns(self) -> list[str]:
        cols = [
            self.c_intensity,
            self.c_rms,
            self.c_energy,
            self.c_pitch,
            self.c_conf,
            self.c_novelty,
            self.c_rise,
            self.c_layer,
            self.c_pitchnorm,
        ]
        if self.c_position is not None:
            cols.append(self.c_position)
        return cols


class FramePlanner:
    """Plans frames for one track. Not bound to a clock: pass the media time to `plan`."""

    def __init__(self, bundle: AnalysisBundle, scene: Scene | None = None):
        self.bundle = bundle
        self.bpm = bundle.tempo_bpm if bundle.tempo_bpm > 0 else 120.0
        self.source = ColumnSource(bundle)
        self.source.register_derived("transient_count", _cumulative("transient"), needs="transient")
        self.source.register_derived("layer_count", _cumulative("layer_entry"), needs="layer_entry")
        self.source.register_derived("novelty_rise", _novelty_rise, needs="novelty_short")
        self.source.register_derived("chroma_position", _chroma_position, needs="chroma")
        self.source.add_column(_ZERO, np.zeros(bundle.n_frames))
        composition = compose_bundle(bundle)
        for mode in ("pulse", "continuous", "auto"):
            self.source.add_column(f"composition/{mode}", composition.angles(mode))
        self.composition = composition
        self.percussion = next((s for s in PERCUSSION_STEMS if s in bundle.stems), None)
        self._brightness: dict[str, float] = {}
        self._lock = threading.Lock()
        self._blocks: list[_Block] = []
        self._scene: Scene | None = None
        self._sampler: AudioSampler | None = None
        self._prompt = PromptModulator(Scene().prompt, self.bpm)
        self._last_t: float | None = None
        self._prev_row: list[float] | None = None
        self._frame_index = 0
        self._last_features: list[int | None] = [None] * len(BLOCK_NAMES)
        self.set_scene(scene or Scene())

    # ----------------------------------------------------------------- settings
    @property
    def scene(self) -> Scene:
        assert self._scene is not None
        return self._scene

    def effective_block(self, name: str) -> BlockSettings:
        """The settings block `name` plays with (auto mode resolved), e.g. to show in the UI."""
        block = self.scene.block(name)
        if block.link_target is None:
            return block
        return effective_block(
            block, self.bundle.stem_info(block.link_target), self._brightness_median(block.link_target)
        )

    def _brightness_median(self, stem: str) -> float | None:
        if stem not in self._brightness and self.bundle.has_channel(stem, "brightness"):
            self._brightness[stem] = float(np.median(self.bundle.channel(stem, "brightness")))
        return self._brightness.get(stem)

    def check_scene(self, scene: Scene) -> None:
        """Raise SettingsError if the scene names stems this track does not have."""
        stems = self.bundle.stems
        problems = []
        targets = [(f"/blocks/{n}/link_target", b.link_target) for n, b in scene.blocks.items()]
        targets.append(("/prompt/linked/link_target", scene.prompt.linked.link_target))
        for path, target in targets:
            if target is not None and target not in stems:
                problems.append((path, f"this track has no stem {target!r}; it has {', '.join(stems)}"))
        if problems:
            raise SettingsError(problems)

    def apply_update(self, update: dict[str, Any] | str, value: Any = ...) -> Scene:
        """Validate a partial update against the current scene and this track, apply it, return the new scene."""
        with self._lock:
            scene = apply_update(self.scene, update) if value is ... else apply_update(self.scene, update, value)
            self._set_scene(scene)
            return scene

    def set_scene(self, scene: Scene) -> None:
        with self._lock:
            self._set_scene(scene)

    def load_destination(self, prompt: str) -> Scene:
        """Freeze the current blend as A, make `prompt` B, travel from 0; returns the new scene."""
        with self._lock:
            new_prompt = freeze_destination(self.scene.prompt, self._prompt.blend, prompt)
            scene = self.scene.model_copy(update={"prompt": new_prompt})
            self._set_scene(scene)
            self._prompt.restart(0.0)
            return scene

    def _set_scene(self, scene: Scene) -> None:
        self.check_scene(scene)
        old_blocks = {i: b for i, b in enumerate(self._blocks)}
        blocks = []
        for i, name in enumerate(BLOCK_NAMES):
            blocks.append(self._build_block(i, scene.block(name), old_blocks.get(i)))
        linked = scene.prompt.linked
        linked_cols = self._linked_columns(linked.link_target, linked.intensity_source, linked.position_source)
        columns = [_ZERO, f"composition/{scene.composition.mode}"]
        for b in blocks:
            columns += b.columns()
        columns += [c for c in linked_cols if c is not None]
        if self.percussion is not None:
            columns += [f"{self.percussion}/transient_count", f"{self.percussion}/energy_smooth"]
        ranks = [b.settings.rank if b.stem is not None and b.settings.enabled else None for b in blocks]
        stems = [b.stem if r is not None else None for b, r in zip(blocks, ranks)]
        old_engine = getattr(self, "_engine", None)
        engine = ProminenceEngine(ranks, stems, RANK_WEIGHTS)
        pair_cols = []
        for i, j in engine.pairs:
            group = f"pair:{pair_key(stems[i], stems[j])}"
            lock = f"{group}/lock_index" if self.bundle.has_channel(group, "lock_index") else _ZERO
            cr = f"{group}/call_response" if self.bundle.has_channel(group, "call_response") else _ZERO
            pair_cols.append((lock, cr))
            columns += [lock, cr]
        if old_engine is not None:
            for i, b in enumerate(blocks):
                old = old_blocks.get(i)
                if old is not None and old.stem == b.stem:
                    engine.states[i] = old_engine.states[i]
        names = list(dict.fromkeys(columns))
        missing = [c for c in names if not self.source.has(c)]
        if missing:
            raise SettingsError([("", f"the track's analysis lacks channel(s) {', '.join(missing)}; analyse it again")])
        # Only a changed set of columns rebuilds the sampler; the row of the last frame is re-read.
        if self._sampler is None or self._sampler.names != names:
            self._sampler = self.source.sampler(names)
            if self._last_t is not None:
                self._prev_row = self._sampler.sample(self._last_t)
        ix = self._sampler.index
        self._ix_blocks = [
            (
                ix[b.c_intensity],
                -1 if b.c_position is None else ix[b.c_position],
                ix[b.c_rms],
                ix[b.c_energy],
                ix[b.c_pitch],
                ix[b.c_conf],
                ix[b.c_novelty],
                ix[b.c_rise],
                ix[b.c_layer],
                ix[b.c_pitchnorm],
            )
            for b in blocks
        ]
        self._ix_pairs = [(ix[lock], ix[cr]) for lock, cr in pair_cols]
        self._ix_linked = tuple(-1 if c is None else ix[c] for c in linked_cols)
        self._ix_angle = ix[f"composition/{scene.composition.mode}"]
        self._ix_perc = (
            (ix[f"{self.percussion}/transient_count"], ix[f"{self.percussion}/energy_smooth"])
            if self.percussion
            else None
        )
        self._engine = engine
        self._prompt.configure(scene.prompt, self.bpm)
        self._prompt_a = to_prompt_ref(scene.prompt.a)
        self._blocks = blocks
        self._scene = scene

    def _linked_columns(
        self, stem: str | None, intensity_source: str, position_source: str
    ) -> tuple[str | None, str | None]:
        """(intensity, position) columns of the linked prompt source."""
        if stem is None:
            return (None, None)
        intensity = f"{stem}/transient_count" if intensity_source == "transient" else f"{stem}/{intensity_source}"
        return (intensity, self._position_column(stem, position_source))

    def _position_column(self, stem: str, position_source: str) -> str | None:
        if position_source == "fixed":
            return None
        if position_source == "tension":
            return f"{GLOBAL_STEM}/tension"
        return f"{stem}/{_POSITION_CHANNEL[position_source]}"

    def _build_block(self, index: int, settings: BlockSettings, old: _Block | None) -> _Block:
        stem = settings.link_target
        if stem is None or not settings.enabled:
            return _Block(settings=settings, stem=None, mask=self._static_mask(settings), strength=0.0)
        info = self.bundle.stem_info(stem)
        eff = effective_block(settings, info, self._brightness_median(stem))
        b = _Block(settings=eff, stem=stem)
        if eff.intensity_source == "transient":
            b.c_intensity = f"{stem}/transient_count"
        elif eff.intensity_source == "energy_smooth":
            b.c_intensity = f"{stem}/{_ENERGY_CHANNEL[eff.response_layer]}"
        else:
            b.c_intensity = f"{stem}/{eff.intensity_source}"
        b.c_position = self._position_column(stem, eff.position_source)
        b.c_rms = f"{stem}/rms_db"
        b.c_energy = f"{stem}/energy_smooth"
        b.c_novelty = f"{stem}/novelty_short"
        b.c_rise = f"{stem}/novelty_rise"
        b.c_layer = f"{stem}/layer_count"
        weights = model_weights(eff.physics.model, info.get("classification"))
        if weights[1] > 0.0:
            b.c_pitch = f"{stem}/pitch_hz"
            b.c_conf = f"{stem}/pitch_confidence"
        if eff.spatial.mode == "pitch":
            b.c_pitchnorm = f"{stem}/pitch_normalized"
            b.masks = pitch_masks(eff.spatial.pitch_spread)
        else:
            b.mask = self._static_mask(eff)
        missing = [c for c in b.columns() if not self.source.has(c)]
        if missing:
            raise SettingsError(
                [
                    (
                        f"/blocks/{BLOCK_NAMES[index]}",
                        f"the track's analysis lacks channel(s) {', '.join(missing)}; analyse it again",
                    )
                ]
            )
        same_motion = (
            old is not None and old.stem == stem and old.physics is not None and old.settings.physics == eff.physics
        )
        if same_motion:
            b.physics = old.physics
            b.strength = old.strength
            b.held_position = old.held_position
            b.position = old.position
            b.fresh = old.fresh
        else:
            b.physics = BlendedPhysics(weights, eff.physics.preset, self.bpm, seed=index)
            b.position = Spring.from_preset(POSITION_PRESET, self.bpm)
            b.strength = eff.stage.home
        return b

    @staticmethod
    def _static_mask(settings: BlockSettings) -> np.ndarray:
        spatial = settings.spatial
        if spatial.preset == "custom":
            return drawn_mask(spatial.mask)
        return preset_mask(spatial.preset)

    # ----------------------------------------------------------------- frames
    def plan(self, t: float) -> FrameControls:
        """The controls of the frame shown at media time t (seconds)."""
        with self._lock:
            return self._plan(float(t))

    def _plan(self, t: float) -> FrameControls:
        if not math.isfinite(t):
            raise ValueError(f"media time must be finite, got {t}")
        row = self._sampler.sample(t)
        last = self._last_t
        seek = last is None or t < last - BACKWARD_HOLD_S or t - last > SEEK_JUMP_S
        if seek:
            self._rest(row)
            prev = row
            dt = 0.0
        else:
            prev = self._prev_row
            dt = t - last if t > last else 0.0
        self._last_t = t if seek or t > last else last
        self._prev_row = row if (seek or t > last) else prev

        impulse = 0.0
        if self._ix_perc is not None and dt > 0.0:
            i_count, i_energy = self._ix_perc
            hits = row[i_count] - prev[i_count]
            if hits > 0.0:
                impulse = min(hits, 1.0) * row[i_energy]

        n = len(self._blocks)
        rms = [None] * n
        energy = [0.0] * n
        novelty = [0.0] * n
        rise = [0.0] * n
        entered = [False] * n
        release = [1.5] * n
        frozen = [False] * n
        outputs = [0.0] * n
        for k, b in enumerate(self._blocks):
            if b.stem is None:
                continue
            s = b.settings
            ii, ip, ir, ie, iph, ic, inov, irise, ilay, _ = self._ix_blocks[k]
            level = row[ir]
            rms[k] = level
            energy[k] = row[ie]
            novelty[k] = row[inov]
            rise[k] = row[irise]
            entered[k] = math.floor(row[ilay] + 1e-6) > math.floor(prev[ilay] + 1e-6)
            release[k] = s.silence_release_ms * 0.001
            silent = level < SILENCE_DB
            if b.fresh:
                self._rest_block(k, b, row)
            if silent and s.silence == "hold":
                frozen[k] = True
                continue
            if s.intensity_source == "transient":
                x = row[ii] - prev[ii]
            else:
                x = row[ii]
            curve = s.intensity_curve
            x = shape_intensity(x, curve.kind, curve.gamma)
            if ip < 0:
                position = s.position_fixed
            else:
                if not silent:
                    b.held_position = row[ip]
                position = b.position.step(dt, b.held_position)
            intensity = b.physics.step(dt, x, row[ie], row[iph], row[ic], impulse)
            stage = s.stage
            outputs[k] = dance_output(stage.left, stage.home, stage.right, position, intensity)

        pair_lock = [row[a] for a, _ in self._ix_pairs]
        pair_cr = [row[c] for _, c in self._ix_pairs]
        prominence = self._engine.step(dt, rms, energy, novelty, rise, entered, release, pair_lock, pair_cr, frozen)

        controls = []
        reactive_num = 0.0
        reactive_den = 0.0
        for k, b in enumerate(self._blocks):
            s = b.settings
            if b.stem is None:
                strength = s.stage.home if s.enabled else 0.0
            elif frozen[k]:
                strength = b.strength
            else:
                strength = dance_strength(s.stage.home, outputs[k], prominence[k])
            if b.stem is not None:
                base = RANK_WEIGHTS[s.rank]
                reactive_num += base * energy[k]
                reactive_den += base
            b.strength = strength
            mask = b.mask if b.masks is None else b.masks[pitch_mask_index(row[self._ix_blocks[k][9]])]
            feature = s.feature_id
            dirty = feature != self._last_features[k]
            self._last_features[k] = feature
            controls.append(BlockControls(feature_id=feature, strength=strength, mask=mask, feature_dirty=dirty))

        li, lp = self._ix_linked
        if li >= 0:
            linked = self.scene.prompt.linked
            x = row[li] - prev[li] if linked.intensity_source == "transient" else row[li]
            x = 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)
            position = linked.position_fixed if lp < 0 else row[lp]
        else:
            x = 0.0
            position = 0.0
        blend = self._prompt.step(dt, reactive_num / reactive_den if reactive_den > 0.0 else 0.0, x, position)

        comp = self.scene.composition
        self._frame_index += 1
        return FrameControls(
            blocks=controls,
            prompt_a=self._prompt_a,
            prompt_b=self.scene.prompt.b,
            prompt_blend=blend,
            seed_a=comp.seed_a,
            seed_b=comp.seed_b,
            noise_angle_rad=comp.distance * row[self._ix_angle],
            media_time_s=t,
            frame_index=self._frame_index,
        )

    def _rest_block(self, k: int, b: _Block, row: list[float]) -> None:
        """Put block k at rest on its current input: physics on the shaped intensity, gate on the level."""
        ii, ip, ir, ie, iph, ic, inov, *_ = self._ix_blocks[k]
        curve = b.settings.intensity_curve
        x = 0.0 if b.settings.intensity_source == "transient" else shape_intensity(row[ii], curve.kind, curve.gamma)
        b.physics.reset(x, row[iph], row[ic])
        if ip >= 0:
            b.held_position = row[ip]
            b.position.reset(row[ip])
        b.strength = b.settings.stage.home
        b.fresh = False
        self._engine.states[k].reset(row[ir], row[inov])

    def _rest(self, row: list[float]) -> None:
        """After a seek nothing carries over: every block at rest on the new position, no surprise."""
        for k, b in enumerate(self._blocks):
            if b.stem is not None:
                self._rest_block(k, b, row)
