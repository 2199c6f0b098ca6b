"""The shiftadd task: calibration windows from the train split, perplexity on held-out text."""

from __future__ import annotations

import numpy as np
import torch

from celine.api import ConfigError
from celine.llm.corpus_task import CorpusTask


class ShiftAddTask(CorpusTask):
    def window(self, lm) -> int:
        if self.cfg.window:
            return self.cfg.window
        if lm.seq_len:
            return lm.seq_len
        return min(2048, int(getattr(lm.model.config, "max_position_embeddings", 2048)))

    def calibration(self, lm) -> torch.Tensor:
        """`nsamples` random windows of the train split (seeded), as the reference draws them."""
        train = np.asarray(self.streams(lm.tokenizer)["train"])
        seqlen = self.cfg.calib_seqlen or self.window(lm)
        if train.size <= seqlen + 1:
            raise ConfigError(
                "task.calib_seqlen", seqlen, f"shorter than the train split ({train.size})"
            )
        rng = np.random.default_rng(self.cfg.calib_seed)
        starts = rng.integers(0, train.size - seqlen - 1, size=self.cfg.nsamples)
        return torch.as_tensor(np.stack([train[s : s + seqlen] for s in starts]), dtype=torch.long)

    def evaluate(self, lm) -> dict[str, float]:
        from celine.llm.evaluate import perplexity

        streams = self.streams(lm.tokenizer)
        metrics: dict[str, float] = {}
        for split, prefix in (("validation", "val"), ("test", "test")):
            ids = streams[split][: self.cfg.eval_tokens + 1]
            res = perplexity(
                lm.model,
                ids,
                window=self.window(lm),
                batch_size=self.cfg.batch_size,
                device=self.ctx.hardware.device,
            )
            metrics[f"{prefix}/perplexity"] = res.perplexity
            metrics[f"{prefix}/tokens"] = float(res.tokens)
        return metrics
