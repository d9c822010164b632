"""Sessions per track and which one is playing: the render loop's frame source.

Settings of every track loaded during the server's life are kept, so switching back to a track
finds it as it was left.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from sonosteer.serve.protocol import ProtocolError
from sonosteer.serve.render_loop import FramePlan
from sonosteer.serve.session import PlannerFactory, TrackSession, bridge_planner
from sonosteer.serve.tracks import TrackLibrary


class SessionManager:
    """Owns the TrackSessions; `current` is the one rendered and steered by every client."""

    def __init__(
        self,
        library: TrackLibrary,
        now_fn: Callable[[], float] = time.monotonic,
        planner_factory: PlannerFactory | None = None,
    ):
        self.library = library
        self.now_fn = now_fn
        self.planner_factory = planner_factory or bridge_planner
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
                session = TrackSession(track_id, track.bundle, now_fn=self.now_fn, planner_factory=self.planner_factory)
                self._sessions[track_id] = session
            else:
                with session.lock:
                    session.clock.pause(0.0)
                    session.epoch += 1
                    session.seq += 1
            self._current = session
        return session

    def forget(self, track_id: str) -> None:
        """Drop a deleted track's session; the current track cannot be forgotten."""
        with self._lock:
            if self._current is not None and self._current.track_id == track_id:
                raise ProtocolError("track_not_ready", "the current track cannot be deleted; load another one first")
            self._sessions.pop(track_id, None)

    # -- FrameSource -------------------------------------------------------------------

    def next_frame(self, lookahead_s: float) -> FramePlan | None:
        session = self._current
        return None if session is None else session.next_frame(lookahead_s)

    def client_render_latency_s(self) -> float:
        session = self._current
        return 0.0 if session is None else session.client_render_latency_s
