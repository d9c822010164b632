"""Saved scenes: the bridge's scene JSON files under `<data root>/scenes/`, written atomically.

Names are checked before they touch the disk (letters, digits, space, `_`, `-`, `.`; 1-64
characters; not starting with `.`), so a name can never reach outside the scenes folder.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

from sonosteer.bridge.settings import Scene, load_scene, save_scene

SCENE_NAME_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9 _.\-]{0,63}$")


class SceneNameError(ValueError):
    """A scene name that is not allowed."""


class SceneStore:
    """List, save, load and delete scenes by name."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not SCENE_NAME_RE.match(name) or name.strip() != name:
            raise SceneNameError(
                "scene names are 1-64 letters, digits, spaces, '_', '-' or '.', not starting with '.' or a space"
            )
        return self.root / f"{name}.json"

    def list(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            if SCENE_NAME_RE.match(path.stem):
                saved = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC)
                out.append({"name": path.stem, "saved_utc": saved.isoformat(timespec="seconds")})
        return out

    def save(self, name: str, scene: Scene) -> dict[str, Any]:
        path = self.path(name)
        save_scene(scene.model_copy(update={"name": name}), path)
        saved = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC)
        return {"name": name, "saved_utc": saved.isoformat(timespec="seconds")}

    def load(self, name: str) -> Scene:
        """The scene; FileNotFoundError if there is none, SettingsError if the file is invalid."""
        path = self.path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no scene named {name!r}")
        return load_scene(path)

    def delete(self, name: str) -> None:
        path = self.path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no scene named {name!r}")
        path.unlink()

