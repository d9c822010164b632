"""`sonosteer bench analysis`: seconds per stage on the sectoid song, separation SDR, tempo per file."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 22050
LOOPS = {"loop_amen_full": 140.0, "loop_breakbeat": 126.0, "loop_compus": 148.0, "loop_mika": 120.0}
AI_CLIPS = {"energetic_electronic_s411": 150.0, "happy_acoustic_s411": 110.0, "tender_acoustic_s411": 90.0}


def _load(path: Path) -> np.ndarray:
    from sonosteer.audio.decode import decode_mono

    return decode_mono(path, SR).samples


def _si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    alpha = np.dot(est, ref) / np.dot(ref, ref)
    noise = est - alpha * ref
    return float(10 * np.log10(np.dot(alpha * ref, alpha * ref) / np.dot(noise, noise)))


def _separate_chunked(sep, y: np.ndarray, chunk: int = 60 * SR, margin: int = 4 * SR) -> dict[str, np.ndarray]:
    """The separator as the pipeline runs it: 60 s chunks with 4 s margins."""
    out: dict[str, list[np.ndarray]] = {}
    for c0 in range(0, len(y), chunk):
        s0, s1 = max(0, c0 - margin), min(len(y), c0 + chunk + margin)
        stems = sep.separate(y[s0:s1], SR)
        for k, v in stems.items():
            out.setdefault(k, []).append(v[c0 - s0: c0 - s0 + min(chunk, len(y) - c0)])
    return {k: np.concatenate(v) for k, v in out.items()}


def run_benchmark(music_dir: Path | None = None, out: Path = Path("BENCHMARKS.md"), pipeline: bool = True) -> int:
    import soundfile as sf

    from sonosteer.audio.beats import track_mix
    from sonosteer.audio.pipeline import analyze_file
    from sonosteer.audio.separation import SpectralSeparator
    from sonosteer.bench_report import append_benchmark

    music = Path(music_dir) if music_dir else Path(__file__).resolve().parents[4] / "shared" / "testdata" / "music"
    folder = music / "sectoid_feelings"
    song, guitar = _load(folder / "song.ogg"), _load(folder / "guitar.ogg")
    n = min(len(song), len(guitar))
    mix = song[:n] + guitar[:n]
    peak = float(np.abs(mix).max())
    mix, guitar, song = mix / peak, guitar[:n] / peak, song[:n] / peak

    with tempfile.TemporaryDirectory() as tmp:
        if pipeline:
            wav = Path(tmp) / "sectoid_full_mix.wav"
            sf.write(wav, mix, SR, subtype="FLOAT")
            t0, c0 = time.perf_counter(), time.process_time()
            bundle = analyze_file(wav, cache_root=Path(tmp) / "cache", force=True)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            t1 = time.perf_counter()
            analyze_file(wav, cache_root=Path(tmp) / "cache")
            hit = time.perf_counter() - t1
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows = [(k, v) for k, v in bundle.manifest["timings_s"].items()]
            rows += [("process CPU time (s)", round(cpu, 2)), ("cache hit (s)", round(hit, 4)),
                     ("peak RSS (MiB)", round(rss_mb, 1)), ("real-time factor", round(bundle.duration_s / wall, 2))]
            append_benchmark(
                "Offline analysis of the 288 s sectoid song (full mix = song + guitar)",
                f"analyze_file(force=True) on a 22.05 kHz float WAV of the normalised mix; separator "
                f"{bundle.manifest['backends']['separator']}, beats {bundle.manifest['backends']['beat_tracker']}, "
                f"tempo found {bundle.tempo_bpm:.2f} BPM (reference 95). Wall seconds per stage "
                "(the machine is shared: compare CPU time too)",
                ["stage", "seconds"], rows, path=out)

    sep = SpectralSeparator()
    t0 = time.perf_counter()
    stems = _separate_chunked(sep, mix)
    sep_s = time.perf_counter() - t0
    active = np.abs(guitar) > 0  # whole song; SI-SDR over everything
    rows = [
        ("baseline: the mix itself", round(_si_sdr(mix[active], guitar[active]), 2)),
        ("vocals stem (lead / non-repeating)", round(_si_sdr(stems["vocals"][active], guitar[active]), 2)),
        ("vocals + other", round(_si_sdr((stems["vocals"] + stems["other"])[active], guitar[active]), 2)),
        ("accompaniment check: bass+drums+other vs song", round(_si_sdr(stems["bass"] + stems["drums"] + stems["other"], song), 2)),
        ("accompaniment baseline: mix vs song", round(_si_sdr(mix, song), 2)),
    ]
    append_benchmark(
        "Offline separator quality on the sectoid song (lead guitar known)",
        f"SI-SDR in dB of each estimate against the true guitar stem (mono, 22.05 kHz, full 288 s); "
        f"spectral separator in 60 s chunks took {sep_s:.1f} s",
        ["estimate", "SI-SDR (dB)"], rows, path=out)

    import mir_eval

    rows = []
    for name, bpm in LOOPS.items():
        y = _load(music / "drums_cc0" / f"{name}.flac")
        y = np.tile(y, int(np.ceil(30 * SR / len(y))))
        r = track_mix(y, SR)
        ref = mir_eval.beat.trim_beats(np.arange(0, len(y) / SR, 60 / bpm))
        f = mir_eval.beat.f_measure(ref, mir_eval.beat.trim_beats(r.beats_s))
        rows.append((name + " (tiled 30 s)", bpm, round(r.tempo_bpm, 2), round(100 * (r.tempo_bpm / bpm - 1), 2), round(f, 3)))
    for name, bpm in AI_CLIPS.items():
        r = track_mix(_load(music / "ai_generated" / f"{name}.opus"), SR)
        rows.append((name, bpm, round(r.tempo_bpm, 2), round(100 * (r.tempo_bpm / bpm - 1), 2), "-"))
    r = track_mix(mix, SR)
    rows.append(("sectoid full mix (288 s)", 95.0, round(r.tempo_bpm, 2), round(100 * (r.tempo_bpm / 95 - 1), 2), "-"))
    append_benchmark(
        "Default offline tempo/beat tracker per file",
        "beats.track_mix (comb tempo + librosa DP, no separation); beat F-measure (mir_eval, 70 ms) vs the exact loop grid",
        ["file", "reference BPM", "found BPM", "error %", "beat F"], rows, path=out)
    return 0
