"""The browser instrument against the real server (`sonosteer play --engine preview`), driven in
Debian's Chromium: it loads cleanly, frames advance with the audio, a feature change and a painted
mask reach the server and change the frames, seek moves the frames' media time, scenes save and
load, the keyboard works. Screenshots of the stage and of each panel go to test-artifacts/."""

from __future__ import annotations

import io
import json
import time
import urllib.request

import numpy as np
import pytest
from ui_support import (
    VIEWPORT,
    ConsoleLog,
    artifact,
    chromium_browser,
    live_server,
    require_chromium,
)

pytestmark = pytest.mark.browser

TRACK = (
    "drums_cc0/loop_amen_full.flac"  # 6.9 s, 140 BPM: short, so the analysis is quick
)
BLOCK = "down.2.1"


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    require_chromium()
    pytest.importorskip(
        "sonosteer.serve.app",
        reason="the live server (sonosteer.serve) is not in this checkout",
    )
    music_dir = request.getfixturevalue("music_dir")
    home = tmp_path_factory.mktemp("ui-server")
    with live_server(music_dir / TRACK, home) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    with chromium_browser() as b:
        yield b


@pytest.fixture(scope="module")
def ui(server, browser):
    """One instrument page for the whole module, with its console captured."""
    page = browser.new_page(viewport=VIEWPORT)
    log = ConsoleLog(page)
    page.goto(server + "/")
    page.wait_for_function(
        "() => window.sonosteer && window.sonosteer.session.settings && window.sonosteer.stats.shown > 0",
        timeout=30000,
    )
    yield page, log
    page.close()


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as res:
        return json.loads(res.read())


def server_block(server: str, name: str = BLOCK) -> dict:
    return get_json(server + "/api/settings")["blocks"][name]


def frame_pixels(page) -> np.ndarray:
    """The output image as the screen shows it, (H, W, 3) float."""
    from PIL import Image

    png = page.locator("#frame-wrap").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def wait_frames(page, n: int = 3, timeout_ms: int = 15000) -> None:
    """Wait until n more frames have been shown."""
    start = page.evaluate("window.sonosteer.stats.shown")
    page.wait_for_function(
        f"() => window.sonosteer.stats.shown >= {start + n}", timeout=timeout_ms
    )


def pause(page) -> None:
    if page.evaluate("window.sonosteer.transport.playing"):
        page.click("#play-button")
    page.wait_for_function("() => !window.sonosteer.transport.playing")


def test_page_loads_without_console_errors(ui, server):
    page, log = ui
    assert log.errors == [], f"console errors on load: {log.errors}"
    # The page says plainly which engine renders, and shows the track the server loaded.
    assert page.inner_text("#status-engine").strip() == "PREVIEW"
    assert page.is_visible("#preview-badge")
    health = get_json(server + "/api/health")
    assert health["engine"]["kind"] == "preview"
    assert page.inner_text("#track-name") == "loop_amen_full.flac"
    assert page.evaluate("document.querySelectorAll('.block-tab').length") == 4
    page.screenshot(path=artifact("stage.png"))


def test_frames_draw_and_advance_while_audio_plays(ui):
    page, log = ui
    pause(page)
    if (
        page.evaluate(
            "document.getElementById('audio').duration - document.getElementById('audio').currentTime"
        )
        < 4
    ):
        seek = page.locator("#seek").bounding_box()
        page.mouse.click(
            seek["x"] + 2, seek["y"] + seek["height"] / 2
        )  # back to the start
        page.wait_for_function(
            "() => document.getElementById('audio').currentTime < 0.5"
        )
    wait_frames(page, 2)
    before = frame_pixels(page)
    t0 = page.evaluate("document.getElementById('audio').currentTime")
    page.evaluate(
        """() => { window.__shown = []; window.sonosteer.conn.addEventListener('shown', (e) => window.__shown.push(e.detail)); }"""
    )
    page.click("#play-button")
    time.sleep(2.5)
    shown = page.evaluate("window.__shown")
    after = frame_pixels(page)
    t1 = page.evaluate("document.getElementById('audio').currentTime")
    pause(page)
    assert t1 - t0 > 1.5, (
        f"the audio element did not advance ({t0:.2f} s -> {t1:.2f} s)"
    )
    playing = [f for f in shown if f["playing"]]
    assert len(playing) >= 5, f"only {len(playing)} frames shown in 2.5 s of playback"
    numbers = [f["frameNumber"] for f in playing]
    media = [f["mediaTimeS"] for f in playing]
    # Shown in media-time order (the server's lookahead varies a little, so render order may
    # differ by a frame or two), each frame once, and the picture moves on with the music.
    assert len(set(numbers)) == len(numbers) and numbers[-1] > numbers[0], numbers
    assert media == sorted(media) and media[-1] - media[0] > 1.0, media
    # Each frame was shown within the pacing window of the audio it was rendered for.
    lateness_ms = [(f["shownMediaTimeS"] - f["mediaTimeS"]) * 1000 for f in playing]
    assert max(lateness_ms) <= 50 + 1000 / 30, (
        f"a frame was shown {max(lateness_ms):.0f} ms late"
    )
    assert np.abs(after - before).mean() > 0.5, "the image did not change while playing"
    assert log.errors == []


def test_feature_change_reaches_server_and_changes_frames(ui, server):
    page, _ = ui
    pause(page)
    page.click(f'.block-tab[data-block="{BLOCK}"]')
    # A constant strength (no link target: the block sits at home) so the block shows.
    home = page.locator(".stage-slider .thumb.home")
    box = page.locator(".stage-slider").bounding_box()
    hb = home.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(
        box["x"] + box["width"] * (20 + 60) / 120, hb["y"] + hb["height"] / 2, steps=8
    )
    page.mouse.up()
    deadline = time.monotonic() + 10
    while server_block(server)["stage"]["home"] < 15 and time.monotonic() < deadline:
        time.sleep(0.2)
    stage = server_block(server)["stage"]
    assert (
        15 <= stage["home"] <= 25 and stage["left"] <= stage["home"] <= stage["right"]
    )

    wait_frames(page)
    before = frame_pixels(page)
    search = page.locator(".feature-picker input[type=search]")
    search.fill("#1234")
    search.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.feature-id').textContent === '#1234'"
    )
    deadline = time.monotonic() + 10
    while server_block(server)["feature_id"] != 1234 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server_block(server)["feature_id"] == 1234
    wait_frames(page, 4)
    after = frame_pixels(page)
    # The preview renderer textures the block with its feature's grating: the picture changes.
    assert np.abs(after - before).mean() > 1.0
    panel = page.locator("#block-panel")
    panel.evaluate("(el) => el.scrollTo(0, 0)")
    panel.screenshot(path=artifact("panel-block-top.png"))
    panel.evaluate("(el) => el.scrollTo(0, el.scrollHeight)")
    panel.screenshot(path=artifact("panel-block-bottom.png"))
    panel.evaluate("(el) => el.scrollTo(0, 0)")


def test_painted_mask_reaches_server_and_changes_frames(ui, server):
    page, _ = ui
    pause(page)
    page.click(f'.block-tab[data-block="{BLOCK}"]')
    page.click('.mask-presets [data-preset="clear"]')
    deadline = time.monotonic() + 10
    while (
        server_block(server)["spatial"]["preset"] != "clear"
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert server_block(server)["spatial"]["preset"] == "clear"
    wait_frames(page, 4)
    cleared = frame_pixels(page)

    # One left-button stroke across rows 6 and 7 (y 37-50 % of the image), columns 2..13.
    canvas = page.locator(".mask-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    cell = box["width"] / 16
    at = lambda r, c: (box["x"] + (c + 0.5) * cell, box["y"] + (r + 0.5) * cell)
    page.mouse.move(*at(6, 2))
    page.mouse.down()
    page.mouse.move(*at(6, 13), steps=12)
    page.mouse.move(*at(7, 13), steps=2)
    page.mouse.move(*at(7, 2), steps=12)
    page.mouse.up()
    expected = np.zeros((16, 16))
    expected[6:8, 2:14] = 1
    deadline = time.monotonic() + 10
    while (
        not np.array_equal(
            np.asarray(server_block(server)["spatial"]["mask"]), expected
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    block = server_block(server)
    assert np.array_equal(np.asarray(block["spatial"]["mask"]), expected)
    assert block["spatial"]["preset"] == "custom" and block["mode"] == "manual"

    wait_frames(page, 4)
    painted = frame_pixels(page)
    h = painted.shape[0]
    band = slice(int(h * 6.2 / 16), int(h * 7.8 / 16))
    below = slice(int(h * 10.2 / 16), int(h * 11.8 / 16))
    cols = slice(int(painted.shape[1] * 3 / 16), int(painted.shape[1] * 12 / 16))
    change_band = np.abs(painted[band, cols] - cleared[band, cols]).mean()
    change_below = np.abs(painted[below, cols] - cleared[below, cols]).mean()
    # The block's colour now lies in the painted band only.
    assert change_band > 20 and change_band > 5 * change_below, (
        change_band,
        change_below,
    )
    page.locator(".mask-area").screenshot(path=artifact("panel-mask.png"))


def test_seek_moves_the_frames_media_time(ui):
    page, _ = ui
    pause(page)
    duration = page.evaluate("document.getElementById('audio').duration")
    epoch = page.evaluate("window.sonosteer.session.transport.epoch")
    seek = page.locator("#seek").bounding_box()
    page.mouse.click(seek["x"] + seek["width"] * 0.7, seek["y"] + seek["height"] / 2)
    target = 0.7 * duration
    page.wait_for_function(
        f"() => Math.abs(document.getElementById('audio').currentTime - {target}) < 0.3"
    )
    page.wait_for_function(
        f"() => window.sonosteer.session.transport.epoch > {epoch}", timeout=10000
    )
    page.wait_for_function(
        f"() => window.sonosteer.stats.lastFrame && window.sonosteer.stats.lastFrame.epoch > {epoch}"
        f" && Math.abs(window.sonosteer.stats.lastFrame.mediaTimeS - {target}) < 0.3",
        timeout=15000,
    )
    page.locator(".transport").screenshot(path=artifact("panel-transport.png"))


def test_scenes_save_and_load(ui, server):
    page, _ = ui
    page.click(f'.block-tab[data-block="{BLOCK}"]')
    search = page.locator(".feature-picker input[type=search]")
    search.fill("321")
    search.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.feature-id').textContent === '#321'"
    )
    page.click("#scene-button")
    page.fill("#scene-name", "ui test scene")
    page.click("#scene-save")
    page.wait_for_selector(
        '#scene-menu .menu-item[data-scene="ui test scene"]', timeout=10000
    )
    assert "ui test scene" in [
        s["name"] for s in get_json(server + "/api/scenes")["scenes"]
    ]
    page.locator("#scene-menu").screenshot(path=artifact("menu-scenes.png"))
    page.keyboard.press("Escape")

    search.fill("#4000")
    search.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.feature-id').textContent === '#4000'"
    )
    deadline = time.monotonic() + 10
    while server_block(server)["feature_id"] != 4000 and time.monotonic() < deadline:
        time.sleep(0.2)

    page.click("#scene-button")
    page.click('#scene-menu .menu-item[data-scene="ui test scene"]')
    page.wait_for_function(
        "() => document.querySelector('.feature-id').textContent === '#321'",
        timeout=10000,
    )
    assert server_block(server)["feature_id"] == 321


def test_panels_and_menus_screenshots(ui):
    page, _ = ui
    page.locator("#global-panel").screenshot(path=artifact("panel-global.png"))
    page.locator(".topbar").screenshot(path=artifact("topbar.png"))
    page.click(".link-current")
    page.wait_for_selector(".link-menu")
    items = page.locator(".link-menu .menu-item").count()
    assert (
        items >= 12
    )  # "None" plus the track's stems, sub-bands, components and derived signals
    page.locator("#block-panel").screenshot(path=artifact("menu-link.png"))
    page.keyboard.press("Escape")
    page.click("#track-button")
    page.wait_for_selector("#track-menu .menu-item[data-track]")
    page.locator("#track-menu").screenshot(path=artifact("menu-tracks.png"))
    page.keyboard.press("Escape")


def test_keyboard_space_plays_and_f_toggles_output(ui):
    page, _ = ui
    pause(page)
    page.mouse.click(5, 500)  # focus the page, outside any text field
    page.keyboard.press("Space")
    page.wait_for_function("() => window.sonosteer.transport.playing")
    page.keyboard.press("Space")
    page.wait_for_function("() => !window.sonosteer.transport.playing")
    page.keyboard.press("f")
    page.wait_for_function("() => document.body.classList.contains('output-mode')")
    assert not page.is_visible("#block-panel") and page.is_visible("#frame-wrap")
    wrap = page.locator("#frame-wrap").bounding_box()
    assert (
        wrap["height"] >= VIEWPORT["height"] - 2
    )  # the image fills the screen's height
    page.screenshot(path=artifact("output-fullscreen.png"))
    page.keyboard.press("f")
    page.wait_for_function("() => !document.body.classList.contains('output-mode')")
    assert page.is_visible("#block-panel")


def test_prompt_destinations_and_composition_reach_the_server(ui, server):
    page, _ = ui
    page.fill("#prompt-a", "a quiet harbour at dawn")
    page.press("#prompt-a", "Enter")
    page.fill("#prompt-b", "a storm over the sea")
    page.press("#prompt-b", "Enter")
    fader = page.locator(".crossfader .slider").bounding_box()
    page.mouse.click(
        fader["x"] + fader["width"] * 0.4, fader["y"] + fader["height"] / 2
    )
    deadline = time.monotonic() + 10
    while (
        get_json(server + "/api/settings")["prompt"]["b"] != "a storm over the sea"
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    prompt = get_json(server + "/api/settings")["prompt"]
    assert (
        prompt["a"] == "a quiet harbour at dawn"
        and prompt["b"] == "a storm over the sea"
    )
    assert prompt["blend"] == pytest.approx(0.4, abs=0.03)

    # Travelling on: the blend freezes as A, the new prompt is B, the crossfader restarts at 0.
    page.fill("#new-destination", "a lantern-lit forest")
    page.press("#new-destination", "Enter")
    deadline = time.monotonic() + 10
    while (
        get_json(server + "/api/settings")["prompt"]["b"] != "a lantern-lit forest"
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    prompt = get_json(server + "/api/settings")["prompt"]
    assert prompt["b"] == "a lantern-lit forest" and prompt["blend"] == 0
    assert (
        prompt["a"]["a"] == "a quiet harbour at dawn"
        and prompt["a"]["b"] == "a storm over the sea"
    )
    assert prompt["a"]["t"] == pytest.approx(0.4, abs=0.03)
    page.wait_for_selector(".frozen-chip:not([hidden])")

    page.fill("#seed-seed_a", "4242")
    page.press("#seed-seed_a", "Tab")
    page.click(
        '.global-panel .section[data-section="Composition"] .seg button[data-value="pulse"]'
    )
    deadline = time.monotonic() + 10
    while (
        get_json(server + "/api/settings")["composition"]["mode"] != "pulse"
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    composition = get_json(server + "/api/settings")["composition"]
    assert composition["seed_a"] == 4242 and composition["mode"] == "pulse"
    page.locator("#global-panel").screenshot(
        path=artifact("panel-prompts-composition.png")
    )


@pytest.mark.slow
def test_upload_shows_analysis_progress_and_the_new_track_loads(ui, server, music_dir):
    page, _ = ui
    pause(page)
    page.click("#track-button")
    page.set_input_files(
        "#upload-input", str(music_dir / "drums_cc0" / "loop_breakbeat.flac")
    )
    page.wait_for_selector("#track-menu [data-progress]", timeout=20000)
    page.locator("#track-menu").screenshot(path=artifact("menu-tracks-analysing.png"))
    item = '#track-menu .menu-item[data-track]:has-text("loop_breakbeat.flac")'
    page.wait_for_function(
        """() => [...document.querySelectorAll('#track-menu .menu-item[data-track]')]
            .some((el) => el.textContent.includes('loop_breakbeat.flac') && !el.textContent.includes('analyzing'))""",
        timeout=180000,
    )
    page.click(item)
    page.wait_for_function(
        "() => document.getElementById('track-name').textContent === 'loop_breakbeat.flac'",
        timeout=20000,
    )
    assert get_json(server + "/api/health")["track"] == page.evaluate(
        "window.sonosteer.session.track.id"
    )
    # Frames of the new track's session arrive: its epoch, paused at its start.
    shown = page.evaluate("window.sonosteer.stats.shown")
    page.wait_for_function(
        f"() => window.sonosteer.stats.shown > {shown} + 2"
        " && window.sonosteer.stats.lastFrame.epoch === window.sonosteer.session.transport.epoch"
        " && window.sonosteer.stats.lastFrame.mediaTimeS < 0.1",
        timeout=20000,
    )
    assert page.evaluate("document.getElementById('audio').src").endswith(
        page.evaluate("window.sonosteer.session.track.audio_url")
    )


def test_no_console_errors_in_the_whole_session(ui):
    _, log = ui
    assert log.errors == [], f"console errors during the session: {log.errors}"
