"""Per-frame meters for the instrument's orbs: each block's linked stem sampled at the frame's media time.

Plain numpy. The UI animates orbs, tendrils and the heart with what drove the frame on screen
(docs/protocol.md, message `meters`). Continuous channels are interpolated; `transient` is the
maximum over the last `TRANSIENT_WINDOW_S`, so a one-grid-frame onset is not missed between frames.
"""

from __future__ import annotations

import numpy as np

from sonosteer.audio.bundle import AnalysisBundle
from sonosteer.audio.channels import GLOBAL_STEM
from sonosteer.bridge.frame_controls import FrameControls

CONTINUOUS = ("energy_smooth", "envelope", "flash", "pitch_normalized")
TRANSIENT_WINDOW_S = 0.03


class MeterSampler:
    """Samples the meters of a frame from a bundle; channel arrays are loaded once per stem."""

    def __init__(self, bundle: AnalysisBundle):
        self.bundle = bundle
        self._columns: dict[tuple[str, str], np.ndarray] = {}
        self._window = max(1, int(round(TRANSIENT_WINDOW_S * bundle.frame_rate_hz)))

    def _column(self, stem: str, name: str) -> np.ndarray | None:
        key = (stem, name)
        if key not in self._columns:
            has = self.bundle.has_channel(stem, name)
            self._columns[key] = np.asarray(self.bundle.channel(stem, name), dtype=np.float32) if has else None
        return self._columns[key]

    def _at(self, values: np.ndarray, position: float) -> float:
        i = min(int(position), len(values) - 1)
        j = min(i + 1, len(values) - 1)
        frac = position - i
        return float(values[i] + (values[j] - values[i]) * min(max(frac, 0.0), 1.0))

    def meters(self, controls: FrameControls, link_targets: list[str | None]) -> dict:
        """The `meters` payload (without type and frame number) for a planned frame."""
        position = max(controls.media_time_s, 0.0) * self.bundle.frame_rate_hz
        blocks = []
        for target, block in zip(link_targets, controls.blocks):
            entry = dict.fromkeys(CONTINUOUS, 0.0) | {"transient": 0, "strength": round(float(block.strength), 3)}
            if target is not None:
                for name in CONTINUOUS:
                    values = self._column(target, name)
                    if values is not None:
                        entry[name] = round(self._at(values, position), 4)
                transient = self._column(target, "transient")
                if transient is not None:
                    end = min(int(position) + 1, len(transient))
                    entry["transient"] = int(transient[max(0, end - self._window) : end].max(initial=0.0) > 0.5)
            blocks.append(entry)
        phase = self._column(GLOBAL_STEM, "beat_phase")
        return {
            "media_time_s": round(controls.media_time_s, 4),
            "beat_phase": round(self._at(phase, position), 4) if phase is not None else 0.0,
            "prompt_blend": round(float(controls.prompt_blend), 4),
            "noise_angle_rad": round(float(controls.noise_angle_rad), 4),
            "blocks": blocks,
        }
