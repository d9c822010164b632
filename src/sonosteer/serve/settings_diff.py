"""Which settings changed: the leaves that differ between two JSON documents, as JSON pointers."""

from __future__ import annotations

from typing import Any


def escape_pointer_key(key: str) -> str:
    """RFC 6901: '~' -> '~0', '/' -> '~1'."""
    return key.replace("~", "~0").replace("/", "~1")


def leaf_changes(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """[{"path": pointer, "value": new value}] for every leaf that differs; objects recurse,
    lists and scalars are leaves; a key only in `old` becomes value None."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[dict[str, Any]] = []
        for key in list(new.keys()) + [k for k in old.keys() if k not in new]:
            out += leaf_changes(old.get(key), new.get(key), f"{path}/{escape_pointer_key(str(key))}")
        return out
    if old == new and type(old) is type(new):
        return []
    return [{"path": path or "/", "value": new}]
