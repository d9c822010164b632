"""Client control messages -> session changes -> broadcasts (docs/protocol.md).

Runs on the event loop. A bad message gets an `error` reply to its sender only, and the
session goes on; every accepted change is broadcast to every client.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from sonosteer import __version__
from sonosteer.serve import messages as m
from sonosteer.serve.hub import Client, Hub
from sonosteer.serve.protocol import PROTOCOL_VERSION, ProtocolError
from sonosteer.serve.session import TrackSession
from sonosteer.serve.sessions import SessionManager
from sonosteer.serve.tracks import TrackError


@dataclass(frozen=True)
class EngineInfo:
    kind: str
    label: str
    width: int
    height: int
    reason: str = ""
    """Why this renderer runs (e.g. "preview renderer: no CUDA GPU ..."), for the UI's status."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "reason": self.reason,
            "preview": self.kind == "preview",
            "width": self.width,
            "height": self.height,
        }


ANALYSIS_FIELDS = ("analysis_version", "backends", "tempo_bpm", "tempo_reliable", "beats_per_bar", "beats_s", "downbeats_s")
STEM_FIELDS = ("kind", "label", "parent", "classification")


def analysis_json(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the UI shows of a track's analysis: back-ends (separator ...), tempo and beat grid, stems."""
    out = {k: manifest[k] for k in ANALYSIS_FIELDS if k in manifest}
    out["stems"] = {
        name: {k: info[k] for k in STEM_FIELDS if k in info} for name, info in manifest.get("stems", {}).items()
    }
    return out


class UnsupportedProtocol(ProtocolError):
    """A `hello` with a protocol version this server does not speak: the socket is closed after the reply."""


class Controller:
    """Dispatches client messages; builds state snapshots."""

    def __init__(self, sessions: SessionManager, hub: Hub, engine: EngineInfo):
        self.sessions = sessions
        self.hub = hub
        self.engine = engine

    # -- snapshots ---------------------------------------------------------------------

    def track_json(self, session: TrackSession) -> dict[str, Any]:
        track = self.sessions.library.get(session.track_id)
        return {
            **track.summary(),
            "audio_url": f"/api/tracks/{track.id}/audio",
            "stems": session.bundle.stems,
            "analysis": analysis_json(session.bundle.manifest),
        }

    def state_message(self) -> dict[str, Any]:
        session = self.sessions.current
        if session is None:
            return {"type": "state", "seq": 0, "track": None, "transport": None, "settings": None, "clients": len(self.hub.clients)}
        with session.lock:
            return {
                "type": "state",
                "seq": session.seq,
                "track": self.track_json(session),
                "transport": session.transport_state().to_json(),
                "settings": session.settings_json(),
                "clients": len(self.hub.clients),
            }

    def welcome(self, client: Client) -> dict[str, Any]:
        return {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "server": f"sonosteer {__version__}",
            "client_id": client.id,
            "engine": self.engine.to_json(),
            "state": self.state_message(),
        }

    # -- dispatch ----------------------------------------------------------------------

    def handle_text(self, client: Client, text: str) -> None:
        """Handle one text message; raises UnsupportedProtocol (after replying) to close the socket."""
        message: Any = None
        try:
            message = m.parse_message(text)
            getattr(self, f"_on_{message['type']}")(client, message)
        except UnsupportedProtocol as exc:
            self.hub.send(client, exc.to_message(m.request_id(message)))
            raise
        except ProtocolError as exc:
            self.hub.send(client, exc.to_message(m.request_id(message)))
        except TrackError as exc:
            self.hub.send(client, ProtocolError(exc.code, str(exc)).to_message(m.request_id(message)))
        except Exception as exc:  # a server fault: tell the client, keep the session
            traceback.print_exc()
            fault = ProtocolError("internal", f"server fault handling this message: {type(exc).__name__}: {exc}")
            self.hub.send(client, fault.to_message(m.request_id(message)))

    def handle_binary(self, client: Client) -> None:
        self.hub.send(client, ProtocolError("malformed", "binary messages from clients are not part of protocol 1").to_message())

    def on_disconnect(self, client: Client) -> None:
        session = self.sessions.current
        if session is not None:
            session.release_clock(client.id)

    def _session(self) -> TrackSession:
        session = self.sessions.current
        if session is None:
            raise ProtocolError("no_track", "no track is loaded; load or upload one first")
        return session

    def _broadcast_changes(self, client: Client, message: dict[str, Any], session: TrackSession, changes: list) -> None:
        self.hub.broadcast(
            {"type": "changed", "seq": session.seq, "by": client.id, "id": message.get("id"), "changes": changes}
        )

    def _broadcast_transport(self, session: TrackSession, by: str | None, request_id: Any = None) -> None:
        state = session.transport_state()
        self.hub.broadcast({"type": "transport", "seq": session.seq, "by": by, "id": request_id, **state.to_json()})

    def broadcast_state(self) -> None:
        self.hub.broadcast(self.state_message())

    # -- message types -----------------------------------------------------------------

    def _on_hello(self, client: Client, message: dict[str, Any]) -> None:
        version = m.optional(message, "protocol", int, "an integer protocol version")
        if version is not None and version != PROTOCOL_VERSION:
            raise UnsupportedProtocol(
                "unsupported_protocol", f"this server speaks protocol {PROTOCOL_VERSION}, the client {version}"
            )

    def _on_get_state(self, client: Client, message: dict[str, Any]) -> None:
        self.hub.send(client, {**self.state_message(), "id": message.get("id")})

    def _on_ping(self, client: Client, message: dict[str, Any]) -> None:
        client_time = m.number(message, "client_time_ms", "a number (milliseconds)")
        self.hub.send(
            client,
            {"type": "pong", "id": message.get("id"), "client_time_ms": client_time, "server_time_ms": time.time() * 1000.0},
        )

    def _on_stream(self, client: Client, message: dict[str, Any]) -> None:
        client.frames_enabled = m.require(message, "frames", bool, "true or false")
        if not client.frames_enabled:
            client.frames.clear()

    def _on_set(self, client: Client, message: dict[str, Any]) -> None:
        updates = m.settings_updates(message)
        session = self._session()
        changes = session.update(updates)
        self._broadcast_changes(client, message, session, changes)

    def _on_mask(self, client: Client, message: dict[str, Any]) -> None:
        fields = m.mask_fields(message)
        session = self._session()
        update = session.mask_update(fields["block"], mask=fields["mask"], preset=fields["preset"], cells=fields["cells"])
        self._broadcast_changes(client, message, session, session.update([update]))

    def _on_destination(self, client: Client, message: dict[str, Any]) -> None:
        prompt = m.prompt_field(message)
        session = self._session()
        self._broadcast_changes(client, message, session, session.load_destination(prompt))

    def _on_transport(self, client: Client, message: dict[str, Any]) -> None:
        action = m.require(message, "action", str, "play, pause, seek or rate")
        position_s = m.number(message, "position_s", "seconds", required=action == "seek")
        rate = m.number(message, "rate", "a playback rate", required=action == "rate")
        session = self._session()
        session.transport(action, client.id, position_s=position_s, rate=rate)
        self._broadcast_transport(session, client.id, message.get("id"))

    def _on_position(self, client: Client, message: dict[str, Any]) -> None:
        position_s = m.number(message, "position_s", "seconds", required=True)
        playing = m.require(message, "playing", bool, "true or false")
        rate = m.number(message, "rate", "a playback rate")
        latency = m.number(message, "render_latency_ms", "milliseconds")
        if position_s < 0:
            raise ProtocolError("out_of_range", f"position_s must be >= 0, got {position_s}")
        if rate is not None and not 0.0 < rate <= 16.0:
            raise ProtocolError("out_of_range", f"rate must be in (0, 16], got {rate}")
        if latency is not None and latency < 0:
            raise ProtocolError("out_of_range", f"render_latency_ms must be >= 0, got {latency}")
        session = self.sessions.current
        if session is None:
            return  # a page still reporting after its track went away: nothing to steer
        changed = session.report_position(client.id, position_s, playing, rate, latency)
        if changed is not None:
            self._broadcast_transport(session, client.id)

    def _on_load_track(self, client: Client, message: dict[str, Any]) -> None:
        track_id = m.require(message, "track_id", str, "a track id")
        self.sessions.load(track_id)
        self.hub.broadcast({**self.state_message(), "by": client.id, "id": message.get("id")})
