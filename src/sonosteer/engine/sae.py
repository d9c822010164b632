"""The four sdxl-unbox SAEs, reduced to what steering needs: unit feature directions and mean activations.

Format (design.md): per block a folder with `config.json` (n_dirs_local, d_model, k, ...),
`state_dict.pth` ({"state_dict": {"decoder.weight": (d_model, n_features), ...}}) and `mean.pt`
((n_features,) float32, saved from cuda:0, so loaded with map_location). Feature i's direction is
column i of the decoder, renormalised to unit length here; its mean activation (where it fires)
is the unit of steering strength and is copied to a CPU array once, so the per-frame path never
syncs with the GPU. A feature whose mean is 0 (or not finite), or whose column is 0, is dead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sonosteer.blocks import BLOCKS, Block
from sonosteer.engine.errors import SaeMismatchError, WeightsCorruptError, WeightsMissingError
from sonosteer.engine.weights import SAE_FILES, SAE_SUBFOLDERS

_MIN_COLUMN_NORM = 1e-8


@dataclass(frozen=True)
class BlockSae:
    """Steering data of one block's SAE.

    directions: (n_features, d_model) float32 on CPU, every live row unit-norm, dead rows zero.
    mean_activation: (n_features,) float64 on CPU, 0.0 for dead features.
    folder: where it was loaded from (None when built in memory, as the benchmark does).
    """

    block: Block
    folder: Path | None
    directions: torch.Tensor
    mean_activation: np.ndarray
    dead_ids: frozenset[int]
    k: int

    @property
    def n_features(self) -> int:
        return int(self.directions.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.directions.shape[1])


def find_sae_folder(root: Path, block: Block) -> Path:
    """The folder holding `block`'s SAE files: `<root>/<sae_folder>` or its `final/` subfolder."""
    for sub in SAE_SUBFOLDERS:
        folder = Path(root, block.sae_folder, sub)
        if all((folder / name).is_file() for name in SAE_FILES):
            return folder
    raise WeightsMissingError(
        [f"SAE for block {block.short_name}: {', '.join(SAE_FILES)} not found in {Path(root, block.sae_folder)}"]
    )


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
        n, d = int(config["n_dirs_local"]), int(config["d_model"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsCorruptError(f"{path}: not a valid SAE config ({exc}); re-download it") from exc
    if n <= 0 or d <= 0:
        raise WeightsCorruptError(f"{path}: n_dirs_local and d_model must be positive, got {n} and {d}")
    return config


def _load_tensor_file(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a damaged file
        raise WeightsCorruptError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); re-download it") from exc


def load_block_sae(root: Path, block: Block) -> BlockSae:
    """Load, check and renormalise one block's SAE from the checkpoint root `root`."""
    folder = find_sae_folder(root, block)
    config = _read_config(folder / "config.json")
    n_features, d_model = int(config["n_dirs_local"]), int(config["d_model"])

    payload = _load_tensor_file(folder / "state_dict.pth")
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    decoder = state.get("decoder.weight") if isinstance(state, dict) else None
    if not isinstance(decoder, torch.Tensor):
        raise WeightsCorruptError(f"{folder / 'state_dict.pth'}: no 'decoder.weight' tensor in its state_dict")
    if tuple(decoder.shape) != (d_model, n_features):
        raise SaeMismatchError(
            f"{folder / 'state_dict.pth'}: decoder.weight is {tuple(decoder.shape)}, but config.json says "
            f"d_model={d_model}, n_dirs_local={n_features} (expected ({d_model}, {n_features}))"
        )

    mean = _load_tensor_file(folder / "mean.pt")
    if not isinstance(mean, torch.Tensor) or mean.numel() != n_features:
        got = tuple(mean.shape) if isinstance(mean, torch.Tensor) else type(mean).__name__
        raise SaeMismatchError(f"{folder / 'mean.pt'}: expected {n_features} mean activations, got {got}")
    mean_activation = mean.detach().reshape(-1).to(torch.float64).numpy().copy()

    columns = decoder.detach().to(torch.float32).T.contiguous()  # (n_features, d_model)
    norms = columns.norm(dim=1)
    bad_column = ~torch.isfinite(norms) | (norms < _MIN_COLUMN_NORM)
    directions = torch.where(bad_column[:, None], 0.0, columns / norms.clamp_min(_MIN_COLUMN_NORM)[:, None])
    dead = ~np.isfinite(mean_activation) | (mean_activation <= 0.0) | bad_column.numpy()
    mean_activation[dead] = 0.0
    directions[torch.from_numpy(dead)] = 0.0
    return BlockSae(
        block=block,
        folder=folder,
        directions=directions,
        mean_activation=mean_activation,
        dead_ids=frozenset(int(i) for i in np.flatnonzero(dead)),
        k=int(config.get("k", 0)),
    )


def load_saes(root: Path) -> dict[str, BlockSae]:
    """All four blocks' SAEs, keyed by block short name."""
    return {block.short_name: load_block_sae(Path(root), block) for block in BLOCKS}
