"""Schemas of the lm_pretrain task and its methods."""

from __future__ import annotations

from dataclasses import dataclass

from celine.api import existing_path, in_range, one_of
from celine.llm.corpora import CORPORA


@dataclass
class LMPretrainTaskConfig:
    name: str = "lm_pretrain"
    corpus: str | None = None  # None: the corpus the model was trained on (required for model=hf)
    data_root: str | None = None
    eval_tokens: int = 200_000  # cap on test/validation tokens scored (whole split if smaller)
    window: int | None = None  # perplexity window; None: the model's training sequence length
    batch_size: int = 8
    reasoning_per_difficulty: int = 50  # greedy-decoded problems per number of steps (1..8)
    reasoning_max_new_tokens: int = 192

    def __post_init__(self) -> None:
        if self.corpus is not None:
            one_of("task.corpus", self.corpus, CORPORA)
        existing_path("task.data_root", self.data_root)
        in_range("task.eval_tokens", self.eval_tokens, 1)
        in_range("task.batch_size", self.batch_size, 1)
        in_range("task.reasoning_per_difficulty", self.reasoning_per_difficulty, 0)
        if self.window is not None:
            in_range("task.window", self.window, 2)


@dataclass
class PretrainConfig:
    name: str = "pretrain"


@dataclass
class EvaluateConfig:
    name: str = "evaluate"


@dataclass
class UnigramConfig:
    name: str = "unigram"
    smoothing: float = 1.0  # add-k smoothing: every token of the vocabulary gets k extra counts

    def __post_init__(self) -> None:
        in_range("method.smoothing", self.smoothing, 0.0)
