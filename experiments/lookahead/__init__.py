"""lookahead: exact parallel decoding with Jacobi trajectories and an n-gram pool (Lookahead
Decoding, ICML'24), against greedy, prompt-lookup and Jacobi decoding."""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.lookahead"

register_task(
    "lookahead",
    impl=f"{_ROOM}.task:LookaheadTask",
    config=f"{_ROOM}.config:LookaheadTaskConfig",
    metrics=[
        MetricSpec("decode/speedup", goal="max", description="tokens/s over greedy, same process"),
        MetricSpec("decode/compression_ratio", goal="max", description="tokens / decoding steps"),
        MetricSpec(
            "decode/exact_match",
            goal="max",
            required=False,
            description="prompts equal to greedy (greedy runs only; sampling draws differ)",
        ),  # fmt: skip
        MetricSpec("decode/tokens_per_s", goal="max"),
        MetricSpec(
            "decode/accepted_per_step", goal="max", description="tokens per full-window step"
        ),
        MetricSpec("decode/pool_hit_rate", goal="max", description="steps accepting a pool n-gram"),
    ],
    methods=["lookahead", "greedy", "prompt_lookup", "jacobi"],
    description="lookahead decoding against greedy, prompt-lookup and Jacobi decoding",
    primary_metric="decode/speedup",
)
register_method(
    "lookahead",
    impl=f"{_ROOM}.method:Lookahead",
    config=f"{_ROOM}.config:LookaheadConfig",
    description="lookahead decoding (N, W, G): one forward per step, exact under greedy",
)
register_method(
    "greedy",
    impl=f"{_ROOM}.method:Greedy",
    config=f"{_ROOM}.config:GreedyConfig",
    description="baseline: transformers greedy generate",
)
register_method(
    "prompt_lookup",
    impl=f"{_ROOM}.method:PromptLookup",
    config=f"{_ROOM}.config:PromptLookupConfig",
    description="baseline: transformers prompt-lookup decoding",
)
register_method(
    "jacobi",
    impl=f"{_ROOM}.method:Jacobi",
    config=f"{_ROOM}.config:JacobiConfig",
    description="baseline: Jacobi decoding without the n-gram pool",
)
