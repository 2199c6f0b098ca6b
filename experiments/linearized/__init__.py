"""linearized: augmented linear attention for a trained Llama, with speculative decoding
(Linearized-LLM, ICML 2024): local / grouped / augmented linear attention swapped into the
tiny Llama, fine-tuned, and decoded with Medusa trees or a draft model over a recurrent state.
"""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.linearized"
_METHODS = {
    "lin_softmax": "baseline: the original softmax attention (KV cache), same pipeline",
    "lin_local": "chunked local linear attention only (ReLU^2 kernel inside chunks)",
    "lin_global": "local + grouped (global) linear attention with a learned mix",
    "lin_augmented": "the paper's: local + global + masked depthwise conv on V",
}

register_task(
    "linearized",
    impl=f"{_ROOM}.task:LinearizedTask",
    config=f"{_ROOM}.config:LinearizedTaskConfig",
    metrics=[
        MetricSpec("test/perplexity", goal="min", description="after linearization + fine-tuning"),
        MetricSpec("val/perplexity", goal="min", description="same, validation split"),
        MetricSpec("original/test_perplexity", goal="min", description="the softmax model before"),
        MetricSpec("decode/ar_tokens_per_s", goal="max", description="autoregressive baseline"),
        MetricSpec(
            "decode/medusa_speedup",
            goal="max",
            required=False,
            description="Medusa tree speculation tok/s over autoregressive, same process",
        ),
        MetricSpec("decode/medusa_mean_accepted", goal="max", required=False),
        MetricSpec("decode/draft_model_speedup", goal="max", required=False),
        MetricSpec("decode/draft_model_mean_accepted", goal="max", required=False),
        MetricSpec(
            "decode/spec_equals_greedy",
            goal="max",
            description="fraction of (checked prompt, drafter) outputs equal to greedy decoding "
            "by full recomputation (task.exact_prompts prompts, every run)",
        ),
        MetricSpec("decode/medusa_prior_mean_accepted", goal="max", required=False),
        MetricSpec(
            "latency/growth_last_over_second",
            goal="min",
            description="per-token decode latency at the longest over the second context "
            "(the first with 2 contexts), after an untimed warm-up",
        ),
    ],
    methods=list(_METHODS),
    description="linearize a trained Llama's attention, fine-tune, decode speculatively",
)
for _name, _desc in _METHODS.items():
    register_method(
        _name,
        impl=f"{_ROOM}.method:Linearized",
        config=f"{_ROOM}.config:LinearizedConfig",
        description=_desc,
        models=["tiny_llama", "tiny_reasoner", "hf"],
    )
