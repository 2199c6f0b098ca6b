"""The lm_pretrain task: a corpus split and the measurements every language model gets."""

from __future__ import annotations

import pandas as pd

from celine.llm.corpus_task import CorpusTask


class LMPretrainTask(CorpusTask):
    def unigram(self, tokenizer, smoothing: float = 1.0) -> dict[str, float]:
        """Perplexity of the smoothed unigram of the training split, on the same tokens the
        language model is scored on."""
        from celine.llm.evaluate import unigram_perplexity

        _, streams = self.data(tokenizer)
        return {
            f"{prefix}/perplexity": unigram_perplexity(
                streams["train"],
                streams[split][: self.cfg.eval_tokens + 1],
                len(tokenizer),
                smoothing,
            ).perplexity
            for split, prefix in (("validation", "val"), ("test", "test"))
        }

    def evaluate(self, lm) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
        """Perplexity on validation and test, the unigram baseline, and for question-answer
        corpora greedy accuracy per difficulty."""
        from celine.llm.evaluate import perplexity

        splits, streams = self.data(lm.tokenizer)
        window = self.cfg.window or lm.seq_len or _max_context(lm.model)
        device = self.ctx.hardware.device
        metrics: dict[str, float] = {}
        for split, prefix in (("validation", "val"), ("test", "test")):
            ids = streams[split][: self.cfg.eval_tokens + 1]
            res = perplexity(
                lm.model, ids, window=window, batch_size=self.cfg.batch_size, device=device
            )
            metrics[f"{prefix}/perplexity"] = res.perplexity
            metrics[f"{prefix}/tokens"] = float(res.tokens)
        metrics["test/unigram_perplexity"] = self.unigram(lm.tokenizer)["test/perplexity"]
        tables: dict[str, pd.DataFrame] = {}
        if splits.test_problems and self.cfg.reasoning_per_difficulty > 0:
            table = self.reasoning(lm, splits.test_problems)
            tables["reasoning_accuracy"] = table
            for row in table.itertuples():
                key = "all" if row.steps == "all" else f"steps_{row.steps}"
                metrics[f"reasoning/accuracy_{key}"] = float(row.accuracy)
            metrics["reasoning/accuracy"] = metrics.pop("reasoning/accuracy_all")
        return metrics, tables

    def reasoning(self, lm, problems) -> pd.DataFrame:
        from celine.llm.evaluate import reasoning_accuracy

        per = self.cfg.reasoning_per_difficulty
        chosen, counts = [], {}
        for p in problems:  # the first `per` test problems of each difficulty
            if counts.get(p.steps, 0) < per:
                chosen.append(p)
                counts[p.steps] = counts.get(p.steps, 0) + 1
        self.ctx.log.info("greedy decoding %d test problems (%d per difficulty)", len(chosen), per)
        return reasoning_accuracy(
            lm.model, lm.tokenizer, chosen, max_new_tokens=self.cfg.reasoning_max_new_tokens
        )


def _max_context(model) -> int:
    return min(1024, int(getattr(model.config, "max_position_embeddings", 1024)))
