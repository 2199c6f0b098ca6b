"""Loading checkpoints without unpickling: a `.pt` file is a pickle, and a pickle can run any
code when loaded, so a user's file (or one found in a shared cache) is read with
`torch.load(weights_only=True)` (tensors, dicts, lists, numbers only) or as safetensors."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from celine.errors import ConfigError


def load_checkpoint(path: str | Path, key: str, map_location: Any = "cpu") -> Any:
    """The tensors of `path` (a state dict, possibly nested in plain dicts and lists).

    `key` is the config key the path came from, named in the error when the file holds pickled
    objects other than tensors (which are refused, never run)."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[-1][:200] if str(err).strip() else "not tensors"
        raise ConfigError(
            key,
            str(path),
            "expected a checkpoint of tensors (a state dict) or a .safetensors file",
            f"refused without running it: {reason}",
        ) from None
