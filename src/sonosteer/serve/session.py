"""One track's live session: performer settings, planner, audio clock and transport, shared by all clients.

Thread-safe: the render thread calls `next_frame`, the event loop applies client messages; one
lock guards the scene, the planner and the clock. Every accepted change bumps `seq`.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sonosteer.audio.bundle import AnalysisBundle
from sonosteer.blocks import BLOCK_NAMES
from sonosteer.bridge.clock import AudioClock
from sonosteer.bridge.masks import preset_mask
from sonosteer.bridge.meters import MeterSampler
from sonosteer.bridge.planner import FramePlanner
from sonosteer.bridge.settings import Scene, SettingsError, apply_update
from sonosteer.serve.protocol import ProtocolError
from sonosteer.serve.render_loop import FramePlan
from sonosteer.serve.settings_diff import leaf_changes

MIN_RATE, MAX_RATE = 0.25, 4.0
MAX_CLIENT_RENDER_LATENCY_S = 0.5


def settings_error_to_protocol(exc: SettingsError) -> ProtocolError:
    """The first problem of a SettingsError as a protocol error with the closest code."""
    path, message = exc.problems[0] if exc.problems else ("", str(exc))
    lowered = message.lower()
    unknown = re.match(r"unknown setting '(.+)'", message)
    if unknown:
        code = "unknown_path"
        path = f"{path.rstrip('/')}/{unknown.group(1)}"
    elif any(k in lowered for k in ("less than", "greater than", "must be in", "at most", "at least", "newer than")):
        code = "out_of_range"
    else:
        code = "invalid_value"
    return ProtocolError(code, f"{path}: {message}", path=path or None)


@dataclass(frozen=True)
class TransportState:
    playing: bool
    position_s: float
    rate: float
    epoch: int
    clock_client: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "playing": self.playing,
            "position_s": round(self.position_s, 4),
            "rate": self.rate,
            "epoch": self.epoch,
            "clock_client": self.clock_client,
        }


class TrackSession:
    """Settings + planner + clock of one analysed track."""

    def __init__(
        self,
        track_id: str,
        bundle: AnalysisBundle,
        scene: Scene | None = None,
        next_epoch: Callable[[], int] = itertools.count(1).__next__,
    ):
        self.track_id = track_id
        self.bundle = bundle
        self.duration_s = bundle.duration_s
        self.scene = scene or Scene()
        self.clock = AudioClock()
        self.planner = FramePlanner(bundle, self.scene)
        self.meter_sampler = MeterSampler(bundle)
        self.next_epoch = next_epoch
        """Epochs come from the server's one counter, so frames of another track never share one."""
        self.epoch = next_epoch()
        self.seq = 0
        self.clock_client: str | None = None
        self.client_render_latency_s = 0.0
        self.clock_error_s = 0.0
        """Phase error of the latest position report: reported minus predicted media time."""
        self.lock = threading.RLock()

    # -- render thread -----------------------------------------------------------------

    def next_frame(self, lookahead_s: float) -> FramePlan:
        with self.lock:
            now = self.clock.time()
            target = now + lookahead_s * self.clock.rate if self.clock.playing else now
            target = min(max(target, 0.0), self.duration_s)
            controls = self.planner.plan(target)
            controls.media_time_s = target
            targets = [b.link_target if b.enabled else None for b in map(self.scene.block, BLOCK_NAMES)]
            meters = self.meter_sampler.meters(controls, targets)
            return FramePlan(controls=controls, epoch=self.epoch, meters=meters)

    # -- settings ----------------------------------------------------------------------

    def settings_json(self) -> dict[str, Any]:
        with self.lock:
            return self.scene.model_dump(mode="json")

    def update(self, updates: list[dict[str, Any] | tuple[str, Any]]) -> list[dict[str, Any]]:
        """Apply updates in order, atomically (nested dicts or (path, value) pairs); returns the changes.

        Raises ProtocolError (nothing applied) if any update does not validate.
        """
        with self.lock:
            scene = self.scene
            try:
                for update in updates:
                    scene = apply_update(scene, *update) if isinstance(update, tuple) else apply_update(scene, update)
            except SettingsError as exc:
                raise settings_error_to_protocol(exc) from None
            return self._commit(scene)

    def replace_scene(self, scene: Scene) -> None:
        """Load a whole scene (a saved one); physics state carries on. ProtocolError if it does not fit the track."""
        with self.lock:
            self._commit(scene)

    def _commit(self, scene: Scene) -> list[dict[str, Any]]:
        """Hand the scene to the planner (which checks it against this track), then keep it."""
        changes = leaf_changes(self.scene.model_dump(mode="json"), scene.model_dump(mode="json"))
        if changes:
            try:
                self.planner.set_scene(scene)
            except SettingsError as exc:
                raise settings_error_to_protocol(exc) from None
            self.scene = scene
        self.seq += 1
        return changes

    def mask_update(self, block: str, mask: Any = None, preset: str | None = None, cells: Any = None) -> dict[str, Any]:
        """The settings update for a `mask` message (draw mode; a stroke starts from the mask in use)."""
        if preset is not None:
            return {"blocks": {block: {"spatial": {"mode": "draw", "preset": preset}}}}
        if cells is not None:
            with self.lock:
                spatial = self.scene.block(block).spatial
                if spatial.preset == "custom" and spatial.mask is not None:
                    current = np.array(spatial.mask, dtype=np.float32)
                else:
                    current = np.array(preset_mask(spatial.preset), dtype=np.float32)
            for row, col, value in cells:
                current[row, col] = value
            mask = current
        rows = np.round(np.asarray(mask, dtype=np.float64), 3).tolist()
        return {"blocks": {block: {"spatial": {"mode": "draw", "mask": rows}}}}

    def load_destination(self, prompt: str) -> list[dict[str, Any]]:
        """Freeze the blend heard now as A, make `prompt` B, restart the blend from 0; returns the changes."""
        if not prompt.strip():
            raise ProtocolError("invalid_value", "a destination is a non-empty prompt")
        with self.lock:
            old = self.scene.model_dump(mode="json")
            try:
                scene = self.planner.load_destination(prompt)
            except SettingsError as exc:
                raise settings_error_to_protocol(exc) from None
            self.scene = scene
            self.seq += 1
            return leaf_changes(old, scene.model_dump(mode="json"))

    # -- transport ---------------------------------------------------------------------

    def transport_state(self) -> TransportState:
        with self.lock:
            return TransportState(
                playing=self.clock.playing,
                position_s=min(max(self.clock.time(), 0.0), self.duration_s),
                rate=self.clock.rate,
                epoch=self.epoch,
                clock_client=self.clock_client,
            )

    def transport(self, action: str, client_id: str, position_s: float | None = None, rate: float | None = None) -> TransportState:
        """Apply play / pause / seek / rate; the requesting client takes the clock."""
        if position_s is not None and not 0.0 <= position_s <= self.duration_s:
            raise ProtocolError("out_of_range", f"position_s must be in [0, {self.duration_s:.3f}], got {position_s}")
        if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
            raise ProtocolError("out_of_range", f"rate must be in [{MIN_RATE}, {MAX_RATE}], got {rate}")
        with self.lock:
            if action == "play":
                self.clock.play(position_s)
            elif action == "pause":
                self.clock.pause(position_s)
            elif action == "seek":
                if position_s is None:
                    raise ProtocolError("malformed", "seek needs position_s")
                self.clock.seek(position_s)
                self.epoch = self.next_epoch()
            elif action == "rate":
                if rate is None:
                    raise ProtocolError("malformed", "rate needs rate")
                self.clock.set_rate(rate)
            else:
                raise ProtocolError("invalid_value", f"transport action must be play, pause, seek or rate, got {action!r}")
            self.clock_client = client_id
            self.seq += 1
            return self.transport_state()

    def report_position(
        self, client_id: str, position_s: float, playing: bool, rate: float | None, render_latency_ms: float | None
    ) -> TransportState | None:
        """A play-position report. Only the clock client steers the clock (the first reporter takes it
        when nobody holds it). Returns the new transport state when the report changed play/pause."""
        with self.lock:
            if self.clock_client is None:
                self.clock_client = client_id
            if client_id != self.clock_client:
                return None
            if render_latency_ms is not None:
                self.client_render_latency_s = min(max(render_latency_ms / 1000.0, 0.0), MAX_CLIENT_RENDER_LATENCY_S)
            was_playing = self.clock.playing
            position_s = min(max(position_s, 0.0), self.duration_s)
            self.clock_error_s = self.clock.report(position_s, playing=playing, rate=rate)
            if self.clock.playing != was_playing:
                self.seq += 1
                return self.transport_state()
            return None

    def release_clock(self, client_id: str) -> None:
        with self.lock:
            if self.clock_client == client_id:
                self.clock_client = None

