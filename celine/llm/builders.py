"""Model builders behind the `model` group: what `ctx.build_model()` returns for
`model=tiny_llama | tiny_reasoner | hf`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.jsonl"


@dataclass
class LanguageModel:
    """A causal LM with its tokenizer, where it came from, and how it was trained."""

    model: Any
    tokenizer: Any
    path: Path
    kind: str  # tiny_llama | tiny_reasoner | hf
    corpus: str | None = None  # the training corpus (tiny models)
    seq_len: int | None = None  # the training context (tiny models)
    seed: int = 0
    trained_now: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def history(self) -> list[dict]:
        return read_history(self.path)


def spec_of(cfg: Any):
    """The cache spec of a TinyLlamaConfig: every field that changes the trained model."""
    from celine.llm.cache import TinyLlamaSpec

    overrides = {
        k: getattr(cfg, k)
        for k in ("steps", "batch_size", "seq_len", "lr")
        if getattr(cfg, k) is not None
    }
    return TinyLlamaSpec(
        # one family: tiny_reasoner is tiny_llama on the reasoning corpus, and shares its cache
        name="tiny_llama",
        corpus=cfg.corpus,
        data_root=cfg.data_root,
        size=cfg.size,
        seed=cfg.seed,
        overrides=overrides,
        vocab_size=cfg.vocab_size,
    )


def cache_root(cfg: Any, ctx: Any) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else Path(ctx.outputs_dir) / "models"


def tiny_llama(cfg: Any, ctx: Any) -> LanguageModel:
    """Load the cached model for this config, training it first (with progress and curves
    logged to the run) when it is absent, and resuming when it was interrupted."""
    from celine.llm.cache import checkpoint_path, get_or_train, load_trained, read_meta
    from celine.llm.train import is_complete

    spec = spec_of(cfg)
    path = checkpoint_path(spec, cache_root(cfg, ctx))
    cached = is_complete(path)

    def on_log(step: int, metrics: dict[str, float]) -> None:
        append_history(path, step, metrics)
        ctx.log_metrics(metrics, step=step)

    get_or_train(
        spec,
        cache_root(cfg, ctx),
        device=ctx.hardware.device,
        dtype=ctx.hardware.dtype,
        on_log=on_log,
        log=ctx.log.info,
        stream_cache=Path(ctx.outputs_dir) / "cache" / "tokens",
    )
    model, tokenizer = load_trained(path, device=ctx.hardware.device, dtype=ctx.hardware.dtype)
    return LanguageModel(
        model=model,
        tokenizer=tokenizer,
        path=path,
        kind=cfg.name,
        corpus=cfg.corpus,
        seq_len=spec.preset().recipe.seq_len,
        seed=cfg.seed,
        trained_now=not cached,
        meta=read_meta(path),
    )


def tiny_llama_tokenizer(cfg: Any, ctx: Any):
    """The tokenizer a tiny model of this config has (or will have), without training it."""
    from celine.llm.cache import checkpoint_path, tokenizer_for

    spec = spec_of(cfg)
    return tokenizer_for(spec, checkpoint_path(spec, cache_root(cfg, ctx)))


def hf(cfg: Any, ctx: Any) -> LanguageModel:
    from celine.llm.hf import load_local_causal_lm

    model, tokenizer = load_local_causal_lm(
        cfg.path, device=ctx.hardware.device, dtype=ctx.hardware.dtype
    )
    return LanguageModel(model=model, tokenizer=tokenizer, path=Path(cfg.path), kind="hf")


# -- training history, kept beside the checkpoint so a cached model still shows its curves -------


def append_history(path: Path, step: int, metrics: dict[str, float]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with open(path / HISTORY_FILE, "a") as f:
        f.write(json.dumps({"step": step, **{k: float(v) for k, v in metrics.items()}}) + "\n")


def read_history(path: Path) -> list[dict]:
    """One dict per (step, metric) logged; a step re-run after a resume keeps its last value."""
    file = Path(path) / HISTORY_FILE
    if not file.is_file():
        return []
    latest: dict[tuple[int, str], float] = {}
    for line in file.read_text().splitlines():
        row = json.loads(line)
        step = row.pop("step")
        for key, value in row.items():
            latest[(step, key)] = value
    return [{"step": s, "metric": k, "value": v} for (s, k), v in sorted(latest.items())]
