"""Schemas of the linearized task and its methods (names follow the reference code)."""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.api import ConfigError, existing_path, in_range, one_of
from celine.llm.corpora import CORPORA

FINETUNE = ("full", "lora", "none")


@dataclass
class LinearizedTaskConfig:
    name: str = "linearized"
    corpus: str | None = None  # None: the corpus the model was trained on
    data_root: str | None = None
    eval_tokens: int = 16_384  # test/validation tokens scored for perplexity
    window: int | None = None  # perplexity window; None: the model's training sequence length
    batch_size: int = 8
    prompts: int = 3  # test-split prompts decoded per drafter
    prompt_tokens: int = 64
    new_tokens: int = 48
    decode_batch: int = 1  # prompts decoded together (ragged acceptance); the paper: batch 1
    decode_repeats: int = 3  # timed repeats per drafter after one untimed warm-up (median, spread)
    exact_prompts: int = 2  # prompts whose every drafter's output is checked, in every run,
    # against greedy decoding by full recomputation (no state, no tree attention)
    # per-token decode latency vs context (prefill to each length, then time decode steps)
    latency_contexts: list[int] = field(default_factory=lambda: [256, 1024, 4096])
    latency_steps: int = 8

    def __post_init__(self) -> None:
        if self.corpus is not None:
            one_of("task.corpus", self.corpus, CORPORA)
        existing_path("task.data_root", self.data_root)
        in_range("task.eval_tokens", self.eval_tokens, 1)
        in_range("task.batch_size", self.batch_size, 1)
        in_range("task.prompts", self.prompts, 1)
        in_range("task.prompt_tokens", self.prompt_tokens, 1)
        in_range("task.new_tokens", self.new_tokens, 1)
        in_range("task.decode_batch", self.decode_batch, 1)
        in_range("task.decode_repeats", self.decode_repeats, 1)
        in_range("task.exact_prompts", self.exact_prompts, 0)
        in_range("task.latency_steps", self.latency_steps, 1)
        for c in self.latency_contexts:
            in_range("task.latency_contexts", c, 1)
        if self.window is not None:
            in_range("task.window", self.window, 2)


@dataclass
class LinearizedConfig:
    """One schema for every lin_* method; the method name picks the attention variant."""

    name: str = "lin_augmented"
    group_size: int = 64  # chunk C of the local term / the grouped global term
    conv_kernel: int = 63  # masked depthwise conv on V: (kernel+1)/2 causal taps
    global_factor_init: float = 0.0  # the learned mix alpha of the global term
    # linearization fine-tuning (paper: LoRA r=8/alpha=16 on q,k,v,o + embed,norm, lr 2e-5,
    # 1000 steps x 262k tokens on LLaMA-2-7B)
    finetune: str = "full"
    steps: int = 150
    batch_size: int = 8
    seq_len: int | None = None  # None: the model's training sequence length
    lr: float = 1e-3
    warmup: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    trainable_params: list[str] = field(default_factory=lambda: ["embed", "norm"])
    # Medusa heads (trained on the frozen linearized model) and tree verification
    medusa_num_heads: int = 4
    medusa_steps: int = 100
    medusa_lr: float = 1e-3
    medusa_batch_size: int = 4
    tree_size: int = 63  # candidates + root = 64 tokens per verification (mc_sim_7b_63)
    tree_topk: int = 4
    # second drafter: a truncated copy of the linearized model, fine-tuned briefly
    draft_layers: int = 1
    draft_gamma: int = 4
    draft_steps: int = 60

    def __post_init__(self) -> None:
        variant = self.name.removeprefix("lin_")
        one_of("method.name", variant, ("softmax", "local", "global", "augmented"))
        in_range("method.group_size", self.group_size, 1)
        in_range("method.conv_kernel", self.conv_kernel, 1)
        if self.conv_kernel % 2 == 0:
            raise ConfigError("method.conv_kernel", self.conv_kernel, "an odd kernel size")
        one_of("method.finetune", self.finetune, FINETUNE)
        for key in ("steps", "medusa_steps", "draft_steps", "warmup"):
            in_range(f"method.{key}", getattr(self, key), 0)
        for key in ("batch_size", "medusa_batch_size", "lora_r", "draft_gamma"):
            in_range(f"method.{key}", getattr(self, key), 1)
        in_range("method.medusa_num_heads", self.medusa_num_heads, 0)
        in_range("method.tree_size", self.tree_size, 0)
        in_range("method.tree_topk", self.tree_topk, 1)
        in_range("method.draft_layers", self.draft_layers, 0)
        in_range("method.lr", self.lr, 0.0)
        if self.seq_len is not None:
            in_range("method.seq_len", self.seq_len, 2)

    @property
    def variant(self) -> str:
        return self.name.removeprefix("lin_")
