"""`sonosteer doctor` and `sonosteer bench engine --tiny` (the benchmark's CPU smoke test)."""

from __future__ import annotations

import re

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
        "--batch-sizes", "2", "--output", str(report), timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = report.read_text()
    assert "## Engine: steered one-step SDXL-Turbo" in text and "tiny SDXL-Turbo UNet + TAESDXL" in text
    for measure in ("eager frame (apply + generate + copy)", "eager UNet", "eager TAESD decode", "apply() on the host"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {measure}"))
        median, p99 = (float(x) for x in row.split("|")[2:4])
        assert 0 < median <= p99
    per_call = next(line for line in text.splitlines() if line.startswith("| batch 2: generator call"))
    throughput = next(line for line in text.splitlines() if line.startswith("| batch 2: throughput"))
    assert abs(float(throughput.split("|")[2]) - 2000.0 / float(per_call.split("|")[2])) < 0.01
    assert (REPO_ROOT / "benchmarks" / "engine.py").is_file()
