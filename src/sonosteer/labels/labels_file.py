"""The feature labels file: per block, a label, category and confidence for SAE features (JSON).

Format (version 1):

    {"format": "sonosteer-feature-labels", "version": 1,
     "source": "how the labels were made (free text)", "created_utc": "2026-11-02T10:00:00+00:00",
     "blocks": {"down.2.1": [{"id": 2301, "label": "intense, evil", "category": "mood",
                               "confidence": 0.86}, ...],
                "mid.0": [...], "up.0.0": [...], "up.0.1": [...]}}

`id` is the SAE feature index (0..5119); `category` one of `categories.CATEGORIES`;
`confidence` in [0, 1]. Blocks and features may be missing: those features are unlabeled.
Written atomically (temporary file + rename) by `write_labels`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sonosteer.blocks import BLOCK_NAMES, SAE_N_FEATURES
from sonosteer.labels.categories import CATEGORIES
from sonosteer.paths import data_root

LABELS_FORMAT = "sonosteer-feature-labels"
LABELS_VERSION = 1
DEFAULT_LABELS_NAME = "feature_labels.json"


class LabelsError(ValueError):
    """A labels file is unreadable or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class FeatureLabel:
    """One labelled feature."""

    id: int
    label: str
    category: str
    confidence: float


@dataclass(frozen=True)
class LabelsFile:
    """A loaded labels file: per block short name, feature id -> FeatureLabel."""

    blocks: dict[str, dict[int, FeatureLabel]]
    source: str = ""
    path: Path | None = None


def default_labels_path() -> Path:
    """Where `sonosteer` looks for labels when none is given: `<data root>/labels/feature_labels.json`."""
    return data_root() / "labels" / DEFAULT_LABELS_NAME


def _parse_entry(entry: object, where: str) -> FeatureLabel:
    if not isinstance(entry, dict):
        raise LabelsError(f"{where}: each feature must be an object with id, label, category, confidence")
    fid = entry.get("id")
    if not isinstance(fid, int) or isinstance(fid, bool) or not 0 <= fid < SAE_N_FEATURES:
        raise LabelsError(f"{where}: id must be an integer in [0, {SAE_N_FEATURES - 1}], got {fid!r}")
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip():
        raise LabelsError(f"{where} (feature {fid}): label must be a non-empty string")
    category = entry.get("category")
    if category not in CATEGORIES:
        raise LabelsError(f"{where} (feature {fid}): category {category!r} is not one of {', '.join(CATEGORIES)}")
    confidence = entry.get("confidence")
    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) or not 0.0 <= confidence <= 1.0:
        raise LabelsError(f"{where} (feature {fid}): confidence must be a number in [0, 1], got {confidence!r}")
    return FeatureLabel(id=fid, label=label.strip(), category=category, confidence=float(confidence))


def parse_labels(document: object, path: Path | None = None) -> LabelsFile:
    """Validate a labels document (already decoded JSON); LabelsError names the first problem."""
    name = str(path) if path else "labels"
    if not isinstance(document, dict) or document.get("format") != LABELS_FORMAT:
        raise LabelsError(f"{name} is not a sonosteer labels file (expected \"format\": \"{LABELS_FORMAT}\")")
    if document.get("version") != LABELS_VERSION:
        raise LabelsError(f"{name} has labels version {document.get('version')!r}; this sonosteer reads {LABELS_VERSION}")
    blocks_doc = document.get("blocks")
    if not isinstance(blocks_doc, dict):
        raise LabelsError(f"{name}: \"blocks\" must map block names to lists of features")
    blocks: dict[str, dict[int, FeatureLabel]] = {b: {} for b in BLOCK_NAMES}
    for block, entries in blocks_doc.items():
        if block not in BLOCK_NAMES:
            raise LabelsError(f"{name}: unknown block {block!r}; expected one of {', '.join(BLOCK_NAMES)}")
        if not isinstance(entries, list):
            raise LabelsError(f"{name}: block {block} must hold a list of features")
        for i, entry in enumerate(entries):
            label = _parse_entry(entry, f"{name}: {block}[{i}]")
            if label.id in blocks[block]:
                raise LabelsError(f"{name}: block {block} labels feature {label.id} twice")
            blocks[block][label.id] = label
    return LabelsFile(blocks=blocks, source=str(document.get("source", "")), path=path)


def load_labels(path: Path | str) -> LabelsFile:
    """Read and validate a labels file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelsError(f"labels file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelsError(f"labels file {path} is unreadable: {exc}") from exc
    return parse_labels(document, path)


def write_labels(path: Path | str, blocks: dict[str, list[FeatureLabel]], source: str) -> Path:
    """Validate and write a labels file atomically; returns its path."""
    document = {
        "format": LABELS_FORMAT,
        "version": LABELS_VERSION,
        "source": source,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "blocks": {
            block: [
                {"id": f.id, "label": f.label, "category": f.category, "confidence": round(f.confidence, 4)}
                for f in sorted(features, key=lambda f: f.id)
            ]
            for block, features in blocks.items()
        },
    }
    path = Path(path)
    parse_labels(document, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path
