"""`tiny_reasoner_long`: the tiny reasoner fine-tuned on long chains of thought (a check that
re-derives every step after the first answer, `celine.llm.reasoning.format_long_solution`).

Why fine-tune rather than train from scratch: the long chains are the plain chains plus a tail,
so the arithmetic is what the cached `tiny_reasoner` already knows; a few hundred steps teach the
tail (a from-scratch run with 1.5x the tokens per step measured ~2 hours on the shared 2-core
machine). Same architecture and tokenizer as the base, so its weights carry over unchanged.

The checkpoint is cached under `<outputs>/models/tiny_reasoner_long-<hash>` where the hash covers
the base model's cache key, the corpus options and the fine-tuning recipe; the base is
`tiny_reasoner` of the same size and seed (loaded from its cache, or trained first).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

FORMAT_VERSION = 2  # 2: the check solves the problem again (restated lines)


def base_spec(cfg: Any):
    """The cache spec of the plain tiny_reasoner this model starts from."""
    from celine.llm.cache import TinyLlamaSpec

    return TinyLlamaSpec(name="tiny_llama", corpus="reasoning", size=cfg.size, seed=cfg.seed)


def finetune_recipe(cfg: Any):
    from celine.llm.tiny_llama import get_preset

    recipe = get_preset(cfg.size, "reasoning").recipe
    return replace(
        recipe,
        steps=cfg.steps,
        seq_len=cfg.seq_len,
        lr=cfg.lr,
        warmup=cfg.warmup,
        eval_interval=max(1, cfg.steps // 4),
        checkpoint_interval=max(1, cfg.steps // 4),
    )


def corpus_options(cfg: Any) -> dict:
    return {"verify": True, "slip_prob": float(cfg.slip_prob)}


def checkpoint_dir(cfg: Any, root: Path) -> Path:
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "base": base_spec(cfg).key(),
            "corpus_options": corpus_options(cfg),
            "recipe": asdict(finetune_recipe(cfg)),
        },
        sort_keys=True,
    )
    return root / f"tiny_reasoner_long-{cfg.size}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def tiny_reasoner_long(cfg: Any, ctx: Any):
    """The cached long-CoT reasoner, fine-tuned first when absent."""
    from celine.llm.builders import LanguageModel, append_history, cache_root
    from celine.llm.cache import checkpoint_path, get_or_train, load_trained, read_meta
    from celine.llm.train import is_complete

    root = cache_root(cfg, ctx)
    path = checkpoint_dir(cfg, root)
    cached = is_complete(path)
    if not cached:
        base = base_spec(cfg)
        get_or_train(
            base,
            root,
            device=ctx.hardware.device,
            dtype=ctx.hardware.dtype,
            log=ctx.log.info,
            stream_cache=Path(ctx.outputs_dir) / "cache" / "tokens",
        )

        def on_log(step: int, metrics: dict[str, float]) -> None:
            append_history(path, step, metrics)
            ctx.log_metrics(metrics, step=step)

        finetune(
            cfg,
            checkpoint_path(base, root),
            path,
            device=ctx.hardware.device,
            stream_cache=Path(ctx.outputs_dir) / "cache" / "tokens",
            on_log=on_log,
            log=ctx.log.info,
        )
    model, tokenizer = load_trained(path, device=ctx.hardware.device, dtype=ctx.hardware.dtype)
    return LanguageModel(
        model=model,
        tokenizer=tokenizer,
        path=path,
        kind=cfg.name,
        corpus="reasoning",
        seq_len=cfg.seq_len,
        seed=cfg.seed,
        trained_now=not cached,
        meta={**read_meta(path), "key": path.name},
    )


def finetune(
    cfg: Any,
    base_path: Path,
    out: Path,
    *,
    device: str = "cpu",
    stream_cache: Path | None = None,
    on_log=None,
    log=print,
    progress: bool = False,
) -> dict:
    """Fine-tune the base checkpoint on the long-chain corpus (resumable, like any tiny_llama
    training: an interrupted run continues from its last checkpoint)."""
    from celine.llm.cache import load_trained
    from celine.llm.streams import encoded_splits
    from celine.llm.train import STATE_FILE, train

    recipe = finetune_recipe(cfg)
    model, tokenizer = load_trained(base_path, device=device)
    resuming = (out / STATE_FILE).exists()
    log(
        f"[dynasor] {'resuming' if resuming else 'fine-tuning'} {base_path.name} on long chains "
        f"(slip_prob={cfg.slip_prob}): {recipe.steps} steps of {recipe.batch_size}x"
        f"{recipe.seq_len} tokens -> {out.name}"
    )
    t0 = time.time()
    _, streams = encoded_splits(
        "reasoning",
        None,
        cfg.seed,
        tokenizer,
        cache_dir=stream_cache,
        options=corpus_options(cfg),
    )
    config = {
        "base": base_path.name,
        "corpus": {"name": "reasoning", "options": corpus_options(cfg)},
        "data_prep_s": time.time() - t0,
        "train_tokens": int(len(streams["train"])),
        "device": str(device),
    }
    metrics = train(
        model,
        streams["train"],
        streams["validation"],
        recipe,
        out,
        seed=cfg.seed,
        device=device,
        tokenizer=tokenizer,
        config=config,
        on_log=on_log,
        progress=progress,
    )
    log(
        f"[dynasor] fine-tuned {out.name} in {metrics['wall_time_s'] / 60:.1f} min: "
        f"val/perplexity {metrics.get('val/perplexity', float('nan')):.3f}"
    )
    return metrics
