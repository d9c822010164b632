"""analyze_file: audio file -> analysis bundle (design.md contract 1), cached by content hash.

Stages: decode -> per 60 s chunk (separate; per stem family: spectral features, HPSS parts,
sub-bands, pitch) -> beats -> track-level channels -> coupling -> classification -> atomic
bundle write. Chunk tasks run on a pool of worker threads (one per core, see workers.py), at
most two chunks in flight; their results are folded in chunk order, where the envelope
followers carry their state across chunks, so the bundle does not depend on scheduling and
memory stays bounded for hour-long files.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonosteer.audio import beats as beats_mod
from sonosteer.audio.bundle import (
    AnalysisBundle,
    BundleError,
    BundleWriter,
    bundle_key,
    bundles_dir,
    find_bundle,
    pair_group,
)
from sonosteer.audio.channels import CORE_CHANNELS, GLOBAL_CHANNELS, GLOBAL_STEM, PAIR_CHANNELS, pair_key
from sonosteer.audio.chunks import (
    FAMILIES,
    PERCUSSIVE_SKIP,
    PITCHED_STEMS,
    FamilyChunk,
    analyse_family,
    plan_chunks,
    separate_chunk,
)
from sonosteer.audio.classify import classify
from sonosteer.audio.coupling import couple
from sonosteer.audio.decode import decode_mono, decode_stereo_to_file, hash_file
from sonosteer.audio.envelope import follow_envelope, preset_for
from sonosteer.audio.errors import AudioInputError, BackendUnavailable
from sonosteer.audio.features import FrameGrid, brightness
from sonosteer.audio.pitch import PestoTracker, PyinTracker, normalize_pitch, tracker_for
from sonosteer.audio.postprocess import (
    layer_entries,
    moving_average,
    normalize,
    novelty_curves,
    to_db,
    tonal_distance,
    transients,
)
from sonosteer.audio.separation import choose_separator
from sonosteer.audio.stems import COUPLED_STEMS, TENSION_STEM, StemSpec, all_stems
from sonosteer.audio.workers import SingleThreadedKernels, StageTimes, analysis_pool, default_workers

ANALYSIS_VERSION = "1.0"
GRID = FrameGrid()
MIN_DURATION_S = 0.25
SILENCE_PEAK = 1e-4  # -80 dBFS
CHUNKS_IN_FLIGHT = 2

Progress = Callable[[float, str], None]


@dataclass
class _StemFrames:
    """Raw per-frame features of one stem, gathered chunk by chunk."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    follower_state: dict[str, float] = field(default_factory=lambda: {"energy_smooth": 0.0, "flash": 0.0, "sustain": 0.0})

    def add(self, name: str, values: np.ndarray) -> None:
        self.parts[name].append(values)

    def get(self, name: str) -> np.ndarray:
        """The whole-track array (concatenated once, then kept as the single part)."""
        parts = self.parts[name]
        if len(parts) > 1:
            parts[:] = [np.concatenate(parts)]
        return parts[0]


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
class _PitchBackends:
    trackers: dict[str, object]
    notes: dict[str, str]


def _load_pitch(pitch_pref: str, kernels: SingleThreadedKernels) -> tuple[_PitchBackends, StageTimes]:
    """The pitch tracker of each pitched stem, loaded and tried once (PESTO's model is shared)."""
    times = StageTimes()
    with times.stage("load models"):
        trackers, notes = {}, {}
        pesto = PestoTracker()
        for stem in PITCHED_STEMS:
            tracker = tracker_for(stem, fallback=(pitch_pref == "pyin"))
            if isinstance(tracker, PestoTracker):
                tracker = pesto
            if not isinstance(tracker, PyinTracker):
                try:
                    tracker.track(np.zeros(GRID.sample_rate_hz, np.float32), GRID.sample_rate_hz, np.array([0.5]))
                except Exception as exc:  # noqa: BLE001 - any load failure means: use the fallback
                    notes[stem] = f"{tracker.name} failed to load ({exc}); using librosa pYIN"
                    tracker = PyinTracker()
            trackers[stem] = tracker
        kernels.limit_torch()
    return _PitchBackends(trackers, notes), times


def _import_beat_tracker() -> StageTimes:
    """librosa.beat compiles numba kernels on import (~2 s): done on a worker while chunk 0 separates."""
    times = StageTimes()
    with times.stage("load models"):
        importlib.import_module("librosa.beat")
    return times


def _analyse_chunks(y: np.ndarray, n_frames: int, stems: list[StemSpec], separator, pitch_pref: str,
                    workers: int, progress: Progress | None, times: StageTimes,
                    source: np.ndarray | None = None) -> tuple[dict[str, _StemFrames], _PitchBackends]:
    """Every chunk through the worker pool; results folded into per-stem frames in chunk order."""
    specs = {s.name: s for s in stems}
    acc = {s.name: _StemFrames() for s in stems if s.kind != "derived"}
    plans = plan_chunks(len(y), n_frames, GRID)

    def fold(family_futures: list) -> None:
        for future in family_futures:
            result: FamilyChunk = future.result()
            times.merge(result.times)
            for name, chunk in result.stems.items():
                for key, values in chunk.features.items():
                    acc[name].add(key, values)
                _follow_frames(acc[name], chunk.envelope_rms, specs[name])
            if result.pitch_hz is not None:
                acc[result.parent].add("pitch_hz", result.pitch_hz)
                acc[result.parent].add("pitch_confidence", result.pitch_confidence)

    with analysis_pool(workers) as (pool, kernels):
        pitch_future = pool.submit(_load_pitch, pitch_pref, kernels)
        beat_import = pool.submit(_import_beat_tracker)
        next_separation = pool.submit(separate_chunk, y, plans[0], separator, GRID, source)
        in_flight: deque[list] = deque()
        pitch = None
        for plan in plans:
            signals, sep_times = next_separation.result()
            times.merge(sep_times)
            if plan.index + 1 < len(plans):
                next_separation = pool.submit(separate_chunk, y, plans[plan.index + 1], separator, GRID, source)
            if pitch is None:
                pitch, load_times = pitch_future.result()
                times.merge(load_times)
            in_flight.append([
                pool.submit(analyse_family, family, signals[family], plan, GRID, pitch.trackers.get(family))
                for family in FAMILIES
            ])
            del signals
            if len(in_flight) >= CHUNKS_IN_FLIGHT:
                fold(in_flight.popleft())
                done = plan.index  # chunks folded so far
                _report(progress, 0.05 + 0.75 * done / len(plans), f"stems, features, pitch ({done}/{len(plans)})")
        while in_flight:
            fold(in_flight.popleft())
        _report(progress, 0.8, f"stems, features, pitch ({len(plans)}/{len(plans)})")
        times.merge(beat_import.result())
    return acc, pitch


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
                 force: bool = False, workers: int | None = None) -> AnalysisBundle:
    """Analyse an audio file into a bundle under cache_root (default: sonosteer.paths.cache_root()).

    A second call for the same bytes is a cache hit. separator: auto|demucs|spectral;
    beat_tracker: auto|beat_this|dsp; pitch: auto|pyin; workers: threads for the chunk tasks
    (default: one per core, at most 4). Raises AudioInputError for bad input and
    BackendUnavailable when a back-end was demanded explicitly but cannot run.
    The manifest records wall and CPU seconds per stage (`timings_s`, `cpu_s`).
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
    times = StageTimes()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    _report(progress, 0.0, "decoding")
    with times.stage("decode"):
        audio = decode_mono(path, GRID.sample_rate_hz)
    y, duration_s = audio.samples, audio.duration_s
    source_fields = {"sample_rate_hz": audio.source_rate_hz, "channels": audio.source_channels, "decoder": audio.decoder}
    del audio  # y is the only reference to the samples: it can be released before the track-level stage
    if duration_s < MIN_DURATION_S:
        raise AudioInputError(f"{path}: only {duration_s * 1000:.0f} ms of audio; sonosteer needs at least {MIN_DURATION_S} s")
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        raise AudioInputError(f"{path}: the audio is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); nothing to visualise")
    n_frames = 1 + len(y) // GRID.hop
    stems = all_stems()
    with times.stage("load models"):
        sep, separator_note = choose_separator(separator)
        beat_this_reason = beats_mod.beat_this_status() if beat_tracker in ("auto", "beat_this") else "not requested"
        if beat_tracker == "beat_this" and beat_this_reason:
            raise BackendUnavailable(beat_this_reason)  # before the long part, not after it
    workers = default_workers() if workers is None else max(1, int(workers))
    with contextlib.ExitStack() as scratch:
        source = None
        if sep.source_rate_hz is not None:  # the separator wants the file's own stereo at its rate
            _report(progress, 0.02, "decoding stereo for the separator")
            with times.stage("decode"):
                tmp_root = cache_root / "tmp"
                tmp_root.mkdir(parents=True, exist_ok=True)
                folder = Path(scratch.enter_context(tempfile.TemporaryDirectory(dir=tmp_root, prefix="stereo-")))
                source = decode_stereo_to_file(path, sep.source_rate_hz, folder / "source.f32")
        _report(progress, 0.05, "stems, features, pitch")
        chunk_wall = time.perf_counter()
        acc, pitch_backends = _analyse_chunks(y, n_frames, stems, sep, pitch, workers, progress, times, source)
        chunk_wall = time.perf_counter() - chunk_wall
        del source

    _report(progress, 0.8, "beats")
    with times.stage("beats"):
        if beat_this_reason is None:
            beat = beats_mod.track_beats_beat_this(y, GRID.sample_rate_hz, duration_s)
        else:
            beat = beats_mod.track_beats_dsp(
                acc[GLOBAL_STEM].get("flux"), acc["drums_low"].get("flux"), acc[GLOBAL_STEM].get("chroma"),
                GRID.frame_rate_hz, GRID.hop, GRID.sample_rate_hz)
    del y  # the whole-track frame arrays below are what memory holds from here on
    beat_s = 60.0 / beat.tempo_bpm

    _report(progress, 0.85, "channels")
    with times.stage("channels"):
        channels: dict[str, dict[str, np.ndarray]] = {}
        info: dict[str, dict] = {}
        pitch_tracks = {s: (acc[s].get("pitch_hz"), acc[s].get("pitch_confidence")) for s in PITCHED_STEMS}
        for stem in stems:
            if stem.kind == "derived":
                continue
            frames = acc.pop(stem.name)  # raw frames are dropped stem by stem: memory stays ~ one copy
            energy = frames.get("energy")
            ratio = float((frames.get("percussive_ratio") * energy).sum() / max(energy.sum(), 1e-20))
            harmonic_ok = ratio <= PERCUSSIVE_SKIP
            ch = _stem_channels(frames, beat_s, harmonic_ok)
            pitch_from = _pitch_source(stem)
            if pitch_from is not None and harmonic_ok:
                p_hz, p_conf = pitch_tracks[pitch_from]
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
        frame_times = np.arange(n_frames) / GRID.frame_rate_hz
        channels[GLOBAL_STEM]["tension"] = tension
        channels[GLOBAL_STEM]["beat_phase"] = beats_mod.beat_phase(frame_times, beat.beats_s, beat_s)
        channels[GLOBAL_STEM]["bar_phase"] = beats_mod.beat_phase(frame_times, beat.downbeats_s, beat_s * beat.beats_per_bar)

    _report(progress, 0.92, "coupling")
    with times.stage("coupling"):
        pairs = {}
        active = {s: (channels[s]["energy_smooth"] > 0.1) & (channels[s]["rms_db"] > -50.0) for s in COUPLED_STEMS}
        for i, a in enumerate(COUPLED_STEMS):
            for b in COUPLED_STEMS[i + 1:]:
                pairs[pair_key(a, b)] = couple(
                    channels[a]["energy_smooth"], channels[b]["energy_smooth"], channels[a]["transient"],
                    channels[b]["transient"], active[a], active[b], GRID.frame_rate_hz, beat_s)

    with times.stage("classification"):
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
    _report(progress, 0.97, "writing bundle")
    write_wall, write_cpu = time.perf_counter(), time.thread_time()
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
        times.wall_s["write"] += time.perf_counter() - write_wall
        times.cpu_s["write"] += time.thread_time() - write_cpu
        timings_s = {k: round(v, 3) for k, v in times.wall_s.items()}
        timings_s["chunks (elapsed)"] = round(chunk_wall, 3)
        timings_s["total"] = round(time.perf_counter() - wall0, 3)
        cpu_s = {k: round(v, 3) for k, v in times.cpu_s.items()}
        cpu_s["total"] = round(time.process_time() - cpu0, 3)
        bundle = writer.commit({
            "analysis_version": ANALYSIS_VERSION,
            "source": {"path": str(path.resolve()), "name": path.name, "sha256": digest, "size_bytes": path.stat().st_size,
                       **source_fields},
            "duration_s": duration_s,
            "analysis_sample_rate_hz": GRID.sample_rate_hz,
            "backends": {
                "separator": sep.name,
                "separator_description": sep.description,
                "separator_note": "; ".join(n for n in (separator_note, sep.note) if n) or None,
                "beat_tracker": beat.tracker,
                "pitch": {s: pitch_backends.trackers[s].name for s in PITCHED_STEMS},
                "pitch_notes": pitch_backends.notes,
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
            "workers": workers,
            "timings_s": timings_s,
            "cpu_s": cpu_s,
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
