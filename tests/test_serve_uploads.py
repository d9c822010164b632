"""Track uploads against a real server: analysis progress, refusals of bad and oversize files, deletion."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
from serve_support import WsClient, analysed_loop

from sonosteer.audio.bundle import bundles_dir
from sonosteer.engine.preview import PreviewRenderer
from sonosteer.serve.server import LiveServer, ServerConfig

LIMIT = 2_000_000


@pytest.fixture
def loop_and_cache(music_dir):
    path, cache, _ = analysed_loop(music_dir)
    return path, cache


@pytest.fixture
def empty_server(tmp_path, loop_and_cache):
    """A server with no track; its cache already holds the loop's analysis (a copy: deletions stay here)."""
    path, cache = loop_and_cache
    shutil.copytree(cache, tmp_path / "cache")
    config = ServerConfig(data_root=tmp_path / "data", cache_root=tmp_path / "cache", fps=20, max_upload_bytes=LIMIT)
    server = LiveServer(PreviewRenderer(64, 64), config)
    url = server.start_in_thread()
    yield server, url, path
    server.stop()


def incoming(server) -> list:
    folder = server.library.root / ".incoming"
    return list(folder.iterdir()) if folder.is_dir() else []


def test_upload_analyses_reports_progress_and_can_be_loaded(empty_server):
    server, url, loop = empty_server
    watcher = WsClient(url)
    try:
        assert watcher.welcome["state"]["track"] is None
        with httpx.Client(base_url=url, timeout=30) as http:
            r = http.post("/api/tracks", files={"file": ("amen loop.flac", loop.read_bytes(), "audio/flac")})
            assert r.status_code in (200, 202), r.text
            track = r.json()["track"]
            assert track["name"] == "amen loop.flac" and len(track["id"]) == 16
            done = watcher.wait_message(lambda m: m["type"] == "progress" and m["status"] in ("ready", "failed"), 60)
            assert done["status"] == "ready" and done["track_id"] == track["id"]
            listing = watcher.wait_message(lambda m: m["type"] == "tracks" and m["tracks"][0]["status"] == "ready")
            assert listing["tracks"][0]["duration_s"] == pytest.approx(6.857, abs=0.05)
            # The SSE stream of a finished track says so at once and ends.
            events = [json.loads(line[6:]) for line in http.get(f"/api/tracks/{track['id']}/events").text.splitlines() if line]
            assert events[-1]["status"] == "ready"
            details = http.get(f"/api/tracks/{track['id']}").json()
            assert "drums" in details["stems"] and details["analysis"]["tempo_bpm"] > 0
            # Uploading the same audio again is the same track.
            again = http.post("/api/tracks", files={"file": ("copy.flac", loop.read_bytes(), "audio/flac")})
            assert again.status_code == 200 and again.json()["track"]["id"] == track["id"]
        state = watcher.request({"type": "load_track", "track_id": track["id"]}, "state")
        assert state["track"]["id"] == track["id"] and state["transport"]["playing"] is False
        assert watcher.wait_frames(2)
        assert incoming(server) == []
    finally:
        watcher.close()


def test_non_audio_is_refused_and_nothing_is_kept(empty_server):
    server, url, _ = empty_server
    with httpx.Client(base_url=url) as http:
        r = http.post("/api/tracks", files={"file": ("notes.mp3", b"this is not audio\n" * 200, "audio/mpeg")})
        assert r.status_code == 415 and r.json()["error"]["code"] == "not_audio"
        assert "notes.mp3" in r.json()["error"]["message"]
        r = http.post("/api/tracks", files={"file": ("empty.wav", b"", "audio/wav")})
        assert r.status_code == 415
        assert http.get("/api/tracks").json()["tracks"] == []
    assert incoming(server) == []


def test_corrupt_audio_fails_analysis_with_a_clear_error(empty_server):
    server, url, loop = empty_server
    truncated = loop.read_bytes()[:20000]  # a valid FLAC header, then the stream stops
    watcher = WsClient(url, frames=False)
    try:
        with httpx.Client(base_url=url) as http:
            r = http.post("/api/tracks", files={"file": ("broken.flac", truncated, "audio/flac")})
            if r.status_code == 415:  # refused at once: also a clear answer
                assert "broken.flac" in r.json()["error"]["message"]
                return
            assert r.status_code == 202
            track_id = r.json()["track"]["id"]
            failed = watcher.wait_message(lambda m: m["type"] == "progress" and m["status"] in ("ready", "failed"), 60)
            assert failed["status"] == "failed" and failed["error"]
            assert http.get(f"/api/tracks/{track_id}").json()["error"] == failed["error"]
        error = watcher.request({"type": "load_track", "track_id": track_id}, "state")
        assert error["type"] == "error" and error["code"] == "track_not_ready"
    finally:
        watcher.close()


def test_oversize_uploads_are_refused_while_streaming(empty_server):
    server, url, _ = empty_server
    big = b"\0" * (LIMIT + 500_000)
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/api/tracks", files={"file": ("big.wav", big, "audio/wav")})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

        def chunks():  # no Content-Length: the limit is enforced on the stream itself
            for _ in range(40):
                yield b"\0" * 65536

        r = http.post("/api/tracks?name=big.wav", content=chunks())
        assert r.status_code == 413
    assert incoming(server) == []


def test_raw_body_uploads_and_malformed_requests(empty_server):
    server, url, loop = empty_server
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/api/tracks", content=loop.read_bytes(), headers={"content-type": "audio/flac"})
        assert r.status_code == 400 and "name" in r.json()["error"]["message"]
        r = http.post("/api/tracks", files={"other": ("x.flac", loop.read_bytes(), "audio/flac")})
        assert r.status_code == 400 and "'file'" in r.json()["error"]["message"]
        r = http.post("/api/tracks?name=amen.flac", content=loop.read_bytes(), headers={"content-type": "audio/flac"})
        assert r.status_code in (200, 202) and r.json()["track"]["name"] == "amen.flac"
    assert incoming(server) == []


def test_delete_removes_upload_and_analysis_but_not_the_current_track(empty_server):
    server, url, loop = empty_server
    with httpx.Client(base_url=url, timeout=30) as http:
        track = http.post("/api/tracks", files={"file": ("a.flac", loop.read_bytes(), "audio/flac")}).json()["track"]
        assert server.library.wait_ready(track["id"], 60).status == "ready"
        folder = server.library.root / track["id"]
        bundle_path = server.library.get(track["id"]).bundle_path
        assert folder.is_dir() and bundle_path.is_dir()
        server.sessions.load(track["id"])
        r = http.delete(f"/api/tracks/{track['id']}")
        assert r.status_code == 409
        server.sessions._current = None  # nothing playing now
        assert http.delete(f"/api/tracks/{track['id']}").status_code == 200
        assert not folder.exists() and not bundle_path.exists()
        assert bundles_dir(server.config.cache_root).is_dir()
        assert http.get("/api/tracks").json()["tracks"] == []
        assert http.get(f"/api/tracks/{track['id']}").status_code == 404


def test_library_survives_a_restart(tmp_path, loop_and_cache):
    path, cache = loop_and_cache
    config = ServerConfig(data_root=tmp_path / "data", cache_root=cache, fps=10)
    first = LiveServer(PreviewRenderer(64, 64), config)
    url = first.start_in_thread()
    with httpx.Client(base_url=url, timeout=30) as http:
        track = http.post("/api/tracks", files={"file": ("keep.flac", path.read_bytes(), "audio/flac")}).json()["track"]
    first.library.wait_ready(track["id"], 60)
    first.stop()
    second = LiveServer(PreviewRenderer(64, 64), config)  # reads the library from disk
    deadline = time.monotonic() + 30
    while second.library.get(track["id"]).status != "ready" and time.monotonic() < deadline:
        time.sleep(0.05)
    restored = second.library.get(track["id"])
    assert restored.status == "ready" and restored.name == "keep.flac"
