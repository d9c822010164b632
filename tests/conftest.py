"""Shared fixtures: paths to the real test recordings beside the checkout, isolated cache dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MUSIC_DIR = Path(os.environ.get("SONOSTEER_TEST_MUSIC", REPO_ROOT.parent / "shared" / "testdata" / "music"))


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and data roots, so nothing leaks between tests or to $HOME."""
    root = tmp_path_factory.mktemp("sonosteer-home")
    monkeypatch.setenv("SONOSTEER_CACHE", str(root / "cache"))
    monkeypatch.setenv("SONOSTEER_DATA", str(root / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def music_dir() -> Path:
    if not MUSIC_DIR.is_dir():
        pytest.fail(f"test recordings not found at {MUSIC_DIR}: ../shared must sit beside the checkout")
    return MUSIC_DIR


def run_sonosteer(*args: str, timeout: float = 300, **kwargs) -> "subprocess.CompletedProcess[str]":
    """Run `python -m sonosteer ARGS` from this checkout's sources (not whatever is installed)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-m", "sonosteer", *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Tiny SDXL-Turbo / TAESD / SAE weights in the real on-disk formats (tests/engine_fixtures.py)."""
    from engine_fixtures import write_tiny_weights

    return write_tiny_weights(tmp_path_factory.mktemp("tiny-weights"))
