"""The instrument's JavaScript logic, run in Chromium against independent expectations: frame
pacing (drop late, hold early, drop oldest on overflow), the binary frame header packed by
Python's documented struct, settings paths, direct feature ids, schema lookups, mask presets."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
from ui_support import WEB_ROOT, chromium_browser, require_chromium, static_server

pytestmark = pytest.mark.browser

FRAME_HEADER = struct.Struct("<4sHHIIHHIddffff")  # docs/protocol.md, "Binary frames"


@pytest.fixture(scope="module")
def page():
    require_chromium()
    with static_server() as base, chromium_browser() as browser:
        pg = browser.new_page()
        pg.goto(
            f"{base}/vendor/README.md"
        )  # any same-origin document, so modules import
        yield pg


def run(page, module: str, body: str, arg=None):
    """Import a module of the web folder and evaluate `body` with it bound to `m`."""
    return page.evaluate(
        f"async (arg) => {{ const m = await import('/js/{module}'); {body} }}",
        arg,
    )


def test_pacer_drops_late_frames_and_holds_early_ones(page):
    out = run(
        page,
        "stage/frame_pacer.js",
        """
        const p = new m.FramePacer({ lateMs: 50, maxDepth: 8, targetDepth: 3 });
        p.push({ frameNumber: 1, mediaTimeS: 9.94 });   // 60 ms late at t = 10
        p.push({ frameNumber: 2, mediaTimeS: 9.96 });   // 40 ms late: still shown
        p.push({ frameNumber: 3, mediaTimeS: 10.10 });  // early: held
        const first = p.take(10.0, true);
        const held = p.take(10.05, true);
        const later = p.take(10.11, true);
        return { first: first && first.frameNumber, held, later: later && later.frameNumber, dropped: p.dropped };
    """,
    )
    assert out["first"] == 2
    assert out["held"] is None
    assert out["later"] == 3
    assert out["dropped"] == {"late": 1, "overflow": 0, "superseded": 0}


def test_pacer_shows_newest_due_frame_and_counts_superseded(page):
    out = run(
        page,
        "stage/frame_pacer.js",
        """
        const p = new m.FramePacer({ lateMs: 50 });
        for (const [n, t] of [[1, 5.00], [2, 5.01], [3, 5.02]]) p.push({ frameNumber: n, mediaTimeS: t });
        const f = p.take(5.03, true);
        return { shown: f.frameNumber, dropped: p.dropped, left: p.queue.length };
    """,
    )
    assert out == {
        "shown": 3,
        "dropped": {"late": 0, "overflow": 0, "superseded": 2},
        "left": 0,
    }


def test_pacer_never_steps_back_in_media_time_while_playing(page):
    out = run(
        page,
        "stage/frame_pacer.js",
        """
        const p = new m.FramePacer({ lateMs: 50 });
        p.push({ frameNumber: 1, mediaTimeS: 1.065 });
        const first = p.take(1.07, true);
        p.push({ frameNumber: 2, mediaTimeS: 1.054 });  // rendered with a shorter lookahead
        p.push({ frameNumber: 3, mediaTimeS: 1.090 });
        const older = p.take(1.08, true);
        const next = p.take(1.095, true);
        p.flush();                                      // a seek: any time may follow
        p.push({ frameNumber: 4, mediaTimeS: 0.5 });
        const afterSeek = p.take(0.51, true);
        return [first.frameNumber, older, next.frameNumber, afterSeek.frameNumber, p.dropped.superseded];
    """,
    )
    assert out == [1, None, 3, 4, 1]


def test_pacer_overflow_drops_oldest_down_to_target_depth(page):
    out = run(
        page,
        "stage/frame_pacer.js",
        """
        const p = new m.FramePacer({ lateMs: 50, maxDepth: 4, targetDepth: 2 });
        for (let n = 1; n <= 5; n++) p.push({ frameNumber: n, mediaTimeS: 20 + n });
        return { kept: p.queue.map((f) => f.frameNumber), dropped: p.dropped.overflow };
    """,
    )
    # The 5th push overflows a depth of 4: the oldest go until 2 remain.
    assert out == {"kept": [4, 5], "dropped": 3}


def test_pacer_keeps_media_time_order_and_shows_newest_when_paused(page):
    out = run(
        page,
        "stage/frame_pacer.js",
        """
        const p = new m.FramePacer();
        p.push({ frameNumber: 2, mediaTimeS: 3.2 });
        p.push({ frameNumber: 1, mediaTimeS: 3.1 });
        const order = p.queue.map((f) => f.frameNumber);
        const paused = p.take(0, false);
        return { order, paused: paused.frameNumber, left: p.queue.length };
    """,
    )
    assert out == {"order": [1, 2], "paused": 2, "left": 0}


def test_frame_header_parses_what_python_packs(page):
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"
    header = FRAME_HEADER.pack(
        b"SSTF",
        1,
        FRAME_HEADER.size,
        4242,
        7,
        512,
        384,
        1,
        12.345678,
        1767312000123.5,
        0.25,
        14.5,
        1.125,
        2.5,
    )
    blob = base64.b64encode(header + jpeg).decode()
    out = run(
        page,
        "net/frame_header.js",
        """
        const bytes = Uint8Array.from(atob(arg), (c) => c.charCodeAt(0));
        const f = m.parseFrame(bytes.buffer);
        const jpeg = new Uint8Array(await f.jpeg.arrayBuffer());
        delete f.jpeg;
        return { ...f, jpegLength: jpeg.length, jpegFirst: jpeg[0], jpegLast: jpeg[jpeg.length - 1] };
    """,
        blob,
    )
    assert FRAME_HEADER.size == 56
    assert out["frameNumber"] == 4242 and out["epoch"] == 7
    assert (out["width"], out["height"], out["preview"]) == (512, 384, True)
    assert out["mediaTimeS"] == pytest.approx(12.345678)
    assert out["sendTimeMs"] == pytest.approx(1767312000123.5)
    assert (out["planMs"], out["renderMs"], out["encodeMs"], out["outputToSendMs"]) == (
        0.25,
        14.5,
        1.125,
        2.5,
    )
    assert (out["jpegLength"], out["jpegFirst"], out["jpegLast"]) == (
        len(jpeg),
        0xFF,
        0xD9,
    )


def test_frame_header_rejects_foreign_and_short_messages(page):
    out = run(
        page,
        "net/frame_header.js",
        """
        const errors = [];
        for (const buf of [new ArrayBuffer(10), new Uint8Array(60).fill(65).buffer]) {
            try { m.parseFrame(buf); errors.push(null); } catch (e) { errors.push(e.message); }
        }
        const packed = m.packFrame({ frameNumber: 9, epoch: 2, width: 64, height: 64, preview: false, mediaTimeS: 1.5, sendTimeMs: 3 }, new Uint8Array([1, 2, 3]).buffer);
        const back = m.parseFrame(packed);
        return { errors, back: [back.frameNumber, back.epoch, back.mediaTimeS, back.preview] };
    """,
    )
    assert "shorter" in out["errors"][0]
    assert "magic" in out["errors"][1]
    assert out["back"] == [9, 2, 1.5, False]


def test_settings_paths(page):
    out = run(
        page,
        "net/session.js",
        """
        const s = { blocks: { "mid.0": { stage: { right: 30 } }, "a/b": { x: 1 } }, prompt: { blend: 0 } };
        m.setPath(s, "/blocks/mid.0/stage/right", 12);
        m.setPath(s, "blocks.1.stage.left", -4);           // dotted, block by index
        m.setPath(s, "blocks.up.0.0.feature_id", 77);      // dotted, block by name
        return {
            s,
            pointer: m.pointer("blocks", "a/b", "x~y"),
            split: m.splitPath("/blocks/a~1b/x~0y"),
            get: m.getPath(s, "/prompt/blend"),
        };
    """,
    )
    assert out["s"]["blocks"]["mid.0"]["stage"] == {"right": 12, "left": -4}
    assert out["s"]["blocks"]["up.0.0"]["feature_id"] == 77
    assert out["pointer"] == "/blocks/a~1b/x~0y"
    assert out["split"] == ["blocks", "a/b", "x~y"]
    assert out["get"] == 0


def test_direct_feature_ids(page):
    out = run(
        page,
        "panels/feature_picker.js",
        """
        return ["#123", " 4095 ", "5120", "#-1", "fire", "12a", "0"].map((t) => m.parseDirectId(t, 5120));
    """,
    )
    assert out == [123, 4095, None, None, None, None, 0]


def test_schema_lookups_on_the_bridge_schema(page):
    schema = json.loads((WEB_ROOT / "js" / "mock" / "settings_schema.json").read_text())
    out = run(
        page,
        "schema.js",
        """
        return {
            ranks: m.enumAt(arg, ["blocks", "mid.0", "rank"], null),
            curve: m.enumAt(arg, ["blocks", "up.0.0", "intensity_curve", "kind"], null),
            stage: m.rangeAt(arg, ["blocks", "mid.0", "stage", "left"], { min: 0, max: 0 }),
            feature: m.rangeAt(arg, ["blocks", "mid.0", "feature_id"], { min: 0, max: 0 }),
            missing: m.enumAt(arg, ["blocks", "mid.0", "nope"], "fallback"),
            defaults: m.defaultsOf(arg).composition,
        };
    """,
        schema,
    )
    assert out["ranks"] == ["R1", "R2", "R3", "R4", "auto"]
    assert out["curve"] == ["linear", "gamma", "clip"]
    assert out["stage"] == {"min": -200, "max": 200}
    assert out["feature"] == {"min": 0, "max": 5119}
    assert out["missing"] == "fallback"
    assert out["defaults"] == {
        "distance": 0.5,
        "mode": "auto",
        "seed_a": 0,
        "seed_b": 1,
    }


def test_mask_presets_cover_the_documented_regions(page):
    out = run(
        page,
        "masks.js",
        "return Object.fromEntries(m.MASK_PRESETS.map((p) => [p, m.presetMask(p)]));",
    )
    rows_lit = {
        name: [r for r, row in enumerate(mask) if any(row)]
        for name, mask in out.items()
    }
    assert rows_lit["floor"] == list(range(8, 16))
    assert rows_lit["ceiling"] == list(range(8))
    assert rows_lit["center"] == list(range(4, 12))
    assert rows_lit["fill"] == list(range(16)) and rows_lit["clear"] == []
    assert all(
        all(v in (0, 1) for v in row) and len(row) == 16
        for mask in out.values()
        for row in mask
    )


def test_mask_presets_and_pitch_masks_match_the_bridge(page):
    """The painter shows exactly the masks the bridge applies (an independent implementation)."""
    masks = pytest.importorskip(
        "sonosteer.bridge.masks", reason="the bridge is not in this checkout"
    )
    out = run(
        page,
        "masks.js",
        """
        return {
            presets: Object.fromEntries(m.MASK_PRESETS.map((p) => [p, m.presetMask(p)])),
            pitch: [0, 0.2, 0.5, 0.93, 1].map((x) => m.pitchMask(x, 0.25)),
        };
    """,
    )
    for name, mask in out["presets"].items():
        np.testing.assert_array_equal(np.asarray(mask), masks.preset_mask(name))
    bands = masks.pitch_masks(0.25)
    for x, mask in zip([0, 0.2, 0.5, 0.93, 1], out["pitch"]):
        np.testing.assert_allclose(
            np.asarray(mask), bands[masks.pitch_mask_index(x)], rtol=1e-5, atol=1e-6
        )


def test_mock_schema_is_the_bridges():
    """The mock server builds its settings from a copy of the bridge's schema: keep them equal."""
    settings = pytest.importorskip(
        "sonosteer.bridge.settings",
        reason="the bridge's settings are not in this checkout",
    )
    copy = json.loads((WEB_ROOT / "js" / "mock" / "settings_schema.json").read_text())
    assert copy == json.loads(json.dumps(settings.settings_schema())), (
        "regenerate src/sonosteer/web/js/mock/settings_schema.json from sonosteer.bridge.settings.settings_schema()"
    )
