"""`sonosteer play` as a user runs it: a real process, a browser-like client, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import REPO_ROOT, run_sonosteer
from serve_support import WsClient, analysed_loop


@pytest.fixture
def analysed_cache(music_dir):
    path, cache, _ = analysed_loop(music_dir)
    return path, cache


def start_play(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start `sonosteer play ARGS`; returns the process and the URL it serves (from its terminal output)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sonosteer", "play", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), **env},
    )
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"at (http://\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise AssertionError("sonosteer play did not start:\n" + "".join(lines))


def test_play_serves_the_instrument_and_stops_cleanly_on_ctrl_c(analysed_cache, tmp_path):
    loop, cache = analysed_cache
    data = tmp_path / "data"
    proc, url = start_play(
        str(loop), "--no-browser", "--engine", "preview", "--port", "0", "--size", "128", "--fps", "20",
        "--cache", str(cache),
        env={"SONOSTEER_DATA": str(data)},
    )
    try:
        assert url.startswith("http://127.0.0.1:")
        health = httpx.get(f"{url}/api/health", timeout=10).json()
        assert health["engine"]["kind"] == "preview" and health["track"]
        client = WsClient(url)
        assert client.welcome["engine"]["reason"].startswith("preview renderer")
        assert client.welcome["state"]["track"]["name"] == loop.name
        assert client.wait_frames(3, timeout_s=20)
        client.request({"type": "set", "path": "/blocks/mid.0/feature_id", "value": 777}, "changed")
        assert httpx.post(f"{url}/api/scenes", json={"name": "before ctrl-c"}, timeout=10).status_code == 201
        assert "sonosteer server is running" in httpx.get(url, timeout=10).text or httpx.get(url).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out and "Traceback" not in out
    scene = json.loads((data / "scenes" / "before ctrl-c.json").read_text())
    assert scene["blocks"]["mid.0"]["feature_id"] == 777
    kept = json.loads((data / "sessions" / f"{health['track']}.json").read_text())
    assert kept["blocks"]["mid.0"]["feature_id"] == 777
    assert not list(data.rglob("*.part"))


def test_play_refuses_bad_input_with_clear_messages(tmp_path):
    missing = run_sonosteer("play", str(tmp_path / "nope.flac"), "--no-browser", timeout=120)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 100)
    bad = run_sonosteer("play", str(text), "--no-browser", "--engine", "preview", timeout=300)
    assert bad.returncode == 2 and "notes.mp3" in bad.stderr and "Traceback" not in bad.stderr
    size = run_sonosteer("play", str(text), "--no-browser", "--port", "70000", timeout=120)
    assert size.returncode == 2 and "--port" in size.stderr
