"""SAE checkpoints in the sdxl-unbox format: renormalised directions, CPU means, dead features, bad files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from engine_fixtures import DEAD_FEATURE, TINY_N_FEATURES, save_as_if_from_cuda, write_block_sae

from sonosteer.blocks import BLOCKS, block_by_name
from sonosteer.engine.errors import SaeMismatchError, WeightsCorruptError, WeightsMissingError
from sonosteer.engine.sae import load_block_sae, load_saes


@pytest.fixture
def sae_root(tiny_weights, tmp_path):
    """A private copy of the tiny SAE checkpoints that a test may damage."""
    return shutil.copytree(tiny_weights.saes, tmp_path / "saes")


def test_mean_files_are_saved_from_cuda_and_load_on_cpu(tiny_weights):
    folder = tiny_weights.saes / BLOCKS[0].sae_folder
    if not torch.cuda.is_available():  # the fixture is faithful: a plain load needs the GPU it was saved from
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(folder / "mean.pt", weights_only=True)
    saes = load_saes(tiny_weights.saes)
    assert set(saes) == {b.short_name for b in BLOCKS}


def test_directions_are_unit_decoder_columns(tiny_weights):
    block = block_by_name("mid.0")
    sae = load_block_sae(tiny_weights.saes, block)
    raw = torch.load(tiny_weights.saes / block.sae_folder / "state_dict.pth", weights_only=True)["state_dict"]
    columns = raw["decoder.weight"]  # (d_model, n_features)
    assert not torch.allclose(columns.norm(dim=0), torch.ones(TINY_N_FEATURES), atol=0.05), "fixture columns must not be unit"
    live = [i for i in range(TINY_N_FEATURES) if i != DEAD_FEATURE["mid.0"]]
    expected = columns[:, live] / columns[:, live].norm(dim=0)
    torch.testing.assert_close(sae.directions[live], expected.T)
    torch.testing.assert_close(sae.directions[live].norm(dim=1), torch.ones(len(live)))


def test_means_are_cpu_floats_and_dead_features_flagged(tiny_weights):
    for block in BLOCKS:
        sae = load_block_sae(tiny_weights.saes, block)
        raw = torch.load(tiny_weights.saes / block.sae_folder / "mean.pt", map_location="cpu", weights_only=True)
        assert isinstance(sae.mean_activation, np.ndarray) and sae.mean_activation.dtype == np.float64
        np.testing.assert_allclose(sae.mean_activation, raw.double().numpy())
        assert sae.dead_ids == {DEAD_FEATURE[block.short_name]}
        assert torch.count_nonzero(sae.directions[DEAD_FEATURE[block.short_name]]) == 0


def test_nan_mean_is_dead(sae_root):
    block = block_by_name("up.0.1")
    path = sae_root / block.sae_folder / "mean.pt"
    mean = torch.load(path, map_location="cpu", weights_only=True)
    mean[20] = float("nan")
    save_as_if_from_cuda(mean, path)
    sae = load_block_sae(sae_root, block)
    assert sae.dead_ids == {DEAD_FEATURE["up.0.1"], 20}
    assert sae.mean_activation[20] == 0.0


def test_final_subfolder_layout_loads(sae_root):
    block = block_by_name("down.2.1")
    folder = sae_root / block.sae_folder
    (folder / "final").mkdir()
    for name in ("config.json", "state_dict.pth", "mean.pt", "std.pt"):
        (folder / name).rename(folder / "final" / name)
    assert load_block_sae(sae_root, block).folder == folder / "final"


def test_decoder_width_must_match_config(sae_root):
    block = block_by_name("up.0.0")
    folder = sae_root / block.sae_folder
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "d_model": 1280}))
    with pytest.raises(SaeMismatchError, match=r"d_model=1280.*expected \(1280, 48\)"):
        load_block_sae(sae_root, block)


def test_mean_length_must_match_features(sae_root):
    block = block_by_name("up.0.0")
    save_as_if_from_cuda(torch.ones(5), sae_root / block.sae_folder / "mean.pt")
    with pytest.raises(SaeMismatchError, match="expected 48 mean activations"):
        load_block_sae(sae_root, block)


def test_corrupt_state_dict_names_the_file(sae_root):
    block = block_by_name("mid.0")
    path = sae_root / block.sae_folder / "state_dict.pth"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsCorruptError, match="state_dict.pth.*re-download"):
        load_block_sae(sae_root, block)


def test_missing_file_names_the_block(sae_root):
    block = block_by_name("mid.0")
    (sae_root / block.sae_folder / "mean.pt").unlink()
    with pytest.raises(WeightsMissingError, match="SAE for block mid.0"):
        load_saes(sae_root)


def test_write_block_sae_round_trip(tmp_path):
    write_block_sae(tmp_path / BLOCKS[0].sae_folder, d_model=8, n_features=4, dead=0, seed=3)
    sae = load_block_sae(tmp_path, BLOCKS[0])
    assert (sae.n_features, sae.d_model, sae.k) == (4, 8, 4)
