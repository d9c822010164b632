"""Renderer choice: SDXL-Turbo when CUDA and weights allow it, else the preview with a plain-words reason."""

from __future__ import annotations

import pytest
from engine_fixtures import tiny_settings

from sonosteer.engine.errors import WeightsMissingError
from sonosteer.engine.factory import create_renderer, decide_kind
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.steered_engine import SteeredEngine

GPU = "CUDA GPU NVIDIA H100"


def test_auto_without_cuda_is_the_preview_and_says_why():
    decision = decide_kind("auto", cuda_available=False, cuda_reason="no CUDA GPU: torch 2.13.0+cpu is a CPU-only build", missing=[], can_download=True)
    assert decision.kind == "preview"
    assert decision.reason == "preview renderer: no CUDA GPU: torch 2.13.0+cpu is a CPU-only build"


def test_auto_with_cuda_and_weights_is_sdxl_turbo():
    decision = decide_kind("auto", cuda_available=True, cuda_reason=GPU, missing=[], can_download=False)
    assert (decision.kind, decision.reason) == ("sdxl-turbo", f"SDXL-Turbo on {GPU}")


def test_auto_with_cuda_downloads_missing_weights_when_it_may():
    decision = decide_kind("auto", cuda_available=True, cuda_reason=GPU, missing=["SAEs"], can_download=True)
    assert decision.kind == "sdxl-turbo" and "downloading the missing weights" in decision.reason


def test_auto_offline_with_missing_weights_is_the_preview(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    decision = decide_kind(
        "auto", cuda_available=True, cuda_reason=GPU, missing=["TAESDXL decoder (madebyollin/taesdxl)"], can_download=False
    )
    assert decision.kind == "preview"
    assert "TAESDXL decoder (madebyollin/taesdxl)" in decision.reason and "HF_HUB_OFFLINE=1" in decision.reason
    assert "sonosteer doctor" in decision.reason


def test_explicit_kinds_and_unknown_kind():
    assert decide_kind("preview", cuda_available=True, cuda_reason=GPU, missing=[], can_download=True).kind == "preview"
    cpu = decide_kind("sdxl-turbo", cuda_available=False, cuda_reason="no CUDA GPU", missing=["x"], can_download=False)
    assert cpu.kind == "sdxl-turbo" and "seconds per frame" in cpu.reason
    with pytest.raises(ValueError, match="unknown renderer 'fast'; expected one of auto, sdxl-turbo, preview"):
        decide_kind("fast", cuda_available=True, cuda_reason=GPU, missing=[], can_download=True)


def test_create_sdxl_turbo_builds_the_engine_from_disk(tiny_weights):
    choice = create_renderer("sdxl-turbo", tiny_settings(tiny_weights, height=64, width=64))
    assert isinstance(choice.renderer, SteeredEngine) and "as requested" in choice.reason
    assert choice.renderer.render().shape == (64, 64, 3)


def test_create_sdxl_turbo_without_weights_raises_one_clear_error(tmp_path):
    settings = EngineSettings(model=str(tmp_path / "m"), decoder=str(tmp_path / "d"), saes=str(tmp_path / "s"), device="cpu")
    with pytest.raises(WeightsMissingError) as info:
        create_renderer("sdxl-turbo", settings)
    assert len(info.value.missing) == 3
