"""Parsing client text messages: JSON envelope and per-type fields, checked before anything is applied.

Every refusal is a ProtocolError with the code of docs/protocol.md; nothing here touches state.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sonosteer.blocks import MASK_SIZE
from sonosteer.labels.catalog import resolve_block
from sonosteer.serve.protocol import (
    CLIENT_MESSAGE_TYPES,
    MAX_TEXT_MESSAGE_BYTES,
    ProtocolError,
)

MAX_CHANGES = 256
MAX_PROMPT_CHARS = 2000


def parse_message(text: str) -> dict[str, Any]:
    """Decode and check one client message; returns the JSON object with `type` known."""
    if len(text) > MAX_TEXT_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message of {len(text)} characters exceeds {MAX_TEXT_MESSAGE_BYTES}")
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("malformed", f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed", f"a message must be a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("malformed", "a message needs a string field 'type'")
    if kind not in CLIENT_MESSAGE_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}; known: {', '.join(CLIENT_MESSAGE_TYPES)}")
    request_id = message.get("id")
    if request_id is not None and (
        isinstance(request_id, bool) or not isinstance(request_id, (str, int)) or len(str(request_id)) > 64
    ):
        raise ProtocolError("malformed", "id must be a string or integer of at most 64 characters")
    return message


def request_id(message: Any) -> Any:
    """The message's `id` if it is a valid one (for error replies to otherwise bad messages)."""
    if isinstance(message, dict):
        rid = message.get("id")
        if isinstance(rid, (str, int)) and not isinstance(rid, bool) and len(str(rid)) <= 64:
            return rid
    return None


def require(message: dict[str, Any], key: str, kinds: type | tuple[type, ...], what: str) -> Any:
    """message[key], checked to be of `kinds` (bool is never a number); ProtocolError otherwise."""
    if key not in message:
        raise ProtocolError("malformed", f"{message['type']} needs '{key}' ({what})")
    return check_type(message[key], kinds, key, what)


def optional(message: dict[str, Any], key: str, kinds: type | tuple[type, ...], what: str) -> Any:
    value = message.get(key)
    return None if value is None else check_type(value, kinds, key, what)


def check_type(value: Any, kinds: type | tuple[type, ...], key: str, what: str) -> Any:
    kinds_t = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in kinds_t:
        raise ProtocolError("malformed", f"'{key}' must be {what}, got {value!r}")
    if not isinstance(value, kinds_t):
        raise ProtocolError("malformed", f"'{key}' must be {what}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError("out_of_range", f"'{key}' must be finite, got {value}")
    return value


def settings_updates(message: dict[str, Any]) -> list[dict[str, Any] | tuple[str, Any]]:
    """The updates of a `set` message: exactly one of path+value, changes, update."""
    forms = [k for k in ("path", "changes", "update") if k in message]
    if len(forms) != 1:
        raise ProtocolError("malformed", "set needs exactly one of 'path' (with 'value'), 'changes' or 'update'")
    if forms[0] == "path":
        path = require(message, "path", str, "a JSON pointer such as /blocks/mid.0/feature_id")
        if "value" not in message:
            raise ProtocolError("malformed", "set with 'path' needs 'value'")
        return [(path, message["value"])]
    if forms[0] == "update":
        return [require(message, "update", dict, "an object merged into the settings")]
    changes = require(message, "changes", list, "a list of {path, value}")
    if not changes or len(changes) > MAX_CHANGES:
        raise ProtocolError("malformed", f"'changes' must hold 1 to {MAX_CHANGES} changes")
    out: list[dict[str, Any] | tuple[str, Any]] = []
    for i, change in enumerate(changes):
        if not isinstance(change, dict) or not isinstance(change.get("path"), str) or "value" not in change:
            raise ProtocolError("malformed", f"changes[{i}] must be an object with 'path' (string) and 'value'")
        out.append((change["path"], change["value"]))
    return out


def block_name(block: Any) -> str:
    """A block's short name from an index 0..3 or a short name; ProtocolError otherwise."""
    if isinstance(block, bool) or not isinstance(block, (int, str)):
        raise ProtocolError("invalid_value", "block must be an index 0..3 or a block name")
    try:
        return resolve_block(block)
    except KeyError as exc:
        raise ProtocolError("out_of_range" if isinstance(block, int) else "invalid_value", exc.args[0]) from None


def check_mask_rows(mask: Any) -> None:
    """ProtocolError unless `mask` is 16 rows of 16 numbers in [0, 1]."""
    if not isinstance(mask, list) or len(mask) != MASK_SIZE or any(not isinstance(r, list) or len(r) != MASK_SIZE for r in mask):
        raise ProtocolError("invalid_value", f"mask must be {MASK_SIZE} rows of {MASK_SIZE} numbers")
    for r, row in enumerate(mask):
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ProtocolError("invalid_value", f"mask[{r}][{c}] must be a number, got {v!r}")
            if not 0.0 <= v <= 1.0:
                raise ProtocolError("out_of_range", f"mask[{r}][{c}] must be in [0, 1], got {v}")


def mask_fields(message: dict[str, Any]) -> dict[str, Any]:
    """block (as its name) plus exactly one of mask / preset / cells, each checked."""
    if "block" not in message:
        raise ProtocolError("malformed", "mask needs 'block' (0..3 or a block name)")
    forms = [k for k in ("mask", "preset", "cells") if k in message]
    if len(forms) != 1:
        raise ProtocolError("malformed", "mask needs exactly one of 'mask', 'preset' or 'cells'")
    out: dict[str, Any] = {"block": block_name(message["block"]), "mask": None, "preset": None, "cells": None}
    if forms[0] == "preset":
        preset = require(message, "preset", str, "floor, ceiling, center, fill or clear")
        if preset not in ("floor", "ceiling", "center", "fill", "clear"):
            raise ProtocolError("invalid_value", f"preset must be floor, ceiling, center, fill or clear, got {preset[:40]!r}")
        out["preset"] = preset
    elif forms[0] == "mask":
        check_mask_rows(message["mask"])
        out["mask"] = message["mask"]
    else:
        cells = require(message, "cells", list, "a list of [row, col, value]")
        if len(cells) > 256:
            raise ProtocolError("malformed", "'cells' holds at most 256 cells")
        checked = []
        for i, cell in enumerate(cells):
            if not isinstance(cell, list) or len(cell) != 3:
                raise ProtocolError("malformed", f"cells[{i}] must be [row, col, value]")
            row, col, value = cell
            if any(isinstance(v, bool) or not isinstance(v, int) for v in (row, col)):
                raise ProtocolError("malformed", f"cells[{i}]: row and col must be integers")
            if not (0 <= row < MASK_SIZE and 0 <= col < MASK_SIZE):
                raise ProtocolError("out_of_range", f"cells[{i}]: row and col must be in [0, {MASK_SIZE - 1}], got {row}, {col}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ProtocolError("malformed", f"cells[{i}]: value must be a number")
            if not 0.0 <= value <= 1.0:
                raise ProtocolError("out_of_range", f"cells[{i}]: value must be in [0, 1], got {value}")
            checked.append((row, col, float(value)))
        out["cells"] = checked
    return out


def prompt_field(message: dict[str, Any]) -> str:
    prompt = require(message, "prompt", str, "the prompt text")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ProtocolError("out_of_range", f"prompt must be at most {MAX_PROMPT_CHARS} characters")
    return prompt


def number(message: dict[str, Any], key: str, what: str, required: bool = False) -> float | None:
    value = require(message, key, (int, float), what) if required else optional(message, key, (int, float), what)
    return None if value is None else float(value)
