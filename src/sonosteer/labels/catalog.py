"""The feature catalog the picker browses: every feature of every block, labelled or not, searchable.

Merges a labels file (optional) with what the engine knows (feature count, dead features), so
unlabeled features are listed as such rather than hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sonosteer.blocks import BLOCK_NAMES, BLOCKS, SAE_N_FEATURES
from sonosteer.labels.labels_file import (
    FeatureLabel,
    LabelsFile,
    default_labels_path,
    load_labels,
)

HIGH_CONFIDENCE = 0.7
MEDIUM_CONFIDENCE = 0.4


def confidence_level(confidence: float | None) -> str:
    """`high` (>= 0.7), `medium` (>= 0.4), `low`, or `unlabeled` when there is no label."""
    if confidence is None:
        return "unlabeled"
    if confidence >= HIGH_CONFIDENCE:
        return "high"
    return "medium" if confidence >= MEDIUM_CONFIDENCE else "low"


def resolve_block(block: str | int) -> str:
    """A block's short name from its index (0..3, also as a string) or short name; KeyError otherwise."""
    if isinstance(block, int) or (isinstance(block, str) and block.isdigit()):
        index = int(block)
        if not 0 <= index < len(BLOCKS):
            raise KeyError(f"block index must be 0..{len(BLOCKS) - 1}, got {index}")
        return BLOCK_NAMES[index]
    if block in BLOCK_NAMES:
        return block
    raise KeyError(f"unknown block {block!r}; expected 0..{len(BLOCKS) - 1} or one of {', '.join(BLOCK_NAMES)}")


@dataclass(frozen=True)
class FeatureEntry:
    """One feature as the picker shows it."""

    id: int
    label: str | None
    category: str | None
    confidence: float | None
    dead: bool

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "category": self.category,
            "confidence": self.confidence,
            "confidence_level": confidence_level(self.confidence),
            "dead": self.dead,
        }


@dataclass(frozen=True)
class SearchResult:
    total: int
    features: list[FeatureEntry]


class FeatureCatalog:
    """Per block: all `n_features` features with their labels (if any) and dead flags."""

    def __init__(
        self,
        labels: LabelsFile | None = None,
        n_features: dict[str, int] | None = None,
        dead_ids: dict[str, frozenset[int]] | None = None,
    ):
        self.labels = labels
        self.n_features = {b: (n_features or {}).get(b, SAE_N_FEATURES) for b in BLOCK_NAMES}
        self._entries: dict[str, list[FeatureEntry]] = {}
        self._haystacks: dict[str, list[str]] = {}
        for block in BLOCK_NAMES:
            by_id: dict[int, FeatureLabel] = labels.blocks.get(block, {}) if labels else {}
            dead = (dead_ids or {}).get(block, frozenset())
            entries = []
            for fid in range(self.n_features[block]):
                lab = by_id.get(fid)
                entries.append(
                    FeatureEntry(
                        id=fid,
                        label=lab.label if lab else None,
                        category=lab.category if lab else None,
                        confidence=lab.confidence if lab else None,
                        dead=fid in dead,
                    )
                )
            self._entries[block] = entries
            self._haystacks[block] = [f"{e.label or 'unlabeled'} {e.category or ''}".lower() for e in entries]

    @classmethod
    def from_path(cls, path: Path | None, **kwargs) -> FeatureCatalog:
        """Load labels from `path`, or from the default location when it exists, or go unlabeled."""
        if path is None:
            default = default_labels_path()
            path = default if default.is_file() else None
        return cls(load_labels(path) if path is not None else None, **kwargs)

    @property
    def labels_source(self) -> str | None:
        if self.labels is None:
            return None
        return self.labels.source or (str(self.labels.path) if self.labels.path else "labels file")

    def get(self, block: str | int, feature_id: int) -> FeatureEntry:
        name = resolve_block(block)
        if not 0 <= feature_id < self.n_features[name]:
            raise IndexError(f"feature id must be in [0, {self.n_features[name] - 1}], got {feature_id}")
        return self._entries[name][feature_id]

    def search(
        self,
        block: str | int,
        query: str = "",
        category: str | None = None,
        around: int | None = None,
        offset: int = 0,
        limit: int = 200,
    ) -> SearchResult:
        """Filter by text (every word must occur in label or category) and category; `around` gives the
        `limit` matching features nearest to that id (the neighbourhood view), in id order."""
        name = resolve_block(block)
        entries, hay = self._entries[name], self._haystacks[name]
        words = query.lower().split()
        indices = [
            i
            for i in range(len(entries))
            if (category is None or entries[i].category == category) and all(w in hay[i] for w in words)
        ]
        total = len(indices)
        if around is not None:
            indices = sorted(sorted(indices, key=lambda i: (abs(i - around), i))[:limit])
        else:
            indices = indices[offset : offset + limit]
        return SearchResult(total=total, features=[entries[i] for i in indices])
