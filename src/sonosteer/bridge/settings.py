"""Performer settings (a scene): typed, validated, versioned, JSON-serialisable.

A `Scene` is everything the performer sets: per block the link target, SAE feature, stage
bounds, sources, curve, rank, physics, spatial mask and silence behaviour; the prompt
destinations; the noise composition. Scenes are immutable: `apply_update` returns a new scene
from a validated partial update (a nested dict, or a JSON-pointer path and a value), so the
server can apply WebSocket messages without ever holding an invalid scene. `settings_schema()`
is the JSON Schema (ranges, choices, defaults, descriptions) the UI builds its controls from.

Paths use "/" (RFC 6901 JSON pointers) because block names contain dots:
`/blocks/mid.0/stage/right`.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sonosteer.blocks import BLOCK_NAMES, MASK_SIZE, SAE_N_FEATURES

SCENE_VERSION = 1
"""Version of the scene format written by this sonosteer; older versions are migrated on load."""

RANK_WEIGHTS: dict[str, float] = {"R1": 1.0, "R2": 0.65, "R3": 0.40, "R4": 0.25, "auto": 0.05}
"""Base prominence of each dancer rank (R1 lead ... R4 subtle; auto waits for surprise promotion)."""

STAGE_LIMIT = 200.0
"""Largest |strength| a stage bound may take, in SAE mean-activation units."""

MAX_BLEND_DEPTH = 8
"""Deepest chain of frozen prompt blends kept; older ones collapse to their nearer end."""

PositionSource = Literal["fixed", "pitch", "chroma", "brightness", "tension"]
IntensitySource = Literal["energy_smooth", "transient", "flux", "envelope"]
ResponseLayer = Literal["direct", "flash", "sustain"]
CurveKind = Literal["linear", "gamma", "clip"]
Rank = Literal["R1", "R2", "R3", "R4", "auto"]
ConfigMode = Literal["auto", "manual"]
PhysicsModel = Literal["blended", "spring", "pitch", "oscillator", "drift"]
PhysicsPreset = Literal["drums", "vocals", "linear", "ambient"]
SpatialMode = Literal["draw", "pitch"]
MaskPreset = Literal["floor", "ceiling", "center", "fill", "clear", "custom"]
SilenceBehaviour = Literal["hold", "drift_home"]
PromptMode = Literal["slider", "reactive", "linked"]
CompositionMode = Literal["auto", "pulse", "continuous"]


class SettingsError(ValueError):
    """Settings that do not validate; `problems` lists (path, message) pairs, `str()` reads well."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"{path or '/'}: {message}" for path, message in problems]
        super().__init__("invalid settings: " + "; ".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Stage(_Model):
    """The dance range of a block's strength: left (min), home (rest), right (max)."""

    left: float = Field(-30.0, ge=-STAGE_LIMIT, le=STAGE_LIMIT, description="strength at position 0")
    home: float = Field(0.0, ge=-STAGE_LIMIT, le=STAGE_LIMIT, description="strength at rest (intensity 0)")
    right: float = Field(30.0, ge=-STAGE_LIMIT, le=STAGE_LIMIT, description="strength at position 1")

    @model_validator(mode="after")
    def _ordered(self) -> Stage:
        if not self.left <= self.home <= self.right:
            raise ValueError(
                "stage must satisfy left <= home <= right, "
                f"got left={self.left:g}, home={self.home:g}, right={self.right:g}"
            )
        return self


class IntensityCurve(_Model):
    """Shaping of the intensity: linear; gamma (x ** gamma: < 1 lifts quiet parts); clip (1.5x, capped at 1)."""

    kind: CurveKind = "linear"
    gamma: float = Field(1.0, ge=0.1, le=10.0, description="exponent used when kind is 'gamma'")


class PhysicsSettings(_Model):
    """How the intensity moves: a spring preset (damping ratio) and which model(s) drive it."""

    model: PhysicsModel = Field(
        "blended", description="blended: weighted by the stem's classification; or one model alone"
    )
    preset: PhysicsPreset = Field(
        "linear", description="spring character: drums 0.45, vocals 0.70, linear 1.0, ambient 1.25 damping ratio"
    )


class SpatialSettings(_Model):
    """Where on the 16x16 grid the feature is applied: a drawn/preset mask, or pitch-aligned Gaussians."""

    mode: SpatialMode = "draw"
    preset: MaskPreset = Field("fill", description="mask preset; 'custom' uses the drawn `mask`")
    mask: tuple[tuple[float, ...], ...] | None = Field(
        None, description="drawn 16x16 mask, rows top to bottom, values in [0, 1]; kept when a preset is chosen"
    )
    pitch_spread: float = Field(0.25, ge=0.02, le=1.0, description="std of the pitch-aligned Gaussians, image heights")

    @field_validator("mask")
    @classmethod
    def _mask_shape(cls, mask):
        if mask is None:
            return mask
        if len(mask) != MASK_SIZE or any(len(row) != MASK_SIZE for row in mask):
            shape = f"{len(mask)} rows of lengths {sorted({len(r) for r in mask})}"
            raise ValueError(f"mask must be {MASK_SIZE}x{MASK_SIZE}, got {shape}")
        for r, row in enumerate(mask):
            for c, v in enumerate(row):
                if not 0.0 <= v <= 1.0:
                    raise ValueError(f"mask values must be in [0, 1], got {v!r} at row {r}, column {c}")
        return mask

    @model_validator(mode="after")
    def _custom_needs_mask(self) -> SpatialSettings:
        if self.preset == "custom" and self.mask is None:
            raise ValueError("preset 'custom' needs a drawn 'mask' (16x16)")
        return self


def _check_stem_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not name or len(name) > 64 or not all(c.isalnum() or c in "_-+." for c in name):
        raise ValueError(f"link target must be a stem name such as 'drums' or 'bass_harmonic', got {name!r}")
    return name


class BlockSettings(_Model):
    """Everything the performer sets for one steered block."""

    enabled: bool = True
    link_target: str | None = Field(None, description="stem driving this block; none = constant strength at home")
    feature_id: int = Field(0, ge=0, lt=SAE_N_FEATURES, description="SAE feature index")
    stage: Stage = Stage()
    position_source: PositionSource = Field(
        "fixed", description="where in [left, right] the block leans; 'fixed' uses position_fixed"
    )
    position_fixed: float = Field(1.0, ge=0.0, le=1.0, description="position used when position_source is 'fixed'")
    intensity_source: IntensitySource = Field("energy_smooth", description="how far from home the block leans")
    response_layer: ResponseLayer = Field(
        "direct", description="energy envelope used with energy_smooth: direct, flash (pop) or sustain (glow)"
    )
    intensity_curve: IntensityCurve = IntensityCurve()
    rank: Rank = Field("R1", description="dancer role: base prominence R1 1.0, R2 0.65, R3 0.40, R4 0.25, auto 0.05")
    mode: ConfigMode = Field(
        "auto", description="auto derives physics, intensity source, response layer and mask from the stem"
    )
    physics: PhysicsSettings = PhysicsSettings()
    spatial: SpatialSettings = SpatialSettings()
    silence: SilenceBehaviour = Field("hold", description="below -40 dB: hold the last strength or drift home")
    silence_release_ms: float = Field(1500.0, ge=10.0, le=60000.0, description="time constant of drift home")

    @field_validator("link_target")
    @classmethod
    def _link(cls, v: str | None) -> str | None:
        return _check_stem_name(v)


class FrozenBlend(_Model):
    """A prompt point frozen between two destinations: SLERP(a, b, t); `a` may itself be frozen."""

    a: Union[str, FrozenBlend]
    b: str
    t: float = Field(ge=0.0, le=1.0)

    @property
    def depth(self) -> int:
        return 1 + (self.a.depth if isinstance(self.a, FrozenBlend) else 0)


class LinkedPrompt(_Model):
    """The 'linked' prompt mode: one stem drives the A->B blend through a dance model on [0, 1]."""

    link_target: str | None = None
    position_source: PositionSource = "fixed"
    position_fixed: float = Field(1.0, ge=0.0, le=1.0)
    intensity_source: IntensitySource = "energy_smooth"
    physics_preset: PhysicsPreset = "ambient"

    @field_validator("link_target")
    @classmethod
    def _link(cls, v: str | None) -> str | None:
        return _check_stem_name(v)


class PromptSettings(_Model):
    """Prompt destinations A and B and how the blend between them moves."""

    a: Union[str, FrozenBlend] = Field("", description="destination A: a prompt, or a frozen blend")
    b: str = Field("", description="destination B: a prompt")
    mode: PromptMode = Field("slider", description="slider: blend by hand; reactive: energy; linked: one stem")
    blend: float = Field(0.0, ge=0.0, le=1.0, description="slider position, 0 = A, 1 = B")
    linked: LinkedPrompt = LinkedPrompt()

    @field_validator("a")
    @classmethod
    def _depth(cls, a):
        if isinstance(a, FrozenBlend) and a.depth > MAX_BLEND_DEPTH:
            raise ValueError(f"frozen prompt blends nest at most {MAX_BLEND_DEPTH} deep, got {a.depth}")
        return a


class CompositionSettings(_Model):
    """Noise composition: circular walk between the noises of two seeds."""

    seed_a: int = Field(0, ge=0, lt=2**32)
    seed_b: int = Field(1, ge=0, lt=2**32)
    distance: float = Field(0.5, ge=0.0, le=1.0, description="0 = static noise, 1 = a full turn per energetic beat")
    mode: CompositionMode = Field("auto", description="pulse: beats; continuous: tonal drift; auto: mixed by content")


def _default_blocks() -> dict[str, BlockSettings]:
    return {name: BlockSettings() for name in BLOCK_NAMES}


class Scene(_Model):
    """A whole performer setup, saved and loaded as versioned JSON."""

    version: int = Field(SCENE_VERSION, description="scene format version")
    name: str = Field("untitled", max_length=200)
    blocks: dict[str, BlockSettings] = Field(default_factory=_default_blocks)
    prompt: PromptSettings = PromptSettings()
    composition: CompositionSettings = CompositionSettings()

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v > SCENE_VERSION:
            raise ValueError(
                f"scene version {v} is newer than this sonosteer reads ({SCENE_VERSION}); update sonosteer"
            )
        if v < 1:
            raise ValueError(f"scene version must be >= 1, got {v}")
        return v

    @field_validator("blocks", mode="before")
    @classmethod
    def _all_blocks(cls, blocks: Any) -> Any:
        if not isinstance(blocks, dict):
            return blocks
        unknown = [k for k in blocks if k not in BLOCK_NAMES]
        if unknown:
            raise ValueError(f"unknown block {unknown[0]!r}; blocks are {', '.join(BLOCK_NAMES)}")
        return {name: blocks.get(name, BlockSettings()) for name in BLOCK_NAMES}

    def block(self, name: str) -> BlockSettings:
        if name not in self.blocks:
            raise KeyError(f"unknown block {name!r}; blocks are {', '.join(BLOCK_NAMES)}")
        return self.blocks[name]

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        raw_loc = [str(p) for p in err["loc"]]
        if "str" in raw_loc and isinstance(err.get("input"), dict):
            continue  # a prompt given as an object: the string branch's complaint is noise
        # Union branches add the branch type to the location; drop it so paths name settings.
        loc = [p for p in raw_loc if p not in ("str", "FrozenBlend") and "[" not in p]
        if err["type"] == "extra_forbidden":
            msg = f"unknown setting {loc[-1]!r}"
            loc = loc[:-1]
        else:
            msg = err["msg"].removeprefix("Value error, ")
        out.append(("/" + "/".join(loc), msg))
    return out


def validate_scene(data: dict[str, Any] | Scene) -> Scene:
    """A Scene from plain data (e.g. parsed JSON); raises SettingsError naming each bad path."""
    if isinstance(data, Scene):
        return data
    if not isinstance(data, dict):
        raise SettingsError([("", f"a scene must be a JSON object, got {type(data).__name__}")])
    try:
        return Scene.model_validate(migrate(data))
    except ValidationError as exc:
        raise SettingsError(_problems(exc)) from None


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring scene data of an older format version to SCENE_VERSION (version 1 is the first)."""
    version = data.get("version", SCENE_VERSION)
    if not isinstance(version, int):
        raise SettingsError([("/version", f"must be an integer, got {version!r}")])
    return data


_MISSING = object()


def _path_update(path: str, value: Any) -> dict[str, Any]:
    if not path.startswith("/") or path == "/":
        raise SettingsError(
            [(path, "a settings path starts with '/' and names a field, e.g. /blocks/mid.0/feature_id")]
        )
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    update: Any = value
    for part in reversed(parts):
        update = {part: update}
    return update


def _merge(base: Any, update: Any, path: str) -> Any:
    if not isinstance(update, dict):
        return copy.deepcopy(update)
    if not isinstance(base, dict):
        # Replacing a leaf (e.g. a prompt string) by an object, or the object has no such field.
        return copy.deepcopy(update)
    merged = dict(base)
    for key, value in update.items():
        if not isinstance(key, str):
            raise SettingsError([(path, f"setting names are strings, got {key!r}")])
        merged[key] = _merge(base.get(key), value, f"{path}/{key}")
    return merged


def _mark_drawn_masks(update: dict[str, Any]) -> None:
    """An update that sends a drawn mask without naming a preset selects the 'custom' preset."""
    blocks = update.get("blocks")
    if not isinstance(blocks, dict):
        return
    for block in blocks.values():
        spatial = block.get("spatial") if isinstance(block, dict) else None
        if isinstance(spatial, dict) and "mask" in spatial and "preset" not in spatial and spatial["mask"] is not None:
            spatial["preset"] = "custom"


def apply_update(scene: Scene, update: dict[str, Any] | str, value: Any = _MISSING) -> Scene:
    """A new scene with `update` applied, validated as a whole; `scene` is never modified.

    `update` is a nested dict merged into the scene (`{"blocks": {"mid.0": {"feature_id": 7}}}`)
    or a JSON-pointer path with `value` (`apply_update(s, "/blocks/mid.0/feature_id", 7)`).
    Objects merge field by field; lists and other values replace. Sending a block's
    `spatial.mask` without `spatial.preset` selects the 'custom' (drawn) preset.
    Raises SettingsError naming the offending path(s); the caller keeps the old scene.
    """
    if isinstance(update, str):
        if value is _MISSING:
            raise TypeError("apply_update(scene, path, value) needs a value when given a path")
        update = _path_update(update, value)
    elif value is not _MISSING:
        raise TypeError("apply_update(scene, update_dict) takes no value")
    if not isinstance(update, dict):
        raise SettingsError([("", f"an update must be a JSON object, got {type(update).__name__}")])
    update = copy.deepcopy(update)
    _mark_drawn_masks(update)
    merged = _merge(scene.model_dump(mode="json"), update, "")
    return validate_scene(merged)


def unlink_missing(scene: Scene, stems: list[str]) -> tuple[Scene, list[str]]:
    """The scene with link targets that `stems` (a new track's) lacks set to none, and the paths changed.

    For carrying a scene over to another track: everything else is kept.
    """
    update: dict[str, Any] = {}
    changed = []
    for name, block in scene.blocks.items():
        if block.link_target is not None and block.link_target not in stems:
            update.setdefault("blocks", {})[name] = {"link_target": None}
            changed.append(f"/blocks/{name}/link_target")
    if scene.prompt.linked.link_target is not None and scene.prompt.linked.link_target not in stems:
        update["prompt"] = {"linked": {"link_target": None}}
        changed.append("/prompt/linked/link_target")
    return (apply_update(scene, update) if update else scene), changed


def settings_schema() -> dict[str, Any]:
    """JSON Schema of a Scene: types, ranges (minimum/maximum), choices (enum), defaults, descriptions."""
    schema = Scene.model_json_schema()
    schema["properties"]["blocks"]["propertyNames"] = {"enum": list(BLOCK_NAMES)}
    schema["$comment"] = (
        f"sonosteer scene format {SCENE_VERSION}; blocks are keyed by block name ({', '.join(BLOCK_NAMES)}); "
        "partial updates are merged into the scene and validated as a whole"
    )
    return schema


def scene_from_json(text: str) -> Scene:
    """Parse and validate scene JSON, with the line and column of a syntax error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError([("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]) from None
    return validate_scene(data)


def save_scene(scene: Scene, path: Path | str) -> Path:
    """Write the scene as JSON atomically (temp file + rename): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(scene.to_json())
    os.replace(tmp, path)
    return path


def load_scene(path: Path | str) -> Scene:
    """Read a scene file; errors name the file and what is wrong in it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError([("", f"cannot read scene file {path}: {exc.strerror or exc}")]) from None
    try:
        return scene_from_json(text)
    except SettingsError as exc:
        raise SettingsError([(p, f"{m} (in {path})") for p, m in exc.problems]) from None
