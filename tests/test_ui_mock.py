"""The in-browser mock server (`?mock=1`), the UI's development and screenshot tool: the page
runs on it without console errors, plays its synthetic groove with frames and orb meters, and
answers controls the way the real server does."""

from __future__ import annotations

import time

import pytest
from ui_support import (
    VIEWPORT,
    ConsoleLog,
    artifact,
    chromium_browser,
    require_chromium,
    static_server,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mock_page():
    require_chromium()
    with static_server() as base, chromium_browser() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        log = ConsoleLog(page)
        page.goto(base + "/index.html?mock=1")
        page.wait_for_function(
            "() => window.sonosteer && window.sonosteer.stats.shown > 0", timeout=20000
        )
        yield page, log


def test_mock_mode_plays_and_answers_controls(mock_page):
    page, log = mock_page
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
    page.wait_for_function(
        "() => window.sonosteerMock.settings.blocks['mid.0'].spatial.preset === 'floor'"
    )
    assert (
        page.evaluate("window.sonosteerMock.settings.blocks['mid.0'].mode") == "manual"
    )
    assert log.errors == [], log.errors


def test_orbs_drag_with_inertia_and_stay_off_the_image(mock_page):
    """Matter.js physics: a dragged orb follows the pointer, keeps moving after release (inertia),
    and never ends up over the image or outside the stage."""
    page, log = mock_page
    page.click('.block-tab[data-block="down.2.1"]')
    stage = page.locator("#stage").bounding_box()
    start = page.evaluate("window.sonosteer.stage.physics.position('1')")
    x0, y0 = stage["x"] + start["x"], stage["y"] + start["y"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 20, y0 - 120, steps=6)
    grabbed = page.evaluate("window.sonosteer.stage.physics.dragging")
    page.mouse.move(x0 + 40, y0 - 240, steps=3)  # a quick flick upward
    page.mouse.up()
    released = page.evaluate("window.sonosteer.stage.physics.position('1')")
    page.wait_for_timeout(400)
    later = page.evaluate("window.sonosteer.stage.physics.position('1')")
    page.wait_for_timeout(2500)
    rest = page.evaluate("window.sonosteer.stage.physics.position('1')")
    image = page.evaluate("window.sonosteer.stage.imageRect")
    radius = page.evaluate("window.sonosteer.stage.orbRadius")
    selected = page.evaluate("window.sonosteer.blockPanel.index")
    assert grabbed == "1" and selected == 1  # pressing an orb selects its block
    assert start["y"] - released["y"] > 100  # it followed the pointer
    assert abs(later["y"] - released["y"]) > 5  # and kept moving after release
    inside = (
        image["x"] - radius < rest["x"] < image["x"] + image["w"] + radius
        and image["y"] - radius < rest["y"] < image["y"] + image["h"] + radius
    )
    assert not inside, (rest, image)
    assert 0 <= rest["x"] <= stage["width"] and 0 <= rest["y"] <= stage["height"]
    page.screenshot(path=artifact("mock-orb-dragged.png"))
    assert log.errors == [], log.errors
