"""Tiny Llama models: size presets (architecture + training recipe) and builders.

`PRESETS` is the single source of truth for model sizes: each entry holds the
architecture AND the recipe it was tuned with, plus how long training took where it
was measured. The model is a plain `transformers.LlamaForCausalLM` built from a
`LlamaConfig` with seeded random init, so everything downstream (generate with a KV
cache, save_pretrained, AutoModelForCausalLM) is stock transformers.

Input/output embeddings are tied: for models this small the embedding table is a large
share of the parameters, and tying is what small Llamas do (e.g. Llama 3.2 1B).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class Arch:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab_size: int  # target vocabulary of the BPE tokenizer trained for it
    max_positions: int
    rope_theta: float = 10000.0


@dataclass(frozen=True)
class Recipe:
    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup: int
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    beta1: float = 0.9
    beta2: float = 0.95
    bf16: bool = False  # bf16 autocast (use on GPU; this CPU has no bf16 units)
    eval_interval: int = 200
    eval_tokens: int = 65_536  # validation tokens scored at each eval
    log_interval: int = 10
    checkpoint_interval: int = 200


@dataclass(frozen=True)
class Preset:
    arch: Arch
    recipe: Recipe
    est_minutes: float  # training wall time on its intended device, incl. data prep
    device_note: str = "2-core CPU"
    # Per-corpus changes of arch/recipe fields (plus "est_minutes"), applied before a
    # user's overrides: a token budget right for code is not right for the reasoner.
    corpus_overrides: dict = field(default_factory=dict, compare=False)


PRESETS: dict[str, Preset] = {
    # Seconds on the CPU: for tests and `celine run` smoke checks, not for results.
    "smoke": Preset(
        Arch(
            hidden=64,
            layers=2,
            heads=4,
            kv_heads=2,
            intermediate=176,
            vocab_size=1024,
            max_positions=256,
        ),
        Recipe(
            steps=60,
            batch_size=8,
            seq_len=128,
            lr=3e-3,
            warmup=10,
            eval_interval=30,
            eval_tokens=8192,
            log_interval=10,
            checkpoint_interval=30,
        ),
        est_minutes=0.5,
    ),
    # The CPU default: beats a unigram baseline on code by a wide margin, and is the
    # "tiny_reasoner" (accuracy falls with the number of steps).
    "default": Preset(
        Arch(
            hidden=192,
            layers=4,
            heads=4,
            kv_heads=4,
            intermediate=512,
            vocab_size=4096,
            max_positions=512,
        ),
        Recipe(
            steps=1000,
            batch_size=8,
            seq_len=256,
            lr=2e-3,
            warmup=60,
            eval_interval=250,
            eval_tokens=32_768,
            log_interval=10,
            checkpoint_interval=250,
        ),
        # Code: 8.5 min on an idle 2-core machine (2026-11-26, `celine run task=lm_pretrain`);
        # 23 min with 1 thread on a shared one. Reasoning: 23.5 min with 1 thread, shared.
        est_minutes=10.0,
        # The reasoner's accuracy jumps from ~10% to ~95% between 2M and 6M training
        # tokens (measured on seed 0); 4M tokens leave the difficulty gradient in place.
        corpus_overrides={"reasoning": {"steps": 2000, "est_minutes": 15.0}},
    ),
    # For one H100/H200 (bf16 autocast): ~28M parameters.
    "gpu": Preset(
        Arch(
            hidden=512,
            layers=8,
            heads=8,
            kv_heads=4,
            intermediate=1408,
            vocab_size=8192,
            max_positions=1024,
        ),
        # On the stdlib code corpus (~3M tokens) val perplexity is lowest after ~500 steps
        # (16M tokens, ~5 epochs; 23 vs unigram ~800) and rises after that: more steps only
        # pay off on a bigger local corpus (override `steps`).
        Recipe(
            steps=600,
            batch_size=64,
            seq_len=512,
            lr=1e-3,
            warmup=60,
            bf16=True,
            eval_interval=100,
            eval_tokens=262_144,
            log_interval=20,
            checkpoint_interval=200,
        ),
        est_minutes=1.0,
        device_note="one H100/H200",
    ),
}


def get_preset(size: str, corpus: str | None = None) -> Preset:
    """The preset `size`, with its per-corpus overrides for `corpus` applied."""
    if size not in PRESETS:
        raise ValueError(f"model size {size!r} is unknown; allowed: {', '.join(PRESETS)}")
    preset = PRESETS[size]
    extra = dict(preset.corpus_overrides.get(corpus, {})) if corpus else {}
    if "est_minutes" in extra:
        preset = replace(preset, est_minutes=extra.pop("est_minutes"))
    return apply_overrides(preset, extra) if extra else preset


def apply_overrides(preset: Preset, overrides: dict) -> Preset:
    """Override arch/recipe fields by name (e.g. {"layers": 6, "steps": 3000})."""
    arch_keys = {f.name for f in fields(Arch)}
    recipe_keys = {f.name for f in fields(Recipe)}
    bad = set(overrides) - arch_keys - recipe_keys
    if bad:
        raise ValueError(
            f"unknown model override(s) {sorted(bad)}; allowed: {sorted(arch_keys | recipe_keys)}"
        )
    arch = replace(preset.arch, **{k: v for k, v in overrides.items() if k in arch_keys})
    recipe = replace(preset.recipe, **{k: v for k, v in overrides.items() if k in recipe_keys})
    if arch.hidden % arch.heads or arch.heads % arch.kv_heads:
        raise ValueError(
            f"hidden={arch.hidden} must divide by heads={arch.heads}, and heads by kv_heads={arch.kv_heads}"
        )
    if recipe.seq_len > arch.max_positions:
        raise ValueError(f"seq_len={recipe.seq_len} exceeds max_positions={arch.max_positions}")
    return replace(preset, arch=arch, recipe=recipe)


def llama_config(arch: Arch, vocab_size: int, bos_id: int = 1, eos_id: int = 2, pad_id: int = 0):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden,
        intermediate_size=arch.intermediate,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.kv_heads,
        max_position_embeddings=arch.max_positions,
        rope_theta=arch.rope_theta,
        rms_norm_eps=1e-5,
        initializer_range=0.02,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def build_model(
    arch: Arch, vocab_size: int, seed: int = 0, bos_id: int = 1, eos_id: int = 2, pad_id: int = 0
):
    """A randomly initialised LlamaForCausalLM (fp32, CPU). Init is seeded without
    disturbing the caller's global RNG state."""
    import torch
    from transformers import LlamaForCausalLM

    config = llama_config(arch, vocab_size, bos_id, eos_id, pad_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = pad_id
    model.generation_config.bos_token_id = bos_id
    model.generation_config.eos_token_id = eos_id
    return model


def count_params(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def arch_params(arch: Arch, vocab_size: int | None = None) -> int:
    """Parameter count of an architecture, without building it."""
    v = vocab_size or arch.vocab_size
    head = arch.hidden // arch.heads
    attn = arch.hidden * arch.hidden * 2 + arch.hidden * head * arch.kv_heads * 2
    mlp = 3 * arch.hidden * arch.intermediate
    return arch.layers * (attn + mlp + 2 * arch.hidden) + v * arch.hidden + arch.hidden


# A fixed snippet for `tiny_test_model`'s tokenizer: code and a reasoning problem, so
# both kinds of test prompt tokenize into a handful of merged tokens.
_TINY_TEXT = (
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, i))\n"
    "Q: Ann has 17 pens. Ann gets 14 more. How many pens?\nA: 17+14=31. \\boxed{31}\n"
) * 4


def tiny_test_model(vocab_size: int = 320, seed: int = 0, layers: int = 2, hidden: int = 64):
    """(model, tokenizer) for other modules' unit tests: a random-init 2-layer Llama
    (with grouped-query attention) and a byte-level BPE trained on a fixed snippet.
    No training, builds in well under a second; outputs are deterministic per seed."""
    from celine.llm.tokenizer import TokenizerSettings, train_tokenizer

    tok = train_tokenizer(
        [_TINY_TEXT],
        TokenizerSettings(vocab_size=vocab_size, individual_digits=True, min_frequency=1),
    )
    arch = Arch(
        hidden=hidden,
        layers=layers,
        heads=4,
        kv_heads=2,
        intermediate=2 * hidden,
        vocab_size=vocab_size,
        max_positions=512,
    )
    model = build_model(
        arch,
        len(tok),
        seed=seed,
        bos_id=tok.bos_token_id,
        eos_id=tok.eos_token_id,
        pad_id=tok.pad_token_id,
    )
    model.eval()
    return model, tok


def preset_table() -> list[dict]:
    """One row per preset: size, parameters (at the target vocab), recipe highlights."""
    rows = []
    for name, p in PRESETS.items():
        r = p.recipe
        rows.append(
            {
                "size": name,
                "params": arch_params(p.arch),
                **asdict(p.arch),
                "steps": r.steps,
                "batch": r.batch_size,
                "seq_len": r.seq_len,
                "lr": r.lr,
                "tokens": r.steps * r.batch_size * r.seq_len,
                "est_minutes": p.est_minutes,
                "device": p.device_note,
            }
        )
    return rows
