"""Schemas of the lookahead task and its methods (the paper's names: level N, window W,
guess_set_size G)."""

from __future__ import annotations

from dataclasses import dataclass

from celine.api import ConfigError, existing_path, in_range, one_of

WORKLOADS = ("code", "reasoning", "jsonl")


@dataclass
class LookaheadTaskConfig:
    name: str = "lookahead"
    workload: str = "code"  # code: held-out stdlib file prefixes; reasoning: word problems;
    # jsonl: local MT-Bench / HumanEval style JSONL (`data_root`)
    data_root: str | None = None
    num_prompts: int = 8
    prompt_tokens: int = 128  # a code prompt keeps the last `prompt_tokens` tokens of its prefix
    max_new_tokens: int = 96
    batch_size: int = 1  # the paper measures batch 1
    warmup: bool = True  # one short untimed decode per decoder before timing
    # a JSONL of prompts, one per line: token ids ({"input_ids": [...]}, {"ids": [...]} or a
    # bare list) or text (the `jsonl` workload's fields). Replaces `workload`; with ids only,
    # a `model=hf` checkpoint needs no tokenizer files.
    prompts: str | None = None
    # sampling (paper: T=1.0 on CNN/DM and XSum); temperature 0 = greedy
    temperature: float = 0.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off
    attn_implementation: str | None = None  # None: the checkpoint's own (sdpa); or eager

    def __post_init__(self) -> None:
        one_of("task.workload", self.workload, WORKLOADS)
        existing_path("task.data_root", self.data_root)
        existing_path("task.prompts", self.prompts, kind="file")
        in_range("task.temperature", self.temperature, 0.0)
        in_range("task.top_k", self.top_k, 0)
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("task.top_p", self.top_p, "a probability in (0, 1]")
        if self.attn_implementation is not None:
            one_of("task.attn_implementation", self.attn_implementation, ("eager", "sdpa"))
        if self.workload == "jsonl" and not self.data_root:
            raise ConfigError(
                "task.data_root", None, "a .jsonl file or folder", "needed for workload=jsonl"
            )
        in_range("task.num_prompts", self.num_prompts, 1)
        in_range("task.prompt_tokens", self.prompt_tokens, 1)
        in_range("task.max_new_tokens", self.max_new_tokens, 1)
        in_range("task.batch_size", self.batch_size, 1)


@dataclass
class LookaheadConfig:
    name: str = "lookahead"
    level: int = 5  # N: n-gram size; a step commits up to N tokens
    window: int = 7  # W: Jacobi trajectories (columns) kept in the 2-D window
    guess_set_size: int = 7  # G: n-grams kept per key and verified per step
    pool_from_prompt: bool = True  # seed the pool with the prompt's n-grams (POOL_FROM_PROMPT)

    def __post_init__(self) -> None:
        in_range("method.level", self.level, 2)
        in_range("method.window", self.window, 1)
        in_range("method.guess_set_size", self.guess_set_size, 0)


@dataclass
class GreedyConfig:
    name: str = "greedy"


@dataclass
class PromptLookupConfig:
    name: str = "prompt_lookup"
    prompt_lookup_num_tokens: int = 10  # draft tokens copied from the prompt per step
    max_matching_ngram_size: int = 2  # longest n-gram matched against the prompt

    def __post_init__(self) -> None:
        in_range("method.prompt_lookup_num_tokens", self.prompt_lookup_num_tokens, 1)
        in_range("method.max_matching_ngram_size", self.max_matching_ngram_size, 1)


@dataclass
class JacobiConfig:
    name: str = "jacobi"
    window: int = 7  # guesses refined in parallel per step (W-1 after the input token)

    def __post_init__(self) -> None:
        in_range("method.window", self.window, 1)
