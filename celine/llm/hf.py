"""Load any local Hugging Face causal LM checkpoint, offline.

Nothing is fetched: `local_files_only=True` everywhere, and the path is checked first
so a typo fails with the path in the message instead of a hub lookup error.
"""

from __future__ import annotations

import json
from pathlib import Path

from celine.errors import ConfigError


def _dtype(dtype):
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "auto": "auto",
    }
    if dtype not in names:
        raise ValueError(
            f"dtype {dtype!r} is unknown; allowed: {', '.join(names)} or a torch.dtype"
        )
    return names[dtype]


def check_causal_lm_dir(path: str | Path) -> Path:
    """Fail early, naming the path, unless it is a folder with a causal-LM config.json."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"model.path {str(p)!r} does not exist; expected a local Hugging Face checkpoint folder"
        )
    if not p.is_dir():
        raise NotADirectoryError(
            f"model.path {str(p)!r} is not a folder; expected a Hugging Face checkpoint folder"
        )
    if not (p / "config.json").is_file():
        raise FileNotFoundError(
            f"model.path {str(p)!r} has no config.json; expected a Hugging Face checkpoint folder"
        )
    try:
        config = AutoConfig.from_pretrained(str(p), local_files_only=True)
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"model.path {str(p)!r}: config.json could not be read as a transformers config ({e})"
        ) from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ConfigError(
            "model.path",
            str(p),
            f"expected a causal LM checkpoint; it holds a {config.model_type!r} model "
            f"(architectures: {getattr(config, 'architectures', None)})",
        )
    return p


def load_local_causal_lm(
    path: str | Path, device: str = "cpu", dtype="float32", require_tokenizer: bool = True
):
    """(model, tokenizer) from a local checkpoint folder; the model is in eval mode on
    `device` with `dtype`; the tokenizer pads on the left and has a pad token (eos if
    the checkpoint defines none), as batched generation needs. `require_tokenizer=False`
    accepts a checkpoint without tokenizer files (tokenizer None), for callers whose
    prompts are token ids."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor loading bars drown the run's own log
    p = check_causal_lm_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as e:
        if require_tokenizer:
            raise FileNotFoundError(
                f"model.path {str(p)!r}: no usable tokenizer files ({e})"
            ) from None
        tokenizer = None
    if tokenizer is not None:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=_dtype(dtype))
    model.to(device)
    model.eval()
    return model, tokenizer
