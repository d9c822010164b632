"""The in-browser mock server (`?mock=1`), the UI's development and screenshot tool: the page
runs on it without console errors, plays its synthetic groove with frames and orb meters, and
answers controls the way the real server does."""

from __future__ import annotations

import time

import pytest

from ui_support import VIEWPORT, ConsoleLog, artifact, chromium_browser, require_chromium, static_server

pytestmark = pytest.mark.browser


def test_mock_mode_plays_and_answers_controls():
    require_chromium()
    with static_server() as base, chromium_browser() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        log = ConsoleLog(page)
        page.goto(base + "/index.html?mock=1")
        page.wait_for_function("() => window.sonosteer && window.sonosteer.stats.shown > 0", timeout=20000)
        assert page.inner_text("#track-name") == "synthetic groove (mock)"
        page.click("#play-button")
        time.sleep(3)
        shown = page.evaluate("window.sonosteer.stats.shown")
        t = page.evaluate("document.getElementById('audio').currentTime")
        assert t > 1.5, "the synthetic groove did not play"
        assert shown >= 6
        # Meters travel with the frames to the orbs: the linked stems' energy moved.
        energy = page.evaluate("window.sonosteer.stage.orbs.map((o) => o.target.energy)")
        assert max(energy) > 0.05
        page.screenshot(path=artifact("mock-stage.png"))
        # A preset reaches the mock exactly like the real server: the preset changes, the drawn mask stays.
        page.click('.block-tab[data-block="mid.0"]')
        page.click('.mask-presets [data-preset="floor"]')
        page.wait_for_function("() => window.sonosteerMock.settings.blocks['mid.0'].spatial.preset === 'floor'")
        assert page.evaluate("window.sonosteerMock.settings.blocks['mid.0'].mode") == "manual"
        assert log.errors == [], log.errors
