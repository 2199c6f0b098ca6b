"""llm_sched: learning-to-rank scheduling for LLM serving (vllm-ltr, NeurIPS'24).

A small transformer encoder learns the relative order of output lengths from the prompt
(ListMLE); a rank scheduler re-sorts requests every iteration by it, approximating
shortest-job-first, with starvation promotion. Evaluated in the shared `celine.serving`
simulator against FCFS, oracle SJF, MLFQ, a bucket classifier and prompt length.
"""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.llm_sched"
_METHODS = ["ltr", "fcfs", "oracle_sjf", "mlfq", "sched_classifier", "sched_prompt_len"]

register_task(
    "llm_sched",
    impl=f"{_ROOM}.task:LLMSchedTask",
    config=f"{_ROOM}.config:LLMSchedTaskConfig",
    metrics=[
        MetricSpec(
            "high_load/mean_latency_per_token",
            goal="min",
            unit="s/token",
            description="mean end-to-end latency / output tokens at the highest load factor",
        ),
        MetricSpec("high_load/p90_latency_per_token", goal="min", unit="s/token"),
        MetricSpec(
            "high_load/max_wait",
            goal="min",
            unit="s",
            description="max(TTFT, max inter-token latency) over requests",
        ),
        MetricSpec("burst/mean_latency", goal="min", unit="s", required=False),
        MetricSpec("burst/p90_latency", goal="min", unit="s", required=False),
        MetricSpec(
            "synthetic/time_to_target",
            goal="min",
            unit="s",
            required=False,
            description="time until the first synthetic_target requests of the burst finish",
        ),
        MetricSpec("synthetic/completed_in_window", goal="max", required=False),
        MetricSpec(
            "predictor/test_tau",
            goal="max",
            required=False,
            description="Kendall tau-b of predicted order vs true length, held out",
        ),
        MetricSpec(
            "high_load/fcfs_over_ltr",
            goal="max",
            required=False,
            description="ltr run only: FCFS / ltr mean latency per token",
        ),
    ],  # fmt: skip
    methods=_METHODS,
    primary_metric="high_load/mean_latency_per_token",
    description="serving schedulers on a trace of a tiny LLM's output lengths (vllm-ltr)",
)
register_method(
    "ltr",
    impl=f"{_ROOM}.method:LTR",
    config=f"{_ROOM}.config:LTRConfig",
    description="ListMLE-trained prompt encoder + rank scheduler with starvation control",
)
register_method(
    "fcfs",
    impl=f"{_ROOM}.method:FCFSMethod",
    config=f"{_ROOM}.config:FCFSConfig",
    description="first come, first served (vLLM's default)",
)
register_method(
    "oracle_sjf",
    impl=f"{_ROOM}.method:OracleSJFMethod",
    config=f"{_ROOM}.config:OracleSJFConfig",
    description="shortest remaining output first, true lengths (lower bound)",
)
register_method(
    "mlfq",
    impl=f"{_ROOM}.method:MLFQMethod",
    config=f"{_ROOM}.config:MLFQConfig",
    description="FastServe-like multi-level feedback queue",
)
register_method(
    "sched_classifier",
    impl=f"{_ROOM}.method:ClassifierMethod",
    config=f"{_ROOM}.config:ClassifierConfig",
    description="bucket classifier of output length (10 classes) + rank scheduler",
)
register_method("sched_prompt_len", impl=f"{_ROOM}.method:PromptLenMethod",
                config=f"{_ROOM}.config:PromptLenConfig",
                description="shortest prompt first + rank scheduler")  # fmt: skip
