"""`dynasor_reasoner`: the room's default reasoner, a narrower tiny_reasoner that trains in
minutes on a 2-core CPU (issue 24: the first `celine run task=dynasor` trained tiny_reasoner,
then tiny_reasoner_long, ~35 min before the first measurement).

Same corpus, tokenizer settings, problems and training loop as `tiny_reasoner` (it is a
`TinyLlamaSpec` with architecture and recipe overrides, cached under its own name so it never
collides with the shared tiny_reasoner); the README reports how its accuracy grows with the
number of sampled chains and with chain length, the precondition of every Dynasor claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARCH_KEYS = ("hidden", "layers", "heads", "kv_heads", "intermediate")
RECIPE_KEYS = ("steps", "batch_size", "seq_len", "lr", "warmup")


def spec_of(cfg: Any):
    from celine.llm.cache import TinyLlamaSpec

    overrides = {k: getattr(cfg, k) for k in ARCH_KEYS + RECIPE_KEYS}
    # evaluate a few times per run (cheap), never the reasoner preset's every-250 steps default
    overrides.update(
        eval_interval=max(1, cfg.steps // 4), checkpoint_interval=max(1, cfg.steps // 4)
    )
    return TinyLlamaSpec(
        name="dynasor_reasoner",
        corpus="reasoning",
        size="default",
        seed=cfg.seed,
        overrides=overrides,
    )


def dynasor_reasoner(cfg: Any, ctx: Any):
    """The cached dynasor reasoner, trained first when absent (saying how long up front)."""
    from celine.llm.builders import LanguageModel, append_history, cache_root
    from celine.llm.cache import checkpoint_path, get_or_train, load_trained, read_meta
    from celine.llm.tiny_llama import arch_params
    from celine.llm.train import is_complete

    spec = spec_of(cfg)
    root = cache_root(cfg, ctx)
    path = checkpoint_path(spec, root)
    cached = is_complete(path)
    if not cached:
        p = spec.preset()
        tokens = p.recipe.steps * p.recipe.batch_size * p.recipe.seq_len
        ctx.log.info(
            "[dynasor] training the dynasor reasoner first (%.2fM params, %d steps = %.1fM "
            "tokens): about %.0f min on an idle 2-core CPU, %.0f min on a loaded one (measured, "
            "conf/model/dynasor_reasoner.yaml); cached under %s for later runs",
            arch_params(p.arch) / 1e6,
            p.recipe.steps,
            tokens / 1e6,
            cfg.est_minutes_idle,
            cfg.est_minutes_loaded,
            path.name,
        )

    def on_log(step: int, metrics: dict[str, float]) -> None:
        append_history(path, step, metrics)
        ctx.log_metrics(metrics, step=step)

    get_or_train(
        spec,
        root,
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
        corpus="reasoning",
        seq_len=spec.preset().recipe.seq_len,
        seed=cfg.seed,
        trained_now=not cached,
        meta={**read_meta(path), "key": path.name},
    )
