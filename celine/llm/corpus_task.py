"""The base of every task measured on a text corpus (lm_pretrain, shiftadd, linearized, ...).

The corpus is the task's own choice (`task.corpus`, `task.data_root`), else the tiny model's
training corpus, so `celine run task=X` evaluates a model on the text it was trained on.
"""

from __future__ import annotations

from typing import Any

from celine.errors import ConfigError


class CorpusTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx
        self._cache: dict = {}

    def corpus(self) -> tuple[str, str | None, int]:
        """(corpus, root, seed): the task's own choice, else the tiny model's training corpus."""
        model_cfg = self.ctx.model_cfg
        if self.cfg.corpus is not None:
            return self.cfg.corpus, self.cfg.data_root, getattr(model_cfg, "seed", 0)
        if hasattr(model_cfg, "corpus"):
            return model_cfg.corpus, model_cfg.data_root, model_cfg.seed
        raise ConfigError(
            "task.corpus",
            None,
            "name the corpus to evaluate this model on",
            "e.g. task.corpus=code",
        )

    def data(self, tokenizer) -> tuple[Any, dict]:
        """(splits, token streams per split) of the corpus under `tokenizer`, computed once."""
        from celine.llm.streams import encoded_splits

        name, root, seed = self.corpus()
        key = (name, root, seed, id(tokenizer))
        if key not in self._cache:
            cache = self.ctx.outputs_dir / "cache" / "tokens"
            self._cache[key] = encoded_splits(name, root, seed, tokenizer, cache_dir=cache)
        return self._cache[key]

    def streams(self, tokenizer) -> dict:
        """Token streams of train/validation/test under `tokenizer`."""
        return self.data(tokenizer)[1]
