"""`sonosteer doctor` and `sonosteer bench engine` (--tiny: the benchmark's CPU smoke test; --real-weights on the tiny weights)."""

from __future__ import annotations

import re

import pytest

from conftest import REPO_ROOT, run_sonosteer


def test_doctor_reports_found_and_missing_weights(tiny_weights, tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty-hub"), "HF_HUB_OFFLINE": "1"}
    out = run_sonosteer(
        "doctor", "--model", str(tiny_weights.model), "--saes", str(tiny_weights.saes), env=env, timeout=240
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(r"torch \S+ \((CPU-only build|CUDA [\d.]+)\)", text)
    assert f"found    SDXL-Turbo ({tiny_weights.model})" in text
    assert f"found    SAEs for the four blocks ({tiny_weights.saes})" in text
    assert "MISSING  TAESDXL decoder (madebyollin/taesdxl)" in text
    assert 'hf download madebyollin/taesdxl --include "config.json"' in text
    assert "sonosteer doctor --download" in text
    assert "renderer `auto` would use:" in text


def test_bench_engine_tiny_runs_and_appends_a_table(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    out = run_sonosteer(
        "bench", "engine", "--tiny", "--size", "128", "--frames", "3", "--warmup-frames", "1",
        "--batch-sizes", "2", "--host-profile", "--profile-top", "1000", "--output", str(report), timeout=300,
    )
    assert out.returncode == 0, out.stderr
    stages = [line for line in out.stderr.splitlines() if line.startswith("[") and " s] " in line]
    assert [line.split(" s] ")[1] for line in stages] == [
        "building the model with random weights", "rendering the reference frame (diffusers attention, fp16, eager)",
        "building the engine", "timing eager frames", "batch 2: compiling and timing",
        "profiling the host's calls per frame",
    ]
    seconds = [float(line[1:].split(" s] ")[0]) for line in stages]
    assert seconds == sorted(seconds)  # progress as it happens, in order
    text = report.read_text()
    assert "## Engine: steered one-step SDXL-Turbo" in text and "tiny SDXL-Turbo UNet + TAESDXL" in text
    for measure in ("eager frame (apply + generate + copy)", "eager UNet", "eager TAESD decode", "apply() on the host"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {measure}"))
        median, p99 = (float(x) for x in row.split("|")[2:4])
        assert 0 < median <= p99
    per_call = next(line for line in text.splitlines() if line.startswith("| batch 2: generator call"))
    throughput = next(line for line in text.splitlines() if line.startswith("| batch 2: throughput"))
    assert abs(float(throughput.split("|")[2]) - 2000.0 / float(per_call.split("|")[2])) < 0.01
    host_us = float(next(line for line in text.splitlines() if line.startswith("| host time per frame")).split("|")[2])
    calls = {line.split("`")[1]: float(line.split("|")[2]) for line in text.splitlines() if "host call: `" in line}
    assert "aten::convolution" in calls and "aten::copy_" in calls  # the UNet's convolutions, the frame's copy out
    assert sum(calls.values()) == pytest.approx(host_us, rel=1e-3)  # the rows partition the frame's host time
    assert (REPO_ROOT / "benchmarks" / "engine.py").is_file()


def test_bench_engine_with_real_weights_reports_their_error_against_the_reference_path(tiny_weights, tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    out = run_sonosteer(
        "bench", "engine", "--real-weights", "--model", str(tiny_weights.model), "--decoder", str(tiny_weights.decoder),
        "--saes", str(tiny_weights.saes), "--size", "128", "--frames", "2", "--warmup-frames", "1", "--skip-eager",
        "--output", str(report), env={"HF_HUB_OFFLINE": "1"}, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = report.read_text()
    assert f"- method: {tiny_weights.model}" in text and "with random weights" not in text
    row = next(line for line in text.splitlines() if line.startswith("| vs reference path: x0 relative error"))
    x0_error, frame_mad = (float(x) for x in row.split("|")[2:4])
    # On CPU "auto" keeps fp16/fp32: the fast path differs from the reference only in summation order.
    assert 0.0 <= x0_error < 1e-3 and frame_mad < 0.5
    refused = run_sonosteer("bench", "engine", "--real-weights", "--tiny", "--output", str(report), timeout=120)
    assert refused.returncode != 0 and "leave it out with --real-weights" in refused.stderr


def test_benches_refuse_counts_below_one_before_running_anything(tmp_path):
    cases = (
        ("engine", "--frames", "0"), ("engine", "--profile-top", "-3"), ("engine", "--frames", "ten"),
        ("kernels", "--replays", "0"), ("bridge", "--frames", "-1"),
    )
    for bench, option, value in cases:
        out = run_sonosteer("bench", bench, option, value, "--output", str(tmp_path / "B.md"), timeout=120)
        assert out.returncode == 2, out.stderr  # argparse's usage error
        assert f"argument {option}" in out.stderr and ("at least 1" in out.stderr or "whole number" in out.stderr)
        assert not (tmp_path / "B.md").exists()


def _rows(text: str) -> dict[str, tuple[float, float]]:
    """measure -> (median, p99) of a benchmark table."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) == 4 and cells[0] not in ("measure", "---"):
            rows[cells[0]] = (float(cells[1]), float(cells[2]))
    return rows


def test_bench_versus_times_two_engines_alternately_and_pairs_their_frames(tmp_path):
    report = tmp_path / "V.md"
    args = ("bench", "engine", "--tiny", "--size", "128", "--frames", "6", "--warmup-frames", "1", "--output", str(report))
    same = run_sonosteer(*args, "--versus=--quantize auto", timeout=300)  # the default again: an A/A comparison
    assert same.returncode == 0, same.stderr
    rows = _rows(report.read_text())
    assert rows["x0 relative difference of B from A (eager)"] == (0.0, 0.0)  # same seed, same settings
    for measure in ("generator", "frame"):
        low, high = rows[f"B - A, {measure}: 95 % bootstrap interval of that median (low, high)"]
        assert low <= rows[f"B - A, {measure}: median of the per-round differences"][0] <= high
    for name in ("A", "B"):
        assert 0 < rows[f"{name}: generator"][0] <= rows[f"{name}: frame (apply + render)"][0]
    report.unlink()
    bf16 = run_sonosteer(*args, "--versus=--dtype bfloat16", timeout=300)
    assert bf16.returncode == 0, bf16.stderr
    text = report.read_text()
    assert "A: SDXL-Turbo, eager, float32 on CPU" in text and "B = A + `--dtype bfloat16`: SDXL-Turbo, eager, bfloat16" in text
    assert 1e-3 < _rows(text)["x0 relative difference of B from A (eager)"][0] < 0.5  # bfloat16 keeps 8 mantissa bits


def test_bench_versus_refuses_options_that_change_the_frame_before_building(tmp_path):
    out = run_sonosteer(
        "bench", "engine", "--tiny", "--versus=--size 256 --no-fp8-convs", "--output", str(tmp_path / "V.md"), timeout=120
    )
    assert out.returncode == 2 and "may not change --size" in out.stderr
    assert "building" not in out.stderr and not (tmp_path / "V.md").exists()
    bad = run_sonosteer("bench", "engine", "--tiny", "--versus=--no-such-option", "--output", str(tmp_path / "V.md"), timeout=120)
    assert bad.returncode == 2 and "--no-such-option" in bad.stderr
