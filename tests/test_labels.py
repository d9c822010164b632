"""Feature labels: the file format round-trips, bad files are refused clearly, search and neighbourhood work."""

from __future__ import annotations

import json

import pytest

from sonosteer.labels.catalog import FeatureCatalog, confidence_level, resolve_block
from sonosteer.labels.categories import CATEGORIES, CATEGORY_COLORS
from sonosteer.labels.labels_file import (
    FeatureLabel,
    LabelsError,
    default_labels_path,
    load_labels,
    write_labels,
)

LABELS = {
    "down.2.1": [
        FeatureLabel(2301, "intense, evil", "mood", 0.86),
        FeatureLabel(10, "fire and flames", "scene", 0.55),
        FeatureLabel(11, "blue sky", "color", 0.2),
    ],
    "up.0.1": [FeatureLabel(5, "wood grain", "texture", 0.9)],
}


def test_27_distinct_categories_with_distinct_colours():
    assert len(CATEGORIES) == 27 == len(set(CATEGORY_COLORS.values()))
    assert {"scene", "character", "texture", "mood", "color", "spatial", "style"} <= set(CATEGORIES)


def test_write_then_load_round_trips(tmp_path):
    path = write_labels(tmp_path / "labels.json", LABELS, source="hand-made test labels")
    loaded = load_labels(path)
    assert loaded.source == "hand-made test labels"
    assert loaded.blocks["down.2.1"][2301] == FeatureLabel(2301, "intense, evil", "mood", 0.86)
    assert loaded.blocks["mid.0"] == {}
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "not a sonosteer labels file"),
        (lambda d: d.update(version=99), "labels version 99"),
        (lambda d: d["blocks"].update({"up.9": []}), "unknown block 'up.9'"),
        (lambda d: d["blocks"]["down.2.1"].append({"id": 5120, "label": "x", "category": "mood", "confidence": 1}), "id must be"),
        (lambda d: d["blocks"]["down.2.1"].append({"id": 7, "label": "x", "category": "feelings", "confidence": 1}), "category 'feelings'"),
        (lambda d: d["blocks"]["down.2.1"].append({"id": 7, "label": "x", "category": "mood", "confidence": 1.5}), "confidence"),
        (lambda d: d["blocks"]["down.2.1"].append({"id": 7, "label": " ", "category": "mood", "confidence": 1}), "label"),
        (lambda d: d["blocks"]["down.2.1"].append({"id": 10, "label": "y", "category": "mood", "confidence": 1}), "twice"),
    ],
)
def test_malformed_files_are_refused_naming_the_problem(tmp_path, mutate, message):
    path = write_labels(tmp_path / "labels.json", LABELS, source="t")
    document = json.loads(path.read_text())
    mutate(document)
    path.write_text(json.dumps(document))
    with pytest.raises(LabelsError, match=message):
        load_labels(path)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LabelsError, match="unreadable"):
        load_labels(tmp_path / "bad.json")
    with pytest.raises(LabelsError, match="does not exist"):
        load_labels(tmp_path / "nope.json")


def test_catalog_lists_unlabeled_features_and_dead_ones(tmp_path):
    labels = load_labels(write_labels(tmp_path / "l.json", LABELS, source="t"))
    catalog = FeatureCatalog(labels, dead_ids={"up.0.1": frozenset({4329})})
    assert catalog.get("down.2.1", 2301).label == "intense, evil"
    unlabeled = catalog.get(1, 3)
    assert unlabeled.label is None and unlabeled.to_json()["confidence_level"] == "unlabeled"
    assert catalog.get("up.0.1", 4329).dead and not catalog.get("up.0.1", 4328).dead
    with pytest.raises(IndexError):
        catalog.get(0, 5120)
    # Without any labels file every feature is listed, unlabeled.
    bare = FeatureCatalog.from_path(None)
    assert bare.labels_source is None and bare.search(0).total == 5120


def test_search_by_words_category_and_neighbourhood(tmp_path):
    catalog = FeatureCatalog(load_labels(write_labels(tmp_path / "l.json", LABELS, source="t")))
    assert [e.id for e in catalog.search("down.2.1", "FIRE").features] == [10]
    assert [e.id for e in catalog.search(0, "fire flames").features] == [10]
    assert catalog.search(0, "fire sky").total == 0
    assert [e.id for e in catalog.search(0, "mood").features] == [2301]  # category words match too
    assert [e.id for e in catalog.search(0, category="color").features] == [11]
    assert catalog.search(0, "unlabeled").total == 5120 - 3
    around = catalog.search(0, around=100, limit=5).features
    assert [e.id for e in around] == [98, 99, 100, 101, 102]
    edge = catalog.search(0, around=0, limit=4).features
    assert [e.id for e in edge] == [0, 1, 2, 3]
    page = catalog.search(0, offset=10, limit=3)
    assert [e.id for e in page.features] == [10, 11, 12] and page.total == 5120


def test_confidence_levels_and_block_addressing():
    assert [confidence_level(c) for c in (0.9, 0.7, 0.5, 0.1, None)] == ["high", "high", "medium", "low", "unlabeled"]
    assert resolve_block(2) == "up.0.0" and resolve_block("3") == "up.0.1" and resolve_block("mid.0") == "mid.0"
    for bad in (4, "up.9", -1):
        with pytest.raises(KeyError):
            resolve_block(bad)


def test_default_path_follows_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SONOSTEER_DATA", str(tmp_path))
    assert default_labels_path() == tmp_path / "labels" / "feature_labels.json"
    write_labels(default_labels_path(), LABELS, source="default place")
    assert FeatureCatalog.from_path(None).labels_source == "default place"
