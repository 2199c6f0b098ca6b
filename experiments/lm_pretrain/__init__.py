"""lm_pretrain: train Celine's own small Llama models on built-in or local text, and measure them.

The models it trains (`model=tiny_llama`, `model=tiny_reasoner`) are what the LLM rooms build on.
"""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.lm_pretrain"

register_task(
    "lm_pretrain",
    impl=f"{_ROOM}.task:LMPretrainTask",
    config=f"{_ROOM}.config:LMPretrainTaskConfig",
    metrics=[
        MetricSpec(
            "test/perplexity", goal="min", description="non-overlapping windows, test split"
        ),
        MetricSpec("val/perplexity", goal="min", description="same, validation split"),
        MetricSpec(
            "test/unigram_perplexity",
            goal="min",
            description="add-one unigram of the same tokenizer: the baseline to beat",
        ),
        MetricSpec(
            "reasoning/accuracy",
            goal="max",
            required=False,
            description="greedy \\boxed{} accuracy (reasoning corpora)",
        ),
    ],
    methods=["pretrain", "evaluate", "unigram"],
    description="train a tiny Llama on a corpus (code, reasoning, local files) and evaluate it",
)
register_method(
    "pretrain",
    impl=f"{_ROOM}.method:Pretrain",
    config=f"{_ROOM}.config:PretrainConfig",
    description="train (or resume, or reuse the cached) tiny Llama, then evaluate",
    models=["tiny_llama", "tiny_reasoner"],
)
register_method(
    "evaluate",
    impl=f"{_ROOM}.method:Evaluate",
    config=f"{_ROOM}.config:EvaluateConfig",
    description="evaluate any causal LM (tiny_* or a local hf checkpoint) without training",
)
register_method(
    "unigram",
    impl=f"{_ROOM}.method:Unigram",
    config=f"{_ROOM}.config:UnigramConfig",
    description="baseline: add-one smoothed unigram model over the same tokenizer",
)
