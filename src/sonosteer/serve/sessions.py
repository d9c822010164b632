"""Sessions per track and which one is playing: the render loop's frame source.

Settings of every track loaded are kept: in memory while the server runs (switching back to a
track finds it as it was left) and, when `store_root` is given, on disk at shutdown (atomically,
one scene file per track), so the next `sonosteer play` of the track starts where it stopped.
"""

from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path

from sonosteer.bridge.settings import SettingsError, load_scene, save_scene
from sonosteer.bridge.starter import starter_scene
from sonosteer.serve.protocol import ProtocolError
from sonosteer.serve.render_loop import FramePlan
from sonosteer.serve.session import TrackSession
from sonosteer.serve.tracks import TrackLibrary


class SessionManager:
    """Owns the TrackSessions; `current` is the one rendered and steered by every client."""

    def __init__(self, library: TrackLibrary, store_root: Path | None = None, starter: bool = True):
        self.library = library
        self.store_root = store_root
        self.starter = starter
        self._epochs = itertools.count(1)
        self._sessions: dict[str, TrackSession] = {}
        self._current: TrackSession | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> TrackSession | None:
        return self._current

    def load(self, track_id: str) -> TrackSession:
        """Make a ready track current (its transport reset to paused at 0); ProtocolError otherwise."""
        track = self.library.get(track_id)
        if track.status != "ready" or track.bundle is None:
            detail = f": {track.error}" if track.error else f" ({track.status}, {track.fraction:.0%})"
            raise ProtocolError("track_not_ready", f"track {track.name} is not ready{detail}")
        with self._lock:
            session = self._sessions.get(track_id)
            if session is None or session.bundle.path != track.bundle.path:
                session = self._new_session(track_id, track.bundle)
                self._sessions[track_id] = session
            else:
                with session.lock:
                    session.clock.pause(0.0)
                    session.epoch = next(self._epochs)
                    session.seq += 1
            self._current = session
        return session

    def forget(self, track_id: str) -> None:
        """Drop a deleted track's session; the current track cannot be forgotten."""
        with self._lock:
            if self._current is not None and self._current.track_id == track_id:
                raise ProtocolError("track_not_ready", "the current track cannot be deleted; load another one first")
            self._sessions.pop(track_id, None)

    def save_all(self) -> None:
        """Write every session's settings (atomic per file); called at shutdown."""
        if self.store_root is None:
            return
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            with session.lock:
                scene = session.scene
            save_scene(scene, self.store_root / f"{session.track_id}.json")

    def _new_session(self, track_id: str, bundle) -> TrackSession:
        """A session with the track's kept settings, or the defaults when they no longer fit it."""
        stored = self._stored_scene(track_id)
        if stored is not None:
            try:
                return TrackSession(track_id, bundle, scene=stored, next_epoch=self._epochs.__next__)
            except SettingsError as exc:
                print(f"warning: starting track {track_id} from default settings: {exc}", file=sys.stderr)
        scene = starter_scene(bundle.stems) if self.starter else None
        return TrackSession(track_id, bundle, scene=scene, next_epoch=self._epochs.__next__)

    def _stored_scene(self, track_id: str):
        path = None if self.store_root is None else self.store_root / f"{track_id}.json"
        if path is None or not path.is_file():
            return None
        try:
            return load_scene(path)
        except SettingsError as exc:
            print(f"warning: starting track {track_id} from default settings: {exc}", file=sys.stderr)
            return None

    # -- FrameSource -------------------------------------------------------------------

    def next_frame(self, lookahead_s: float) -> FramePlan | None:
        session = self._current
        return None if session is None else session.next_frame(lookahead_s)

    def client_render_latency_s(self) -> float:
        session = self._current
        return 0.0 if session is None else session.client_render_latency_s
