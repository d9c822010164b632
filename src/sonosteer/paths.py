"""Where sonosteer keeps its data: the analysis cache, scenes and labels (overridable by env)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "sonosteer"


def cache_root() -> Path:
    """Root of analysis bundles; `SONOSTEER_CACHE` overrides the user's cache dir."""
    env = os.environ.get("SONOSTEER_CACHE")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(APP_NAME))


def data_root() -> Path:
    """Root of user data (scenes, labels, uploads); `SONOSTEER_DATA` overrides the user's data dir."""
    env = os.environ.get("SONOSTEER_DATA")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME))
