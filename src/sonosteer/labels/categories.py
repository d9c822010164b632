"""The 27 feature categories of the labels and their colours in the feature picker.

The published system shows "27 category colors (scene, character, texture, mood, color, spatial,
style, ...)"; this is our list. Colours are distinct hues (and two greys kept for `other` and for
unlabeled features) so a picker can tell categories apart at a glance.
"""

from __future__ import annotations

CATEGORY_COLORS: dict[str, str] = {
    "scene": "#e6194b",
    "character": "#f58231",
    "face": "#ffd8b1",
    "body": "#fabed4",
    "clothing": "#dcbeff",
    "animal": "#9a6324",
    "plant": "#3cb44b",
    "nature": "#aaffc3",
    "landscape": "#469990",
    "architecture": "#808000",
    "object": "#ffe119",
    "food": "#ff9f1c",
    "vehicle": "#4363d8",
    "text": "#000075",
    "texture": "#911eb4",
    "pattern": "#f032e6",
    "material": "#bfef45",
    "color": "#42d4f4",
    "lighting": "#fffac8",
    "mood": "#800000",
    "style": "#e377c2",
    "medium": "#17becf",
    "composition": "#bcbd22",
    "spatial": "#1f77b4",
    "shape": "#ff7f0e",
    "abstract": "#9467bd",
    "other": "#a9a9a9",
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_COLORS)
UNLABELED_COLOR = "#808080"
