"""A short JSON-able summary of a bundle for `sonosteer analyze --json` and the UI."""

from __future__ import annotations

from sonosteer.audio.bundle import AnalysisBundle


def bundle_summary(bundle: AnalysisBundle) -> dict:
    m = bundle.manifest
    return {
        "bundle": str(bundle.path),
        "source": m["source"]["name"],
        "duration_s": round(bundle.duration_s, 3),
        "tempo_bpm": round(bundle.tempo_bpm, 2),
        "tempo_reliable": m.get("tempo_reliable", True),
        "beats_per_bar": m.get("beats_per_bar", 4),
        "n_beats": len(bundle.beats_s),
        "first_beats_s": [round(float(b), 3) for b in bundle.beats_s[:8]],
        "n_downbeats": len(bundle.downbeats_s),
        "frame_rate_hz": bundle.frame_rate_hz,
        "stems": {s: {"kind": i["kind"], "label": i["label"], **i["classification"]} for s, i in m["stems"].items()},
        "backends": m["backends"],
        "timings_s": m.get("timings_s", {}),
    }
