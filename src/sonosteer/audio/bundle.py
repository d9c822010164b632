"""The analysis bundle on disk (design.md contract 1): a JSON manifest plus one .npy per channel.

Layout, under `<cache_root>/bundles/<key>/`:
    manifest.json                 schema, source, grid, back-ends, tempo, beats, stems, channel docs
    arrays/<group>/<channel>.npy  float32, first axis on the common time grid t_i = i / frame_rate_hz

`<group>` is a stem name (see `channels.py`) or `pair:<a>+<b>` for coupling channels. Bundles
are written into a temporary folder beside the final one and renamed into place as the last
step, so a crash never leaves a bundle that loads. Arrays load memory-mapped.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from sonosteer.audio.channels import ChannelSpec, pair_key

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
_REQUIRED_KEYS = ("schema_version", "key", "duration_s", "frame_rate_hz", "n_frames", "stems", "channels")


class BundleError(RuntimeError):
    """A bundle is missing, incomplete, from another schema version, or malformed."""


def bundles_dir(cache_root: Path) -> Path:
    return Path(cache_root) / "bundles"


def bundle_key(audio_sha256: str, analysis_version: str) -> str:
    """Key of a track's bundle: a hash of the audio bytes plus the analysis version."""
    if len(audio_sha256) < 16 or not all(c in "0123456789abcdef" for c in audio_sha256):
        raise ValueError("audio_sha256 must be a lowercase hex digest")
    safe_version = "".join(c for c in analysis_version if c.isalnum() or c in "._-")
    return f"{audio_sha256[:24]}-v{safe_version}"


def pair_group(a: str, b: str) -> str:
    """Group name under which the coupling channels of stems a and b are stored."""
    return f"pair:{pair_key(a, b)}"


@dataclass(frozen=True)
class AnalysisBundle:
    """A loaded bundle: manifest fields as properties, channels as memory-mapped float32 arrays."""

    path: Path
    manifest: dict[str, Any]

    @property
    def key(self) -> str:
        return self.manifest["key"]

    @property
    def duration_s(self) -> float:
        return float(self.manifest["duration_s"])

    @property
    def frame_rate_hz(self) -> float:
        return float(self.manifest["frame_rate_hz"])

    @property
    def n_frames(self) -> int:
        return int(self.manifest["n_frames"])

    @cached_property
    def times_s(self) -> np.ndarray:
        """The common time grid of every channel, in seconds."""
        return (np.arange(self.n_frames, dtype=np.float64) / self.frame_rate_hz).astype(np.float64)

    @property
    def tempo_bpm(self) -> float:
        return float(self.manifest.get("tempo_bpm", 120.0))

    @cached_property
    def beats_s(self) -> np.ndarray:
        return np.asarray(self.manifest.get("beats_s", []), dtype=np.float64)

    @cached_property
    def downbeats_s(self) -> np.ndarray:
        return np.asarray(self.manifest.get("downbeats_s", []), dtype=np.float64)

    @property
    def stems(self) -> list[str]:
        """Every link target in this bundle, in manifest order."""
        return list(self.manifest["stems"].keys())

    def stem_info(self, stem: str) -> dict[str, Any]:
        try:
            return self.manifest["stems"][stem]
        except KeyError:
            raise KeyError(f"bundle {self.key} has no stem {stem!r}; it has {', '.join(self.stems)}") from None

    def has_channel(self, group: str, name: str) -> bool:
        return f"{group}/{name}" in self.manifest["channels"]

    def channel(self, group: str, name: str) -> np.ndarray:
        """A channel as a read-only memory-mapped float32 array on the common grid."""
        ref = f"{group}/{name}"
        if ref not in self.manifest["channels"]:
            raise KeyError(f"bundle {self.key} has no channel {ref!r}")
        return np.load(self.path / "arrays" / group / f"{name}.npy", mmap_mode="r")

    def pair_channel(self, a: str, b: str, name: str) -> np.ndarray:
        return self.channel(pair_group(a, b), name)

    def channel_spec(self, group: str, name: str) -> dict[str, Any]:
        return self.manifest["channels"][f"{group}/{name}"]


def load_bundle(path: Path | str) -> AnalysisBundle:
    """Load and validate a bundle folder; raises BundleError naming what is wrong."""
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{path} is not an analysis bundle (no {MANIFEST_NAME}); analyse the track again")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path} is unreadable ({exc}); delete the folder and analyse again") from exc
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{manifest_path} lacks {', '.join(missing)}; delete the folder and analyse again")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise BundleError(
            f"{path} has bundle schema {manifest['schema_version']}, this sonosteer reads {SCHEMA_VERSION}; "
            "analyse the track again"
        )
    for ref in manifest["channels"]:
        group, name = ref.split("/", 1)
        if not (path / "arrays" / group / f"{name}.npy").is_file():
            raise BundleError(f"{path} is missing the array for channel {ref!r}; analyse the track again")
    return AnalysisBundle(path=path, manifest=manifest)


def find_bundle(cache_root: Path, key: str) -> AnalysisBundle | None:
    """The complete bundle with this key under cache_root, or None."""
    path = bundles_dir(cache_root) / key
    if not (path / MANIFEST_NAME).is_file():
        return None
    return load_bundle(path)


class BundleWriter:
    """Write a bundle atomically: arrays go into a temporary folder, renamed into place on commit.

    Use as a context manager; leaving the block with an exception (Ctrl-C included) removes the
    temporary folder, and nothing is visible under the final key until `commit` succeeds.
    """

    def __init__(self, cache_root: Path, key: str, n_frames: int, frame_rate_hz: float):
        if n_frames < 1:
            raise ValueError("a bundle needs at least one frame")
        if frame_rate_hz <= 0:
            raise ValueError("frame_rate_hz must be positive")
        self.root = bundles_dir(cache_root)
        self.key = key
        self.n_frames = int(n_frames)
        self.frame_rate_hz = float(frame_rate_hz)
        self.final_path = self.root / key
        self.tmp_path = self.root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        self.channels: dict[str, dict[str, Any]] = {}
        self._committed = False

    def __enter__(self) -> BundleWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_path.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            shutil.rmtree(self.tmp_path, ignore_errors=True)

    def add(self, group: str, name: str, values: np.ndarray, spec: ChannelSpec) -> None:
        """Store one channel; its first axis must be the common grid, finite float values only."""
        if "/" in name or "/" in group or group.startswith(".") or not name:
            raise ValueError(f"invalid channel reference {group!r}/{name!r}")
        arr = np.ascontiguousarray(values, dtype=np.float32)
        if arr.shape[0] != self.n_frames:
            raise ValueError(f"channel {group}/{name} has {arr.shape[0]} frames, the grid has {self.n_frames}")
        if spec.width > 1 and arr.shape[1:] != (spec.width,):
            raise ValueError(f"channel {group}/{name} must have shape (n, {spec.width}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"channel {group}/{name} contains NaN or inf")
        folder = self.tmp_path / "arrays" / group
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{name}.npy", arr)
        self.channels[f"{group}/{name}"] = {
            "unit": spec.unit,
            "range": [spec.lo, spec.hi],
            "description": spec.description,
            "shape": list(arr.shape),
        }

    def commit(self, manifest_fields: dict[str, Any]) -> AnalysisBundle:
        """Write the manifest and rename the folder into place; returns the loaded bundle."""
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "key": self.key,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "frame_rate_hz": self.frame_rate_hz,
            "n_frames": self.n_frames,
            **manifest_fields,
            "channels": self.channels,
        }
        missing = [k for k in _REQUIRED_KEYS if k not in manifest]
        if missing:
            raise ValueError(f"manifest lacks {', '.join(missing)}")
        tmp_manifest = self.tmp_path / (MANIFEST_NAME + ".part")
        tmp_manifest.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp_manifest, self.tmp_path / MANIFEST_NAME)
        if self.final_path.exists():
            # Another process finished the same analysis first: keep theirs, drop ours.
            shutil.rmtree(self.tmp_path, ignore_errors=True)
        else:
            os.replace(self.tmp_path, self.final_path)
        self._committed = True
        return load_bundle(self.final_path)
