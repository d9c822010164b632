"""Locating weights: local folders, the Hugging Face cache layout offline, and one clear error for what is missing."""

from __future__ import annotations

import shutil

import huggingface_hub.constants
import pytest

from sonosteer.engine.errors import WeightsMissingError
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.weights import decoder_part, download_command, locate, model_part, resolve_weights

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _settings(tiny_weights, **overrides) -> EngineSettings:
    paths = {"model": str(tiny_weights.model), "decoder": str(tiny_weights.decoder), "saes": str(tiny_weights.saes)}
    return EngineSettings(**{**paths, **overrides})


def _as_hub_cache(cache, repo_id: str, folder) -> None:
    """Lay `folder` out as huggingface_hub's cache does: models--owner--name/{refs/main, snapshots/<commit>/}."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / FAKE_COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(FAKE_COMMIT)


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_local_folders_resolve(tiny_weights):
    resolved = resolve_weights(_settings(tiny_weights))
    assert (resolved.model_dir, resolved.decoder_dir, resolved.saes_dir) == (
        tiny_weights.model,
        tiny_weights.decoder,
        tiny_weights.saes,
    )


def test_hub_ids_resolve_from_the_cache_offline(tiny_weights, empty_hub_cache):
    _as_hub_cache(empty_hub_cache, "acme/tiny-sdxl", tiny_weights.model)
    _as_hub_cache(empty_hub_cache, "acme/tiny-taesd", tiny_weights.decoder)
    _as_hub_cache(empty_hub_cache, "acme/tiny-saes", tiny_weights.saes)
    settings = EngineSettings(model="acme/tiny-sdxl", decoder="acme/tiny-taesd", saes="acme/tiny-saes")
    resolved = resolve_weights(settings)  # HF_HUB_OFFLINE=1 (conftest): must not touch the network
    assert resolved.model_dir.name == FAKE_COMMIT and resolved.model_dir.parent.parent.name == "models--acme--tiny-sdxl"


def test_everything_missing_is_one_error_with_commands(empty_hub_cache):
    with pytest.raises(WeightsMissingError) as info:
        resolve_weights(EngineSettings())
    message = str(info.value)
    assert len(info.value.missing) == 3
    for repo in ("stabilityai/sdxl-turbo", "madebyollin/taesdxl", "surokpro2/sdxl-saes"):
        assert repo in message
        assert f"hf download {repo}" in message
    assert "HF_HUB_OFFLINE=1" in message
    assert '--include "unet/diffusion_pytorch_model.fp16.safetensors"' in message


def test_half_downloaded_model_names_the_missing_files(tiny_weights, tmp_path):
    model = shutil.copytree(tiny_weights.model, tmp_path / "model")
    (model / "unet" / "diffusion_pytorch_model.fp16.safetensors").unlink()
    (model / "tokenizer_2" / "merges.txt").unlink()
    with pytest.raises(WeightsMissingError) as info:
        resolve_weights(_settings(tiny_weights, model=str(model)))
    assert len(info.value.missing) == 1
    assert "unet/diffusion_pytorch_model.fp16.safetensors, tokenizer_2/merges.txt" in str(info.value)


def test_plain_weights_satisfy_a_variant_request(tiny_weights, tmp_path):
    decoder = shutil.copytree(tiny_weights.decoder, tmp_path / "decoder")
    assert locate(decoder_part(str(decoder))).ok
    model = shutil.copytree(tiny_weights.model, tmp_path / "model")
    unet = model / "unet"
    (unet / "diffusion_pytorch_model.fp16.safetensors").rename(unet / "diffusion_pytorch_model.safetensors")
    assert locate(model_part(str(model), "fp16")).ok


def test_missing_folder_and_hub_id_detection(tmp_path):
    status = locate(decoder_part(str(tmp_path / "nowhere")))
    assert not status.ok and "does not exist" in status.describe_missing()
    assert decoder_part("madebyollin/taesdxl").is_hub_id
    assert not decoder_part("./taesdxl").is_hub_id and not decoder_part(str(tmp_path)).is_hub_id


def test_download_command_uses_the_installed_cli():
    command = download_command("madebyollin/taesdxl", ("config.json", "diffusion_pytorch_model.safetensors"))
    assert command.startswith(("hf download madebyollin/taesdxl", "huggingface-cli download madebyollin/taesdxl"))
    assert '"config.json"' in command and '"diffusion_pytorch_model.safetensors"' in command
