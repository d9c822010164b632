"""The track library: audio files the server knows, their analysis status and bundles.

Layout under `<data root>/tracks/`:
    <id>/track.json     id, name, source ("upload" or "file"), audio path, bundle path, added time
    <id>/audio.<ext>    the uploaded audio (tracks given on the command line stay where they are)
    .incoming/          uploads being received (removed when refused or interrupted)

A track id is the first 16 hex digits of the SHA-256 of the audio bytes, so the same audio is
one track. Ids are validated before they touch the disk: nothing outside the library is reachable.
Analysis runs in one background worker; progress and results reach the server through `on_change`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonosteer.audio.bundle import AnalysisBundle, BundleError, load_bundle
from sonosteer.audio.errors import AudioInputError

TRACK_ID_RE = re.compile(r"^[0-9a-f]{16}$")
TRACK_FILE = "track.json"


class TrackError(ValueError):
    """A track request the library refuses; `code` is the protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def check_track_id(track_id: str) -> str:
    """The id if it is 16 lowercase hex digits; TrackError otherwise (so it can never name a path)."""
    if not isinstance(track_id, str) or not TRACK_ID_RE.match(track_id):
        raise TrackError("unknown_track", f"track ids are 16 lowercase hex digits, got {str(track_id)[:40]!r}")
    return track_id


def safe_suffix(filename: str) -> str:
    """The file's extension, lower-case, letters and digits only (at most 5), or '' if it has none."""
    suffix = Path(filename).suffix.lower().lstrip(".")
    return f".{suffix}" if suffix and len(suffix) <= 5 and suffix.isalnum() else ""


def display_name(filename: str) -> str:
    """A file name fit for display: its last path component, control characters removed, <= 120 chars."""
    name = Path(filename.replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable()).strip()
    return (name or "untitled")[:120]


@dataclass
class Track:
    """One library entry and its analysis status."""

    id: str
    name: str
    source: str
    audio_path: Path
    added_utc: str
    bundle_path: Path | None = None
    status: str = "pending"
    fraction: float = 0.0
    stage: str = ""
    error: str | None = None
    bundle: AnalysisBundle | None = field(default=None, repr=False)
    ready_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def summary(self) -> dict[str, Any]:
        """The track as the REST API and the `tracks` message show it."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "fraction": round(self.fraction, 3),
            "stage": self.stage,
            "error": self.error,
            "duration_s": None,
            "tempo_bpm": None,
        }
        if self.bundle is not None:
            out["duration_s"] = round(self.bundle.duration_s, 3)
            out["tempo_bpm"] = round(self.bundle.tempo_bpm, 2)
        return out

    def progress_message(self) -> dict[str, Any]:
        msg = {
            "type": "progress",
            "track_id": self.id,
            "status": self.status,
            "fraction": round(self.fraction, 3),
            "stage": self.stage,
        }
        if self.error:
            msg["error"] = self.error
        return msg


class TrackLibrary:
    """Thread-safe registry of tracks; analysis in one worker thread."""

    def __init__(self, root: Path, cache_root: Path | None = None, on_change: Callable[[Track], None] | None = None):
        self.root = Path(root)
        self.cache_root = cache_root
        self._on_change = on_change or (lambda track: None)
        self._tracks: dict[str, Track] = {}
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sonosteer-analysis")
        self.root.mkdir(parents=True, exist_ok=True)

    # -- loading and listing -----------------------------------------------------------

    def load(self) -> None:
        """Read the library from disk; tracks whose bundle is missing are analysed again.

        Uploads left half-received by an interrupted server are removed.
        """
        shutil.rmtree(self.root / ".incoming", ignore_errors=True)
        for entry in sorted(self.root.iterdir()):
            if not TRACK_ID_RE.match(entry.name) or not (entry / TRACK_FILE).is_file():
                continue
            try:
                doc = json.loads((entry / TRACK_FILE).read_text())
                track = Track(
                    id=check_track_id(doc["id"]),
                    name=display_name(doc["name"]),
                    source=doc["source"],
                    audio_path=self._audio_path_from_doc(entry, doc),
                    added_utc=doc.get("added_utc", ""),
                    bundle_path=Path(doc["bundle_path"]) if doc.get("bundle_path") else None,
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged entry is skipped, never fatal
            if track.id != entry.name:
                continue
            with self._lock:
                self._tracks[track.id] = track
            if not self._adopt_existing_bundle(track):
                self._queue_analysis(track)

    def _audio_path_from_doc(self, folder: Path, doc: dict[str, Any]) -> Path:
        if doc["source"] == "upload":
            path = (folder / Path(doc["audio_file"]).name).resolve()
            if path.parent != folder.resolve():
                raise ValueError("upload outside its folder")
            return path
        return Path(doc["audio_path"])

    def list(self) -> list[Track]:
        with self._lock:
            return sorted(self._tracks.values(), key=lambda t: t.added_utc)

    def get(self, track_id: str) -> Track:
        check_track_id(track_id)
        with self._lock:
            track = self._tracks.get(track_id)
        if track is None:
            raise TrackError("unknown_track", f"no track {track_id} in the library")
        return track

    # -- adding ------------------------------------------------------------------------

    def incoming_path(self, filename: str) -> Path:
        """A fresh temporary path for an upload being received."""
        folder = self.root / ".incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}{safe_suffix(filename)}.part"

    def add_upload(self, received: Path, filename: str, sha256: str) -> Track:
        """Take a fully received upload (moved into the library) and queue its analysis."""
        track_id = sha256[:16]
        with self._lock:
            existing = self._tracks.get(track_id)
            if existing is not None:
                received.unlink(missing_ok=True)
                if existing.status == "failed":
                    self._queue_analysis(existing)
                return existing
            folder = self.root / track_id
            folder.mkdir(parents=True, exist_ok=True)
            audio = folder / f"audio{safe_suffix(filename)}"
            os.replace(received, audio)
            track = Track(
                id=track_id, name=display_name(filename), source="upload", audio_path=audio, added_utc=_now_utc()
            )
            self._tracks[track_id] = track
            self._write(track)
        self._queue_analysis(track)
        return track

    def add_file(self, path: Path, sha256: str, bundle: AnalysisBundle | None = None) -> Track:
        """Register an audio file that stays where it is (the command line's track)."""
        track_id = sha256[:16]
        path = Path(path).resolve()
        with self._lock:
            track = self._tracks.get(track_id)
            if track is None:
                track = Track(id=track_id, name=display_name(path.name), source="file", audio_path=path, added_utc=_now_utc())
                self._tracks[track_id] = track
            elif track.source == "file":
                track.audio_path = path
        if bundle is not None:
            self._set_ready(track, bundle)
        else:
            with self._lock:
                self._write(track)
            if track.status != "ready":
                self._queue_analysis(track)
        return track

    # -- removing ----------------------------------------------------------------------

    def delete(self, track_id: str) -> None:
        """Forget a track: an upload goes with its analysis; a command-line file and its analysis stay."""
        track = self.get(track_id)
        if track.status in ("analyzing", "pending"):
            raise TrackError("track_not_ready", f"track {track_id} is being analysed; delete it when that is done")
        with self._lock:
            self._tracks.pop(track_id, None)
        if track.source == "upload" and track.bundle_path is not None and self.cache_root is not None:
            bundle_dir = track.bundle_path.resolve()
            if bundle_dir.is_relative_to(Path(self.cache_root).resolve()):
                shutil.rmtree(bundle_dir, ignore_errors=True)
        folder = (self.root / track_id).resolve()
        if folder.parent == self.root.resolve():
            shutil.rmtree(folder, ignore_errors=True)

    # -- analysis ----------------------------------------------------------------------

    def wait_ready(self, track_id: str, timeout_s: float | None = None) -> Track:
        track = self.get(track_id)
        track.ready_event.wait(timeout_s)
        return track

    def close(self) -> None:
        """Stop taking work; an analysis in progress finishes in its thread (bundles are atomic)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _adopt_existing_bundle(self, track: Track) -> bool:
        if track.bundle_path is None:
            return False
        try:
            self._set_ready(track, load_bundle(track.bundle_path))
            return True
        except BundleError:
            return False

    def _queue_analysis(self, track: Track) -> None:
        track.status, track.fraction, track.stage, track.error = "pending", 0.0, "waiting to analyse", None
        track.ready_event.clear()
        self._on_change(track)
        self._pool.submit(self._run_analysis, track)

    def _run_analysis(self, track: Track) -> None:
        track.status, track.stage = "analyzing", "starting"
        self._on_change(track)

        def progress(fraction: float, stage: str = "") -> None:
            track.fraction = max(0.0, min(1.0, float(fraction)))
            track.stage = str(stage)
            self._on_change(track)

        try:
            from sonosteer.audio.pipeline import analyze_file

            bundle = analyze_file(track.audio_path, cache_root=self.cache_root, progress=progress)
        except Exception as exc:  # AudioInputError carries an actionable message; others are faults
            track.status, track.fraction, track.stage = "failed", 1.0, "failed"
            track.error = str(exc) if isinstance(exc, AudioInputError) else f"analysis failed: {type(exc).__name__}: {exc}"
            track.ready_event.set()
            self._on_change(track)
            return
        self._set_ready(track, bundle)

    def _set_ready(self, track: Track, bundle: AnalysisBundle) -> None:
        track.bundle, track.bundle_path = bundle, Path(bundle.path)
        track.status, track.fraction, track.stage, track.error = "ready", 1.0, "ready", None
        with self._lock:
            if track.id in self._tracks:
                self._write(track)
        track.ready_event.set()
        self._on_change(track)

    def _write(self, track: Track) -> None:
        folder = self.root / track.id
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "id": track.id,
            "name": track.name,
            "source": track.source,
            "added_utc": track.added_utc,
            "bundle_path": str(track.bundle_path) if track.bundle_path else None,
        }
        if track.source == "upload":
            doc["audio_file"] = track.audio_path.name
        else:
            doc["audio_path"] = str(track.audio_path)
        tmp = folder / f".{TRACK_FILE}.{os.getpid()}.part"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, folder / TRACK_FILE)


def _now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
