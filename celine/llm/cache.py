"""Trained tiny_llama checkpoints, cached by a hash of everything that determines them.

    <cache_root>/<name>-<corpus>-<size>-<hash12>/
        model.safetensors, config.json, generation_config.json   (save_pretrained)
        tokenizer.json, tokenizer_config.json, ...               (the BPE it was trained with)
        celine_meta.json                                          (written last: complete)
        training_state.pt                                         (only while unfinished)

The hash covers: corpus name, absolute root, corpus options and a fingerprint of the
corpus files (relative paths and sizes; the interpreter version for `code`), tokenizer
settings, architecture, recipe, seed, and FORMAT_VERSION (bump it when the generator,
the document format or the loop changes what a spec trains). It does not cover the
device or dtype: a model trained on the GPU is reused on the CPU and vice versa.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from celine.llm import reasoning
from celine.llm.tiny_llama import Preset, apply_overrides, arch_params, get_preset
from celine.llm.tokenizer import TokenizerSettings, default_settings

FORMAT_VERSION = 1


def _as_items(x) -> tuple[tuple[str, Any], ...]:
    if x is None:
        return ()
    if isinstance(x, dict):
        return tuple(sorted(x.items()))
    return tuple(sorted(tuple(kv) for kv in x))


@dataclass(frozen=True)
class TinyLlamaSpec:
    """What to train. `corpus_options` go to load_corpus; `overrides` replace preset
    arch/recipe fields by name (e.g. {"steps": 3000, "layers": 6}); `vocab_size` the
    tokenizer's target vocabulary (default: the preset's, capped at 512 for arithmetic
    corpora). Dicts are accepted and stored as sorted tuples, so specs are hashable."""

    name: str = "tiny_llama"
    corpus: str = "code"
    data_root: str | None = None
    size: str = "smoke"
    seed: int = 0
    corpus_options: Any = ()
    overrides: Any = ()
    vocab_size: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "corpus_options", _as_items(self.corpus_options))
        object.__setattr__(self, "overrides", _as_items(self.overrides))
        from celine.llm.corpora import CORPORA

        if self.corpus not in CORPORA:
            raise ValueError(f"corpus {self.corpus!r} is unknown; allowed: {', '.join(CORPORA)}")
        self.preset()  # validates size and overrides early

    def preset(self) -> Preset:
        return apply_overrides(get_preset(self.size, self.corpus), dict(self.overrides))

    def tokenizer_settings(self) -> TokenizerSettings:
        return default_settings(self.corpus, self.vocab_size or self.preset().arch.vocab_size)

    def resolved(self) -> dict:
        """Everything that determines the trained model, as plain JSON data."""
        from celine.llm.corpora import corpus_fingerprint

        p = self.preset()
        root = str(Path(self.data_root).expanduser().resolve()) if self.data_root else None
        resolved = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "corpus": {
                "name": self.corpus,
                "root": root,
                "options": dict(self.corpus_options),
                "fingerprint": corpus_fingerprint(self.corpus, root),
                "python": sys.version.split()[0]
                if self.corpus == "code" and root is None
                else None,
            },
            "tokenizer": self.tokenizer_settings().to_dict(),
            "size": self.size,
            "arch": asdict(p.arch),
            "recipe": asdict(p.recipe),
            "seed": self.seed,
        }
        if self.corpus == "reasoning":
            resolved["corpus"]["generator"] = reasoning.GENERATOR_VERSION
        return resolved

    def key(self) -> str:
        blob = json.dumps(self.resolved(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def dirname(self) -> str:
        return f"{self.name}-{self.corpus}-{self.size}-{self.key()}"


@contextmanager
def _file_lock(path: Path):
    """One trainer per checkpoint folder (sweeps may ask for the same model at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def checkpoint_path(spec: TinyLlamaSpec, cache_root: str | os.PathLike) -> Path:
    return Path(cache_root) / spec.dirname()


def tokenizer_for(spec: TinyLlamaSpec, tokenizer_dir: Path | None = None):
    """The tokenizer saved in `tokenizer_dir` (a checkpoint, complete or not), else one
    trained now on the spec's training split (deterministic: the same one training makes)."""
    from celine.llm.corpora import load_corpus
    from celine.llm.tokenizer import load_tokenizer, train_tokenizer

    if tokenizer_dir is not None and (Path(tokenizer_dir) / "tokenizer.json").is_file():
        return load_tokenizer(tokenizer_dir)
    splits = load_corpus(spec.corpus, spec.data_root, seed=spec.seed, **dict(spec.corpus_options))
    return train_tokenizer(splits.train, spec.tokenizer_settings())


def prepare_data(
    spec: TinyLlamaSpec,
    tokenizer=None,
    tokenizer_dir: Path | None = None,
    stream_cache: Path | None = None,
):
    """(corpus splits, tokenizer, streams dict train/validation/test as int32 arrays).
    Trains the tokenizer unless one is given or saved in `tokenizer_dir`; token streams
    come from `stream_cache` when an earlier run encoded the same corpus with it."""
    from celine.llm.streams import encoded_splits

    options = dict(spec.corpus_options)
    if tokenizer is None:
        tokenizer = tokenizer_for(spec, tokenizer_dir)
    splits, streams = encoded_splits(
        spec.corpus, spec.data_root, spec.seed, tokenizer, cache_dir=stream_cache, options=options
    )
    return splits, tokenizer, streams


def get_or_train(
    spec: TinyLlamaSpec,
    cache_root: str | os.PathLike,
    device: str = "cpu",
    dtype: str = "float32",
    on_log: Callable[[int, dict], None] | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    stop_after_step: int | None = None,
    stream_cache: str | os.PathLike | None = None,
) -> Path:
    """Path of the complete checkpoint for `spec`, training it first if needed
    (resuming a partial one). dtype "bfloat16"/"bf16" trains with bf16 autocast.
    `stream_cache` keeps the encoded corpus for later runs (see streams.py)."""
    from celine.llm.train import STATE_FILE, is_complete

    path = checkpoint_path(spec, cache_root)
    if is_complete(path):
        return path
    with _file_lock(path.with_name(path.name + ".lock")):
        if is_complete(path):  # another process finished it while we waited
            return path
        from celine.llm.tiny_llama import build_model
        from celine.llm.train import train

        p = spec.preset()
        r = p.recipe
        resuming = (path / STATE_FILE).exists()
        log(
            f"[celine.llm] no trained {spec.name} for corpus={spec.corpus!r} size={spec.size!r} at {path}; "
            + ("resuming its interrupted training" if resuming else "training it first")
            + f": ~{arch_params(p.arch) / 1e6:.1f}M params, {r.steps} steps of {r.batch_size}x{r.seq_len} tokens, "
            f"about {p.est_minutes:g} min on {p.device_note}."
        )
        t0 = time.time()
        path.mkdir(parents=True, exist_ok=True)
        _, tokenizer, streams = prepare_data(spec, tokenizer_dir=path, stream_cache=stream_cache)
        tokenizer.save_pretrained(str(path))  # resuming reuses exactly this tokenizer
        model = build_model(
            p.arch,
            len(tokenizer),
            seed=spec.seed,
            bos_id=tokenizer.bos_token_id,
            eos_id=tokenizer.eos_token_id,
            pad_id=tokenizer.pad_token_id,
        )
        bf16 = True if str(dtype).replace("torch.", "") in ("bfloat16", "bf16") else None
        config = {
            **spec.resolved(),
            "key": spec.key(),
            "data_prep_s": time.time() - t0,
            "train_tokens": int(len(streams["train"])),
            "device": str(device),
            "params": sum(x.numel() for x in {id(q): q for q in model.parameters()}.values()),
        }
        metrics = train(
            model,
            streams["train"],
            streams["validation"],
            r,
            path,
            seed=spec.seed,
            bf16=bf16,
            device=device,
            tokenizer=tokenizer,
            config=config,
            on_log=on_log,
            stop_after_step=stop_after_step,
            progress=progress,
        )
        log(
            f"[celine.llm] trained {path.name} in {_duration(metrics['wall_time_s'])}: "
            f"val/perplexity {metrics.get('val/perplexity', float('nan')):.3f}"
        )
    return path


def read_meta(path: str | os.PathLike) -> dict:
    from celine.llm.train import META_FILE

    return json.loads((Path(path) / META_FILE).read_text())


def load_trained(path: str | os.PathLike, device: str = "cpu", dtype="float32"):
    """(model, tokenizer) of a complete cached checkpoint (eval mode, left padding)."""
    from celine.llm.hf import load_local_causal_lm
    from celine.llm.train import is_complete

    if not is_complete(path):
        raise FileNotFoundError(
            f"{str(path)!r} is not a complete tiny_llama checkpoint (no celine_meta.json marked complete)"
        )
    return load_local_causal_lm(path, device=device, dtype=dtype)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
