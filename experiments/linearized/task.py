"""The linearized task: the corpus the model was trained on, perplexity, decoding prompts."""

from __future__ import annotations

import numpy as np
import torch

from celine.api import ConfigError
from celine.llm.corpus_task import CorpusTask


class LinearizedTask(CorpusTask):
    def perplexity(self, model, tokenizer, window: int) -> dict[str, float]:
        from celine.llm.evaluate import perplexity

        streams = self.streams(tokenizer)
        window = self.cfg.window or window
        out = {}
        for split, prefix in (("validation", "val"), ("test", "test")):
            ids = streams[split][: self.cfg.eval_tokens + 1]
            res = perplexity(
                model,
                ids,
                window,
                batch_size=self.cfg.batch_size,
                device=self.ctx.hardware.device,
            )
            out[f"{prefix}/perplexity"] = res.perplexity
        return out

    def prompts(self, tokenizer) -> list[torch.Tensor]:
        """`prompts` windows of `prompt_tokens` from the test split, evenly spaced (fixed)."""
        test = self.streams(tokenizer)["test"]
        n, length = self.cfg.prompts, self.cfg.prompt_tokens
        span = len(test) - length - self.cfg.new_tokens - 1
        if span <= 0:
            raise ConfigError("task.prompt_tokens", length, "a prompt shorter than the test split")
        starts = np.linspace(0, span, n).astype(int)
        device = self.ctx.hardware.device
        return [
            torch.as_tensor(test[s : s + length].astype(np.int64), device=device)[None]
            for s in starts
        ]
