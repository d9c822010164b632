"""The starter scene: what a new track plays with before the performer touches anything.

Each block is linked, in auto mode, to the stem whose character fits its role (drums move the
abstract structure, bass the composition, the lead the details, the rest the textures), so the
instrument reacts to the music from the first second. Stems a track lacks are skipped.
"""

from __future__ import annotations

from sonosteer.bridge.settings import Scene, apply_update

STARTER_LINKS: dict[str, tuple[tuple[str, ...], str, int]] = {
    # block: (stems to try in order, rank, SAE feature)
    "down.2.1": (("bass", "global"), "R2", 2301),
    "mid.0": (("drums", "drums_percussive", "global"), "R1", 1024),
    "up.0.0": (("vocals", "other_mid"), "R2", 512),
    "up.0.1": (("other", "other_high"), "R3", 3000),
}
STARTER_PROMPTS = (
    "a luminous abstract landscape of flowing light, vivid colour, highly detailed",
    "a deep cosmic nebula with swirling clouds of glowing dust",
)


def starter_scene(stems: list[str]) -> Scene:
    """A scene linking each block to the first of its preferred stems that `stems` contains."""
    update: dict = {"name": "starter", "blocks": {}, "prompt": {"a": STARTER_PROMPTS[0], "b": STARTER_PROMPTS[1]}}
    for block, (candidates, rank, feature) in STARTER_LINKS.items():
        stem = next((s for s in candidates if s in stems), None)
        if stem is not None:
            update["blocks"][block] = {"link_target": stem, "rank": rank, "feature_id": feature, "mode": "auto"}
    return apply_update(Scene(), update)
