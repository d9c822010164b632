"""Performer settings: scene round trips, partial updates, and clear rejection of bad input."""

from __future__ import annotations

import json

import pytest

from sonosteer.blocks import BLOCK_NAMES
from sonosteer.bridge.settings import (
    SCENE_VERSION,
    FrozenBlend,
    Scene,
    SettingsError,
    apply_update,
    load_scene,
    save_scene,
    scene_from_json,
    settings_schema,
    unlink_missing,
)


def _rich_scene() -> Scene:
    scene = Scene(name="night drive")
    scene = apply_update(
        scene,
        {
            "blocks": {
                "down.2.1": {"link_target": "bass", "feature_id": 2301, "rank": "R2", "mode": "manual"},
                "mid.0": {"spatial": {"mode": "pitch", "pitch_spread": 0.3}, "silence": "drift_home"},
                "up.0.0": {"spatial": {"mask": [[(r + c) % 2 for c in range(16)] for r in range(16)]}},
                "up.0.1": {"intensity_curve": {"kind": "gamma", "gamma": 0.5}, "stage": {"left": -5, "right": 12}},
            },
            "prompt": {"a": {"a": "a forest", "b": "a city", "t": 0.25}, "b": "the sea", "mode": "linked"},
            "composition": {"seed_a": 7, "seed_b": 9, "distance": 0.8, "mode": "pulse"},
        },
    )
    return scene


def test_defaults_match_the_specification():
    block = Scene().block("mid.0")
    assert (block.stage.left, block.stage.home, block.stage.right) == (-30.0, 0.0, 30.0)
    assert block.silence == "hold" and block.silence_release_ms == 1500.0
    assert block.spatial.pitch_spread == 0.25
    assert list(Scene().blocks) == list(BLOCK_NAMES)


def test_scene_save_load_round_trip(tmp_path):
    scene = _rich_scene()
    path = save_scene(scene, tmp_path / "scenes" / "night.json")
    again = load_scene(path)
    assert again == scene
    assert json.loads(again.to_json()) == json.loads(scene.to_json())
    assert json.loads(path.read_text())["version"] == SCENE_VERSION
    # What was set survives with its types: a frozen blend stays a blend, a drawn mask stays custom.
    assert isinstance(again.prompt.a, FrozenBlend) and again.prompt.a.t == 0.25
    assert again.block("up.0.0").spatial.preset == "custom"
    assert again.block("up.0.0").spatial.mask[0][1] == 1.0
    assert not list(path.parent.glob(".*.part"))


def test_partial_updates_by_path_and_by_dict_leave_the_original_alone():
    scene = Scene()
    by_path = apply_update(scene, "/blocks/up.0.1/feature_id", 4329)
    by_dict = apply_update(scene, {"blocks": {"up.0.1": {"feature_id": 4329}}})
    assert by_path == by_dict
    assert by_path.block("up.0.1").feature_id == 4329
    assert scene.block("up.0.1").feature_id == 0
    # Sibling fields of a nested object are kept.
    moved = apply_update(scene, "/blocks/mid.0/stage/right", 50)
    assert (moved.block("mid.0").stage.left, moved.block("mid.0").stage.right) == (-30.0, 50.0)
    # Choosing a preset keeps the drawing, so switching back to custom restores it.
    drawn = apply_update(scene, "/blocks/mid.0/spatial/mask", [[0.5] * 16] * 16)
    floor = apply_update(drawn, "/blocks/mid.0/spatial/preset", "floor")
    assert floor.block("mid.0").spatial.mask == drawn.block("mid.0").spatial.mask
    assert apply_update(floor, "/blocks/mid.0/spatial/preset", "custom") == drawn


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("/blocks/mid.0/stage/left", 10, "/blocks/mid.0/stage: stage must satisfy left <= home <= right"),
        ("/blocks/mid.9/feature_id", 1, "unknown block 'mid.9'; blocks are down.2.1, mid.0"),
        ("/blocks/mid.0/feature_id", 5120, "/blocks/mid.0/feature_id: Input should be less than 5120"),
        ("/blocks/mid.0/position_source", "loudness", "'fixed', 'pitch', 'chroma', 'brightness' or 'tension'"),
        ("/blocks/mid.0/rank", "R5", "/blocks/mid.0/rank"),
        ("/blocks/mid.0/spatial/preset", "custom", "preset 'custom' needs a drawn 'mask'"),
        ("/blocks/mid.0/spatial/mask", [[0.0] * 16] * 15, "mask must be 16x16"),
        ("/blocks/mid.0/spatial/mask", [[2.0] * 16] * 16, "mask values must be in [0, 1], got 2.0 at row 0"),
        ("/blocks/mid.0/link_target", "../etc", "link target must be a stem name"),
        ("/blocks/mid.0/intensity_curve/gamma", 0.0, "/blocks/mid.0/intensity_curve/gamma"),
        ("/prompt/blend", 1.5, "/prompt/blend: Input should be less than or equal to 1"),
        ("/prompt/a", {"a": "x", "b": "y", "t": 2}, "/prompt/a/t: Input should be less than or equal to 1"),
        ("/composition/mode", "random", "/composition/mode"),
        ("/version", SCENE_VERSION + 1, "newer than this sonosteer reads"),
        ("/blocks/mid.0/colour", "red", "/blocks/mid.0: unknown setting 'colour'"),
    ],
)
def test_invalid_updates_are_rejected_with_the_path_and_reason(path, value, expected):
    scene = Scene()
    with pytest.raises(SettingsError) as info:
        apply_update(scene, path, value)
    assert expected in str(info.value)
    assert info.value.problems and all(p.startswith("/") for p, _ in info.value.problems)


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1,\n "name": }')
    with pytest.raises(SettingsError, match=r"not valid JSON: .* line 2, column 10 \(in .*broken.json\)"):
        load_scene(broken)
    with pytest.raises(SettingsError, match="cannot read scene file"):
        load_scene(tmp_path / "missing.json")
    with pytest.raises(SettingsError, match="a scene must be a JSON object"):
        scene_from_json("[1, 2]")
    with pytest.raises(SettingsError, match="a settings path starts with '/'"):
        apply_update(Scene(), "blocks/mid.0/feature_id", 1)


def test_schema_describes_ranges_and_choices_for_the_ui():
    schema = settings_schema()
    defs = schema["$defs"]
    stage_left = defs["Stage"]["properties"]["left"]
    assert (stage_left["minimum"], stage_left["maximum"], stage_left["default"]) == (-200.0, 200.0, -30.0)
    block = defs["BlockSettings"]["properties"]
    assert block["rank"]["enum"] == ["R1", "R2", "R3", "R4", "auto"]
    assert block["intensity_source"]["enum"] == ["energy_smooth", "transient", "flux", "envelope"]
    assert block["feature_id"]["exclusiveMaximum"] == 5120
    assert defs["CompositionSettings"]["properties"]["mode"]["enum"] == ["auto", "pulse", "continuous"]
    assert schema["properties"]["blocks"]["propertyNames"]["enum"] == list(BLOCK_NAMES)
    json.dumps(schema)  # serialisable as it is


def test_carrying_a_scene_to_another_track_unlinks_only_missing_stems():
    scene = apply_update(
        Scene(),
        {
            "blocks": {"mid.0": {"link_target": "vocals", "feature_id": 9}, "up.0.0": {"link_target": "drums"}},
            "prompt": {"linked": {"link_target": "piano"}},
        },
    )
    carried, changed = unlink_missing(scene, ["drums", "bass", "global"])
    assert changed == ["/blocks/mid.0/link_target", "/prompt/linked/link_target"]
    assert carried.block("mid.0").link_target is None and carried.block("mid.0").feature_id == 9
    assert carried.block("up.0.0").link_target == "drums"
    assert unlink_missing(carried, ["drums"]) == (carried, [])


def test_starter_scene_links_each_block_to_a_present_stem():
    from sonosteer.bridge.starter import STARTER_LINKS, starter_scene

    full = starter_scene(["bass", "drums", "vocals", "other", "global"])
    assert {k: b.link_target for k, b in full.blocks.items()} == {
        "down.2.1": "bass", "mid.0": "drums", "up.0.0": "vocals", "up.0.1": "other"
    }
    assert all(b.mode == "auto" for b in full.blocks.values()) and full.prompt.a and full.prompt.b
    assert {k: b.rank for k, b in full.blocks.items()} == {k: v[1] for k, v in STARTER_LINKS.items()}
    mix_only = starter_scene(["global"])  # a track without separated stems: falls back or stays unlinked
    assert mix_only.block("mid.0").link_target == "global" and mix_only.block("up.0.0").link_target is None
