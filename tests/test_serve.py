"""The live server end to end: a real uvicorn server, real WebSocket clients, the preview engine."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from serve_support import WsClient, analysed_loop

from sonosteer.audio.pipeline import analysis_key
from sonosteer.engine.preview import PreviewRenderer
from sonosteer.serve.protocol import FLAG_PREVIEW
from sonosteer.serve.server import LiveServer, ServerConfig

FPS = 30.0
SIZE = 128
LIT = {"stage": {"left": -30.0, "home": 20.0, "right": 30.0}}
"""A block without a link target plays at its home strength: 20 lights it steadily."""


@pytest.fixture
def analysed(music_dir):
    return analysed_loop(music_dir)


@pytest.fixture
def live(tmp_path, analysed):
    """A running server with the drum loop loaded; yields (server, base_url, make_client)."""
    path, cache, bundle = analysed
    config = ServerConfig(
        data_root=tmp_path / "data", cache_root=cache, fps=FPS, max_upload_bytes=2_000_000, starter_scene=False
    )
    server = LiveServer(PreviewRenderer(SIZE, SIZE), config, engine_reason="preview renderer, for the tests")
    url = server.start_in_thread()
    track = server.add_track_file(path, analysis_key(path)[0], bundle)
    server.sessions.load(track.id)
    clients: list[WsClient] = []

    def client(**kw) -> WsClient:
        c = WsClient(url, **kw)
        clients.append(c)
        return c

    yield server, url, client
    for c in clients:
        c.close()
    server.stop()


def test_welcome_then_frames_with_increasing_numbers(live):
    server, url, client = live
    c = client()
    assert c.welcome["type"] == "welcome" and c.welcome["protocol"] == 1
    assert c.welcome["engine"]["kind"] == "preview" and c.welcome["engine"]["preview"] is True
    state = c.welcome["state"]
    assert state["track"]["name"] == "loop_amen_full.flac" and state["track"]["status"] == "ready"
    assert state["settings"]["blocks"]["mid.0"]["stage"]["right"] == 30.0
    frames = c.wait_frames(15)
    numbers = [f.header.frame_number for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    h = frames[-1].header
    assert (h.width, h.height) == (SIZE, SIZE) and h.flags & FLAG_PREVIEW
    assert frames[-1].pixels().shape == (SIZE, SIZE, 3)
    assert all(f.header.render_ms > 0 and f.header.encode_ms > 0 for f in frames)
    # Frames arrive at the configured rate (paused, the controls still render).
    span_ms = frames[-1].received_ms - frames[0].received_ms
    assert (len(frames) - 1) / (span_ms / 1000.0) == pytest.approx(FPS, rel=0.35)


def test_each_frame_is_preceded_by_its_meters(live, analysed):
    server, url, make_client = live
    client = make_client()
    client.request({"type": "set", "path": "/blocks/down.2.1/link_target", "value": "drums"}, "changed")
    client.send({"type": "transport", "action": "play"})
    frames = client.wait_frames(20)
    first = frames[-10].header.frame_number
    with client._cond:
        arrivals = list(client.arrivals)
        meters = {m["frame_number"]: m for m in client.messages if m.get("type") == "meters"}
    for i, (kind, number) in enumerate(arrivals):
        if kind == "frame" and number >= first:
            assert arrivals[i - 1] == ("meters", number), f"frame {number} came without its meters"
    bundle = analysed[2]
    energy = np.asarray(bundle.channel("drums", "energy_smooth"))
    for received in frames[-10:]:
        m = meters[received.header.frame_number]
        assert abs(m["media_time_s"] - received.header.media_time_s) < 1e-3
        expected = np.interp(m["media_time_s"], bundle.times_s, energy)
        assert abs(m["blocks"][0]["energy_smooth"] - expected) < 1e-3
        assert m["blocks"][1]["energy_smooth"] == 0.0  # unlinked block


def test_media_time_tracks_the_reported_audio_position(live):
    server, url, client = live
    c = client()
    c.request({"type": "transport", "action": "seek", "position_s": 2.0}, "transport")
    play = c.request({"type": "transport", "action": "play"}, "transport")
    assert play["playing"] is True and play["clock_client"] == c.welcome["client_id"]
    start = time.monotonic()
    epoch = play["epoch"]
    # Report positions like a browser would: 2.0 s + elapsed.
    for _ in range(8):
        c.send({"type": "position", "position_s": 2.0 + time.monotonic() - start, "playing": True, "render_latency_ms": 5})
        time.sleep(0.1)
    frames = [f for f in c.wait_frames(10) if f.header.epoch == epoch]
    late = frames[-10:]
    for f in late:
        heard_at_receipt = 2.0 + (f.received_ms / 1000.0 - (time.time() - (time.monotonic() - start)))
        lead_s = f.header.media_time_s - heard_at_receipt
        # Rendered ahead of the audio by the lookahead (interval + pipeline + client latency), never behind.
        assert -0.02 < lead_s < 0.25, lead_s
    times = [f.header.media_time_s for f in late]
    assert all(b >= a for a, b in zip(times, times[1:]))
    # A seek moves the frames' media time and bumps the epoch.
    seek = c.request({"type": "transport", "action": "seek", "position_s": 5.0}, "transport")
    assert seek["epoch"] > epoch
    after = [f for f in c.wait_frames(3, after=late[-1].header.frame_number + 2) if f.header.epoch == seek["epoch"]]
    assert after and all(4.9 < f.header.media_time_s < 5.6 for f in after)


def test_settings_change_reaches_other_clients_and_the_frames(live):
    server, url, client = live
    a, b = client(), client()
    region = (slice(40, 90), slice(20, 108))
    before = a.wait_frames(3)[-1]
    reply = a.request({"type": "set", "update": {"blocks": {"down.2.1": LIT}}}, "changed")
    assert reply["changes"] == [{"path": "/blocks/down.2.1/stage/home", "value": 20.0}]
    seen = b.wait_message(lambda m: m["type"] == "changed")
    assert seen["changes"] == reply["changes"] and seen["by"] == a.welcome["client_id"] and seen["seq"] == reply["seq"]
    changed = a.wait_frames(3, after=before.header.frame_number + 3)[-1]
    # The orange down.2.1 light came on: red rises in the region, by a clear margin.
    red_before = before.pixels()[region][..., 0].astype(float).mean()
    red_after = changed.pixels()[region][..., 0].astype(float).mean()
    assert red_after > red_before + 20, (red_before, red_after)
    # Both clients see the frames after the change.
    assert b.wait_frames(1, after=changed.header.frame_number)


def test_mask_stroke_and_preset_reach_every_client(live):
    server, url, client = live
    a, b = client(), client()
    reply = a.request({"type": "mask", "block": "mid.0", "preset": "floor"}, "changed")
    assert {"path": "/blocks/mid.0/spatial/preset", "value": "floor"} in reply["changes"]
    reply = a.request({"type": "mask", "block": 1, "cells": [[0, 0, 1.0], [15, 15, 0.0]]}, "changed")
    mask_change = next(c for c in reply["changes"] if c["path"] == "/blocks/mid.0/spatial/mask")
    mask = np.array(mask_change["value"])
    expected = np.zeros((16, 16))
    expected[8:] = 1.0  # the floor preset, then the stroke
    expected[0, 0], expected[15, 15] = 1.0, 0.0
    np.testing.assert_array_equal(mask, expected)
    assert {"path": "/blocks/mid.0/spatial/preset", "value": "custom"} in reply["changes"]
    b.wait_message(lambda m: m["type"] == "changed" and m["id"] == reply["id"])


def test_destination_freezes_the_current_blend(live):
    server, url, client = live
    a = client()
    a.request({"type": "set", "update": {"prompt": {"a": "a neon city", "b": "a foggy forest", "blend": 0.25}}}, "changed")
    a.wait_frames(2, after=a.received[-1].header.frame_number if a.received else -1)
    reply = a.request({"type": "destination", "prompt": "the deep sea"}, "changed")
    by_path = {c["path"]: c["value"] for c in reply["changes"]}
    assert by_path["/prompt/b"] == "the deep sea" and by_path["/prompt/blend"] == 0.0
    assert by_path["/prompt/a"] == {"a": "a neon city", "b": "a foggy forest", "t": 0.25}


BAD_MESSAGES = [
    ("{not json", "malformed"),
    ("[1, 2]", "malformed"),
    ('{"no_type": 1}', "malformed"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "set", "path": "/blocks/mid.0/colour", "value": 1}', "unknown_path"),
    ('{"type": "set", "path": "/blocks/mid.0/feature_id", "value": 99999}', "out_of_range"),
    ('{"type": "set", "path": "/blocks/mid.0/rank", "value": "R9"}', "invalid_value"),
    ('{"type": "set", "path": "/blocks/mid.0/stage/left", "value": 50}', "invalid_value"),
    ('{"type": "set", "path": "/blocks/mid.0/feature_id"}', "malformed"),
    ('{"type": "set", "path": "/blocks/mid.0/link_target", "value": "kazoo"}', "invalid_value"),
    ('{"type": "destination", "prompt": "  "}', "invalid_value"),
    ('{"type": "mask", "block": 7, "preset": "floor"}', "out_of_range"),
    ('{"type": "mask", "block": "mid.0", "cells": [[16, 0, 1]]}', "out_of_range"),
    ('{"type": "mask", "block": "mid.0", "mask": [[2]]}', "invalid_value"),
    ('{"type": "transport", "action": "seek", "position_s": 1e9}', "out_of_range"),
    ('{"type": "transport", "action": "rate", "rate": 100}', "out_of_range"),
    ('{"type": "transport", "action": "rewind"}', "invalid_value"),
    ('{"type": "position", "position_s": -3, "playing": true}', "out_of_range"),
    ('{"type": "position", "position_s": "soon", "playing": true}', "malformed"),
    ('{"type": "load_track", "track_id": "../../etc/passwd"}', "unknown_track"),
    ('{"type": "load_track", "track_id": "0123456789abcdef"}', "unknown_track"),
    ('{"type": "ping", "client_time_ms": 1, "id": {"nested": true}}', "malformed"),
]


def test_bad_messages_get_an_error_and_the_session_goes_on(live):
    server, url, client = live
    c = client()
    for message, code in BAD_MESSAGES:
        c.send(message)
        error = c.wait_message(lambda m: m["type"] == "error")
        assert error["code"] == code, (message, error)
        assert error["message"]
        # The session goes on: a valid change is applied and frames keep coming.
        ok = c.request({"type": "set", "path": "/blocks/up.0.0/feature_id", "value": 42}, "changed")
        assert ok["type"] == "changed", (message, ok)
    seen = c.wait_frames(1)[-1].header.frame_number
    assert c.wait_frames(1, after=seen)
    assert server.render_loop.errors == 0


def test_binary_and_oversize_messages_are_refused_without_closing(live):
    server, url, client = live
    c = client()
    c.send(b"\x00\x01")
    assert c.wait_message(lambda m: m["type"] == "error")["code"] == "malformed"
    c.send('{"type": "ping", "pad": "' + "x" * 300_000 + '"}')
    assert c.wait_message(lambda m: m["type"] == "error")["code"] == "too_large"
    pong = c.request({"type": "ping", "client_time_ms": 12.5}, "pong")
    assert pong["client_time_ms"] == 12.5 and pong["server_time_ms"] > 1e12


def test_unsupported_protocol_version_closes_with_4001(live):
    server, url, client = live
    c = client()
    c.send({"type": "hello", "protocol": 2})
    assert c.wait_message(lambda m: m["type"] == "error")["code"] == "unsupported_protocol"
    c._thread.join(5)
    assert c.closed and c.conn.close_code == 4001


def test_a_stalled_client_does_not_slow_the_others(live):
    server, url, client = live
    stalled = client(read=False)  # connected, never reads a byte
    reader = client()
    first = reader.wait_frames(1)[-1]
    time.sleep(2.0)
    frames = reader.wait_frames(1, after=first.header.frame_number)
    fps = len(frames) / ((frames[-1].received_ms - first.received_ms) / 1000.0)
    assert fps > 0.8 * FPS, fps
    stalled_state = server.hub.clients[stalled.welcome["client_id"]]
    # The stalled client's socket buffers fill, then its queue drops frames instead of growing.
    assert len(stalled_state.frames) <= 2
    assert server.render_loop.render_rate.rate(time.perf_counter()) > 0.8 * FPS


def test_many_clients_connecting_and_vanishing_leave_the_loop_running(live):
    server, url, client = live
    watcher = client()
    crowd = [client() for _ in range(12)]
    for c in crowd:
        c.wait_frames(1)
    for c in crowd:
        c.conn.socket.close()  # vanish mid-stream without a close handshake
    mark = watcher.wait_frames(1)[-1].header.frame_number
    assert len(watcher.wait_frames(int(FPS), after=mark, timeout_s=10)) >= int(FPS)
    deadline = time.monotonic() + 10
    while len(server.hub.clients) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.hub.clients) == 1
    assert server.render_loop.errors == 0


def test_control_only_clients_get_no_frames_but_every_change(live):
    server, url, client = live
    control, viewer = client(frames=False), client()
    viewer.request({"type": "set", "path": "/composition/seed_a", "value": 7}, "changed")
    assert control.wait_message(lambda m: m["type"] == "changed")["changes"] == [
        {"path": "/composition/seed_a", "value": 7}
    ]
    time.sleep(0.3)
    assert control.received == []
    control.send({"type": "stream", "frames": True})
    assert control.wait_frames(2)


def test_rest_health_settings_schema_and_stats(live):
    server, url, client = live
    with httpx.Client(base_url=url) as http:
        health = http.get("/api/health").json()
        assert health["status"] == "ok" and health["engine"]["kind"] == "preview" and health["protocol"] == 1
        assert health["track"] == server.sessions.current.track_id
        schema = http.get("/api/settings/schema").json()
        assert "blocks" in schema["properties"]
        assert http.get("/api/settings").json()["blocks"]["mid.0"]["feature_id"] == 0
        time.sleep(0.3)
        stats = http.get("/api/stats").json()
        assert stats["frames"] > 0 and stats["latency_ms"]["render"] > 0
        assert http.get("/").status_code == 200


def test_track_ids_cannot_escape_the_library(live):
    server, url, client = live
    with httpx.Client(base_url=url) as http:
        for bad in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e", "0123456789ABCDEF", "0123456789abcdef0", "x" * 300):
            r = http.get(f"/api/tracks/{bad}/audio")
            assert r.status_code == 404, (bad, r.status_code)
            assert r.json()["error"]["code"] in ("unknown_track", "not_found")
        r = http.delete("/api/tracks/...")
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_track"
        assert http.delete("/api/tracks/..%2F..").status_code == 404
        r = http.get("/api/no-such-endpoint")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_audio_is_served_with_range_support(live, analysed):
    server, url, client = live
    drum_loop = analysed[0]
    track_id = server.sessions.current.track_id
    with httpx.Client(base_url=url) as http:
        r = http.get(f"/api/tracks/{track_id}/audio", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and r.content == drum_loop.read_bytes()[:100]


def test_scenes_save_list_load_and_bad_names(live):
    server, url, client = live
    c = client()
    with httpx.Client(base_url=url) as http:
        c.request({"type": "set", "path": "/blocks/up.0.1/feature_id", "value": 4242}, "changed")
        assert http.post("/api/scenes", json={"name": "drop one"}).status_code == 201
        assert [s["name"] for s in http.get("/api/scenes").json()["scenes"]] == ["drop one"]
        assert http.get("/api/scenes/drop one").json()["blocks"]["up.0.1"]["feature_id"] == 4242
        c.request({"type": "set", "path": "/blocks/up.0.1/feature_id", "value": 1}, "changed")
        assert http.post("/api/scenes/drop one/load").status_code == 200
        state = c.wait_message(lambda m: m["type"] == "state")
        assert state["settings"]["blocks"]["up.0.1"]["feature_id"] == 4242
        for bad in ("../escape", ".hidden", "a/b", "x" * 65):
            assert http.post("/api/scenes", json={"name": bad}).status_code in (404, 422), bad
        assert not list((server.config.data_root / "scenes").glob("*.part"))
        assert http.get("/api/scenes/nope").status_code == 404
        assert http.delete("/api/scenes/drop one").status_code == 200
        assert http.get("/api/scenes").json()["scenes"] == []


def test_settings_are_kept_across_restarts_and_unfit_ones_are_dropped(tmp_path, analysed):
    path, cache, bundle = analysed
    config = ServerConfig(data_root=tmp_path / "data", cache_root=cache, fps=10, starter_scene=False)

    def start() -> tuple[LiveServer, str]:
        server = LiveServer(PreviewRenderer(64, 64), config)
        server.start_in_thread()
        track = server.add_track_file(path, analysis_key(path)[0], bundle)
        return server, track.id

    first, track_id = start()
    first.sessions.load(track_id).update([("/blocks/up.0.0/feature_id", 321)])
    first.stop()
    second, _ = start()
    assert second.sessions.load(track_id).scene.blocks["up.0.0"].feature_id == 321
    second.stop()
    kept = config.data_root / "sessions" / f"{track_id}.json"
    kept.write_text(kept.read_text().replace('"link_target": null', '"link_target": "kazoo"', 1))
    third, _ = start()
    try:
        session = third.sessions.load(track_id)  # a stem this track does not have: back to defaults
        assert session.scene.blocks["up.0.0"].feature_id == 0
    finally:
        third.stop()


def test_a_new_track_starts_from_the_starter_scene(tmp_path, analysed):
    path, cache, bundle = analysed
    server = LiveServer(PreviewRenderer(SIZE, SIZE), ServerConfig(data_root=tmp_path / "data", cache_root=cache, fps=10))
    server.start_in_thread()
    try:
        track = server.add_track_file(path, analysis_key(path)[0], bundle)
        session = server.sessions.load(track.id)
        assert session.scene.block("mid.0").link_target == "drums"
        assert session.scene.prompt.a and session.scene.prompt.b
    finally:
        server.stop()
