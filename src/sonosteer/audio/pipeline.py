"""analyze_file: audio file -> analysis bundle (design.md contract 1), cached by content hash.

Stages: decode -> per 60 s chunk (separate, sub-bands, HPSS components, spectral features,
envelope followers, pitch) -> beats -> track-level channels -> coupling -> classification ->
atomic bundle write. Chunks carry 4 s margins, so STFT and filter edges never reach the kept
frames, and follower state carries across chunks: memory stays bounded for hour-long files.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sonosteer.audio import beats as beats_mod
from sonosteer.audio.bundle import (
    AnalysisBundle, BundleError, BundleWriter, bundle_key, bundles_dir, find_bundle, pair_group,
)
from sonosteer.audio.channels import CORE_CHANNELS, GLOBAL_CHANNELS, GLOBAL_STEM, PAIR_CHANNELS, pair_key
from sonosteer.audio.classify import classify
from sonosteer.audio.coupling import couple
from sonosteer.audio.crossover import virtual_stems
from sonosteer.audio.decode import decode_mono, hash_file
from sonosteer.audio.envelope import follow_envelope, preset_for
from sonosteer.audio.errors import AudioInputError, BackendUnavailable
from sonosteer.audio.features import FrameGrid, brightness, envelope_energy, spectral_features, stft
from sonosteer.audio.pitch import PyinTracker, normalize_pitch, tracker_for
from sonosteer.audio.postprocess import (
    layer_entries, moving_average, normalize, novelty_curves, to_db, tonal_distance, transients,
)
from sonosteer.audio.separation import choose_separator
from sonosteer.audio.stems import COUPLED_STEMS, HPSS_COMPONENTS, TENSION_STEM, StemSpec, all_stems

ANALYSIS_VERSION = "1.0"
GRID = FrameGrid()
CHUNK_FRAMES = 3000  # 60 s
MARGIN_FRAMES = 200  # 4 s
MIN_DURATION_S = 0.25
SILENCE_PEAK = 1e-4  # -80 dBFS
PERCUSSIVE_SKIP = 0.7
PITCHED_STEMS = ("vocals", "bass", "other")

Progress = Callable[[float, str], None]


@dataclass
class _StemFrames:
    """Raw per-frame features of one stem, gathered chunk by chunk."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    follower_state: dict[str, float] = field(default_factory=lambda: {"energy_smooth": 0.0, "flash": 0.0, "sustain": 0.0})

    def add(self, name: str, values: np.ndarray) -> None:
        self.parts[name].append(values)

    def get(self, name: str) -> np.ndarray:
        return np.concatenate(self.parts[name])


def _env_block(x: np.ndarray, x_start: int, env_lo: int, env_hi: int, env_hop: int) -> np.ndarray:
    """Envelope-rate RMS for global envelope indices [env_lo, env_hi) from a block starting at x_start."""
    out = np.zeros(env_hi - env_lo, np.float32)
    first = max(env_lo, x_start // env_hop)
    last = min(env_hi, (x_start + len(x)) // env_hop)
    if last > first:
        seg = x[first * env_hop - x_start: last * env_hop - x_start]
        out[first - env_lo: last - env_lo] = envelope_energy(seg, env_hop)
    return out


def _follow_frames(acc: _StemFrames, env: np.ndarray, stem: StemSpec) -> None:
    """Run the three followers over the block (state carried) and max-pool to frames."""
    preset = preset_for(stem.name, stem.parent)
    per = GRID.env_per_frame
    for name, (att, rel) in (
        ("energy_smooth", (preset.attack_ms, preset.release_ms)),
        ("flash", (preset.flash_attack_ms, preset.flash_release_ms)),
        ("sustain", (preset.sustain_attack_ms, preset.sustain_release_ms)),
    ):
        out, acc.follower_state[name] = follow_envelope(env, GRID.env_rate_hz, att, rel, acc.follower_state[name])
        acc.add(name, out.reshape(-1, per).max(axis=1))


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), message)


@dataclass
class _Backends:
    separator: object
    separator_note: str | None
    pitch: dict[str, object]
    pitch_notes: dict[str, str]


def _pick_backends(separator_pref: str, pitch_pref: str) -> _Backends:
    separator, note = choose_separator(separator_pref)
    trackers, notes = {}, {}
    for stem in PITCHED_STEMS:
        tracker = tracker_for(stem, fallback=(pitch_pref == "pyin"))
        if not isinstance(tracker, PyinTracker):
            try:
                tracker.track(np.zeros(GRID.sample_rate_hz, np.float32), GRID.sample_rate_hz, np.array([0.5]))
            except Exception as exc:  # noqa: BLE001 - any load failure means: use the fallback
                notes[stem] = f"{tracker.name} failed to load ({exc}); using librosa pYIN"
                tracker = PyinTracker()
        trackers[stem] = tracker
    return _Backends(separator, note, trackers, notes)


def _analyse_chunks(y: np.ndarray, n_frames: int, stems: list[StemSpec], backends: _Backends,
                    progress: Progress | None, timings: dict[str, float]) -> dict[str, _StemFrames]:
    import librosa

    hop, sr, env_hop = GRID.hop, GRID.sample_rate_hz, GRID.env_hop
    per = GRID.env_per_frame
    specs = {s.name: s for s in stems}
    acc = {s.name: _StemFrames() for s in stems if s.kind != "derived"}
    n_chunks = -(-n_frames // CHUNK_FRAMES)
    for ci, c0f in enumerate(range(0, n_frames, CHUNK_FRAMES)):
        c1f = min(n_frames, c0f + CHUNK_FRAMES)
        s0f = max(0, c0f - MARGIN_FRAMES)
        s0, s1 = s0f * hop, min(len(y), (c1f + MARGIN_FRAMES) * hop)
        yc = y[s0:s1]
        core = slice(c0f - s0f, c1f - s0f)
        env_lo, env_hi = c0f * per - per // 2, c1f * per - per // 2
        base = 0.05 + 0.75 * ci / n_chunks
        _report(progress, base, f"separating stems ({ci + 1}/{n_chunks})")
        t = time.perf_counter()
        signals = {GLOBAL_STEM: yc, **backends.separator.separate(yc, sr)}
        timings["separation"] += time.perf_counter() - t
        t = time.perf_counter()
        signals.update(virtual_stems(signals, sr))
        timings["sub-bands"] += time.perf_counter() - t
        _report(progress, base + 0.3 * 0.75 / n_chunks, f"features ({ci + 1}/{n_chunks})")
        t = time.perf_counter()
        ratios: dict[str, float] = {}
        masks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, x in list(signals.items()):
            spec = stft(x, GRID)
            feats = spectral_features(spec, x, GRID)
            masks[name] = (spec, feats.pop("_mask_h"), feats.pop("_mask_p"))
            _store(acc[name], feats, core, x, s0, env_lo, env_hi, specs[name])
            energy = feats["energy"][core]
            ratios[name] = float((feats["percussive_ratio"][core] * energy).sum() / max(energy.sum(), 1e-20))
        for comp, src, part in HPSS_COMPONENTS:
            spec, mask_h, mask_p = masks[src]
            cspec = spec * (mask_h if part == "harmonic" else mask_p)
            x = librosa.istft(cspec, hop_length=hop, length=len(signals[src])).astype(np.float32)
            feats = spectral_features(cspec, x, GRID, harmonic=(part == "harmonic"))
            feats.pop("_mask_h"), feats.pop("_mask_p")
            _store(acc[comp], feats, core, x, s0, env_lo, env_hi, specs[comp])
        timings["features"] += time.perf_counter() - t
        _report(progress, base + 0.7 * 0.75 / n_chunks, f"pitch ({ci + 1}/{n_chunks})")
        t = time.perf_counter()
        frame_times = (np.arange(c0f, c1f) - s0f) / GRID.frame_rate_hz
        for stem in PITCHED_STEMS:
            if ratios[stem] > PERCUSSIVE_SKIP:
                pitch, conf = np.zeros(len(frame_times), np.float32), np.zeros(len(frame_times), np.float32)
            else:
                pitch, conf = backends.pitch[stem].track(signals[stem], sr, frame_times)
            acc[stem].add("pitch_hz", pitch)
            acc[stem].add("pitch_confidence", conf)
        timings["pitch"] += time.perf_counter() - t
    return acc


def _store(acc: _StemFrames, feats: dict[str, np.ndarray], core: slice, x: np.ndarray, x_start: int,
           env_lo: int, env_hi: int, stem: StemSpec) -> None:
    for key, values in feats.items():
        acc.add(key, values[core])
    _follow_frames(acc, _env_block(x, x_start, env_lo, env_hi, GRID.env_hop), stem)


def _stem_channels(frames: _StemFrames, beat_s: float, harmonic_ok: bool) -> dict[str, np.ndarray]:
    fr = GRID.frame_rate_hz
    rms = frames.get("rms")
    flux = normalize(frames.get("flux"))
    chroma = frames.get("chroma") if harmonic_ok else np.zeros((len(rms), 12), np.float32)
    out = {
        "rms_db": to_db(rms),
        "envelope": normalize(rms),
        "flux": flux,
        "transient": transients(flux, fr),
        "centroid_hz": frames.get("centroid_hz"),
        "flatness": np.clip(frames.get("flatness"), 0.0, 1.0),
        "percussive_ratio": np.clip(frames.get("percussive_ratio"), 0.0, 1.0),
        "roughness": normalize(frames.get("roughness")) if harmonic_ok else np.zeros(len(rms), np.float32),
        "tonal_distance": tonal_distance(chroma) if harmonic_ok else np.zeros(len(rms), np.float32),
        "chroma": chroma,
    }
    out["brightness"] = brightness(out["centroid_hz"])
    # Followers are scale-equivariant, so normalising after following equals following normalised input.
    ref = float(np.percentile(frames.get("energy_smooth"), 99.0))
    for name in ("energy_smooth", "flash", "sustain"):
        out[name] = normalize(frames.get(name), reference=ref if name != "flash" else None)
    out.update(novelty_curves(frames.get("timbre"), chroma, fr, beat_s))
    out["layer_entry"] = layer_entries(out["energy_smooth"], out["rms_db"], flux, out["flatness"], fr)
    return out


def _tension_channels(glob: dict[str, np.ndarray], beat_s: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The tension curve, and the core channels of the `tension` link target derived from it."""
    fr = GRID.frame_rate_hz
    raw = 0.5 * glob["roughness"] + 0.5 * glob["tonal_distance"]
    tension = normalize(moving_average(raw, int(round(2 * beat_s * fr))))
    smooth, _ = follow_envelope(tension, fr, 200.0, 1500.0)
    flash, _ = follow_envelope(tension, fr, 20.0, 300.0)
    sustain, _ = follow_envelope(tension, fr, 500.0, 3000.0)
    flux = normalize(np.maximum(0.0, np.diff(tension, prepend=tension[:1])))
    n = len(tension)
    channels = {
        "rms_db": (-60.0 + 60.0 * tension).astype(np.float32),
        "envelope": tension,
        "energy_smooth": np.clip(smooth, 0, 1),
        "flash": np.clip(flash, 0, 1),
        "sustain": np.clip(sustain, 0, 1),
        "flux": flux,
        "transient": transients(flux, fr, delta=0.2),
        "centroid_hz": glob["centroid_hz"],
        "brightness": glob["brightness"],
        "flatness": glob["flatness"],
        "percussive_ratio": np.zeros(n, np.float32),
        "roughness": glob["roughness"],
        "tonal_distance": glob["tonal_distance"],
        "chroma": glob["chroma"],
        "pitch_hz": np.zeros(n, np.float32),
        "pitch_confidence": np.zeros(n, np.float32),
        "pitch_normalized": tension,
        "layer_entry": np.zeros(n, np.float32),
    }
    channels.update(novelty_curves(tension[:, None], np.zeros((n, 12), np.float32), fr, beat_s))
    return tension, channels


def analysis_key(path: Path) -> tuple[str, str]:
    """(sha256 of the file, bundle key) for this analysis version."""
    digest = hash_file(path)
    return digest, bundle_key(digest, ANALYSIS_VERSION)


def analyze_file(path: Path | str, cache_root: Path | str | None = None, progress: Progress | None = None,
                 separator: str = "auto", beat_tracker: str = "auto", pitch: str = "auto",
                 force: bool = False) -> AnalysisBundle:
    """Analyse an audio file into a bundle under cache_root (default: sonosteer.paths.cache_root()).

    A second call for the same bytes is a cache hit. separator: auto|demucs|spectral;
    beat_tracker: auto|beat_this|dsp; pitch: auto|pyin. Raises AudioInputError for bad input and
    BackendUnavailable when a back-end was demanded explicitly but cannot run.
    Silence (peak below -80 dBFS) and clips shorter than 0.25 s are errors; anything longer is
    analysed (under 4 s the tempo is a flagged 120 BPM default grid).
    """
    from sonosteer import paths

    path = Path(path)
    cache_root = Path(cache_root) if cache_root is not None else paths.cache_root()
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if not path.is_file():
        raise AudioInputError(f"{path}: is not a file (give the path of an audio file)")
    digest, key = analysis_key(path)
    existing = bundles_dir(cache_root) / key
    if not force:
        try:
            found = find_bundle(cache_root, key)
        except BundleError:  # damaged on disk (e.g. edited by hand): analyse again
            found = None
        if found is not None:
            _report(progress, 1.0, "cached")
            return found
    timings: dict[str, float] = defaultdict(float)
    t0 = time.perf_counter()
    _report(progress, 0.0, "decoding")
    audio = decode_mono(path, GRID.sample_rate_hz)
    y = audio.samples
    if audio.duration_s < MIN_DURATION_S:
        raise AudioInputError(f"{path}: only {audio.duration_s * 1000:.0f} ms of audio; sonosteer needs at least {MIN_DURATION_S} s")
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        raise AudioInputError(f"{path}: the audio is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); nothing to visualise")
    timings["decode"] = time.perf_counter() - t0
    n_frames = 1 + len(y) // GRID.hop
    stems = all_stems()
    t = time.perf_counter()
    backends = _pick_backends(separator, pitch)
    timings["load models"] = time.perf_counter() - t
    acc = _analyse_chunks(y, n_frames, stems, backends, progress, timings)

    _report(progress, 0.8, "beats")
    t = time.perf_counter()
    beat = _track_beats(y, acc, beat_tracker, audio.duration_s)
    timings["beats"] = time.perf_counter() - t
    beat_s = 60.0 / beat.tempo_bpm

    _report(progress, 0.85, "channels")
    t = time.perf_counter()
    channels: dict[str, dict[str, np.ndarray]] = {}
    info: dict[str, dict] = {}
    for stem in stems:
        if stem.kind == "derived":
            continue
        frames = acc[stem.name]
        energy = frames.get("energy")
        ratio = float((frames.get("percussive_ratio") * energy).sum() / max(energy.sum(), 1e-20))
        harmonic_ok = ratio <= PERCUSSIVE_SKIP
        ch = _stem_channels(frames, beat_s, harmonic_ok)
        pitch_from = _pitch_source(stem)
        if pitch_from is not None and harmonic_ok:
            p_hz, p_conf = acc[pitch_from].get("pitch_hz"), acc[pitch_from].get("pitch_confidence")
        else:
            p_hz, p_conf = np.zeros(n_frames, np.float32), np.zeros(n_frames, np.float32)
        ch["pitch_hz"] = np.clip(p_hz, 0, CORE_CHANNELS["pitch_hz"].hi)
        ch["pitch_confidence"] = np.clip(p_conf, 0, 1)
        ch["pitch_normalized"] = normalize_pitch(ch["pitch_hz"], ch["pitch_confidence"])
        channels[stem.name] = ch
        info[stem.name] = {"harmonic_features": harmonic_ok, "pitch_from": pitch_from if harmonic_ok else None,
                           "energy": energy}
    tension, channels[TENSION_STEM] = _tension_channels(channels[GLOBAL_STEM], beat_s)
    info[TENSION_STEM] = {"harmonic_features": True, "pitch_from": None, "energy": channels[TENSION_STEM]["envelope"]}
    times = np.arange(n_frames) / GRID.frame_rate_hz
    channels[GLOBAL_STEM]["tension"] = tension
    channels[GLOBAL_STEM]["beat_phase"] = beats_mod.beat_phase(times, beat.beats_s, beat_s)
    channels[GLOBAL_STEM]["bar_phase"] = beats_mod.beat_phase(times, beat.downbeats_s, beat_s * beat.beats_per_bar)
    timings["channels"] = time.perf_counter() - t

    _report(progress, 0.92, "coupling")
    t = time.perf_counter()
    pairs = {}
    active = {s: (channels[s]["energy_smooth"] > 0.1) & (channels[s]["rms_db"] > -50.0) for s in COUPLED_STEMS}
    for i, a in enumerate(COUPLED_STEMS):
        for b in COUPLED_STEMS[i + 1:]:
            pairs[pair_key(a, b)] = couple(
                channels[a]["energy_smooth"], channels[b]["energy_smooth"], channels[a]["transient"],
                channels[b]["transient"], active[a], active[b], GRID.frame_rate_hz, beat_s)
    timings["coupling"] = time.perf_counter() - t

    t = time.perf_counter()
    stem_manifest = {}
    for stem in stems:
        ch = channels[stem.name]
        cls = classify(ch["rms_db"], ch["percussive_ratio"], info[stem.name]["energy"], ch["transient"],
                       ch["pitch_confidence"], ch["chroma"], ch["flatness"], GRID.frame_rate_hz,
                       info[stem.name]["harmonic_features"])
        ratio = cls.pop("percussive_ratio")
        stem_manifest[stem.name] = {
            "kind": stem.kind, "parent": stem.parent, "label": stem.label,
            "classification": cls, "percussive_ratio": ratio,
            "harmonic_features": info[stem.name]["harmonic_features"],
            "pitch_from": info[stem.name]["pitch_from"],
            "envelope_preset": _preset_doc(stem),
        }
    timings["classification"] = time.perf_counter() - t
    _report(progress, 0.97, "writing bundle")
    t = time.perf_counter()
    if existing.exists():
        shutil.rmtree(existing)
    with BundleWriter(cache_root, key, n_frames=n_frames, frame_rate_hz=GRID.frame_rate_hz) as writer:
        for stem in stems:
            for name, values in channels[stem.name].items():
                spec = CORE_CHANNELS.get(name) or GLOBAL_CHANNELS[name]
                writer.add(stem.name, name, values, spec)
        for pk, chans in pairs.items():
            a, b = pk.split("+")
            for name, values in chans.items():
                writer.add(pair_group(a, b), name, values, PAIR_CHANNELS[name])
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        bundle = writer.commit({
            "analysis_version": ANALYSIS_VERSION,
            "source": {"path": str(path.resolve()), "name": path.name, "sha256": digest, "size_bytes": path.stat().st_size,
                       "sample_rate_hz": audio.source_rate_hz, "channels": audio.source_channels, "decoder": audio.decoder},
            "duration_s": audio.duration_s,
            "analysis_sample_rate_hz": GRID.sample_rate_hz,
            "backends": {
                "separator": backends.separator.name,
                "separator_description": backends.separator.description,
                "separator_note": backends.separator_note,
                "beat_tracker": beat.tracker,
                "pitch": {s: backends.pitch[s].name for s in PITCHED_STEMS},
                "pitch_notes": backends.pitch_notes,
            },
            "tempo_bpm": round(beat.tempo_bpm, 3),
            "tempo_reliable": beat.reliable,
            "tempo_candidates_bpm": [c for c, _ in beat.candidates],
            "beats_per_bar": beat.beats_per_bar,
            "beats_s": [round(float(b), 4) for b in beat.beats_s],
            "downbeats_s": [round(float(b), 4) for b in beat.downbeats_s],
            "stems": stem_manifest,
            "pairs": [list(p.split("+")) for p in pairs],
            "coupled_stems": list(COUPLED_STEMS),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        })
    _report(progress, 1.0, "done")
    return bundle


def _pitch_source(stem: StemSpec) -> str | None:
    """Which separated stem's pitch track a link target carries (derived stems inherit)."""
    if stem.name in PITCHED_STEMS:
        return stem.name
    if stem.parent in PITCHED_STEMS and stem.name != "other_percussive":
        return stem.parent
    if stem.name in ("global", "global_harmonic"):
        return "vocals"
    return None


def _preset_doc(stem: StemSpec) -> dict[str, float]:
    p = preset_for(stem.name, stem.parent)
    return {"attack_ms": p.attack_ms, "release_ms": p.release_ms, "flash_attack_ms": p.flash_attack_ms,
            "flash_release_ms": p.flash_release_ms, "sustain_attack_ms": p.sustain_attack_ms,
            "sustain_release_ms": p.sustain_release_ms}


def _track_beats(y: np.ndarray, acc: dict[str, _StemFrames], preference: str, duration_s: float):
    if preference in ("auto", "beat_this"):
        try:
            return beats_mod.track_beats_beat_this(y, GRID.sample_rate_hz, duration_s)
        except BackendUnavailable:
            if preference == "beat_this":
                raise
    return beats_mod.track_beats_dsp(
        acc[GLOBAL_STEM].get("flux"), acc["drums_low"].get("flux"), acc[GLOBAL_STEM].get("chroma"),
        GRID.frame_rate_hz, GRID.hop, GRID.sample_rate_hz)
