"""Slow audio tests: the full sectoid song, and bounded memory on an hour-long file (-m slow)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from audio_helpers import SECTOID_BPM, SR, sectoid_mix, tiled_loop
from conftest import REPO_ROOT

from sonosteer.audio.pipeline import analyze_file

pytestmark = pytest.mark.slow


def test_full_sectoid_song_tempo_and_bundle(music_dir, tmp_path):
    mix, _ = sectoid_mix(music_dir)
    path = tmp_path / "sectoid.wav"
    sf.write(path, mix, SR, subtype="FLOAT")
    bundle = analyze_file(path, cache_root=tmp_path / "cache")
    assert abs(bundle.tempo_bpm / SECTOID_BPM - 1) <= 0.02
    assert bundle.duration_s == pytest.approx(len(mix) / SR, abs=0.01)
    intervals = np.diff(bundle.beats_s)
    assert abs(np.median(intervals) - 60 / SECTOID_BPM) < 0.02


def test_one_hour_file_keeps_memory_bounded(music_dir, tmp_path):
    """An hour of tiled drums plus a drone: peak RSS of the analysing process stays under 3 GiB."""
    loop, _, _ = tiled_loop(music_dir, "loop_mika", min_s=60.0)
    path = tmp_path / "hour.flac"
    t = np.arange(len(loop)) / SR
    block = (0.5 * loop + 0.1 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)
    with sf.SoundFile(path, "w", SR, 1, format="FLAC") as f:
        for _ in range(int(np.ceil(3600 / (len(block) / SR)))):
            f.write(block)
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(REPO_ROOT / 'src')!r})
        from sonosteer.audio.pipeline import analyze_file
        b = analyze_file({str(path)!r}, cache_root={str(tmp_path / 'cache')!r})
        print(b.duration_s, b.tempo_bpm, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, out.stderr[-2000:]
    duration, tempo, rss_mib = map(float, out.stdout.split()[-3:])
    assert duration >= 3600 and abs(tempo / 120.0 - 1) <= 0.02
    assert rss_mib < 3072, f"peak RSS {rss_mib:.0f} MiB"
