"""dynasor: Certaindex-guided compute allocation and scheduling for LLM reasoning programs
(Dynasor, arXiv 2412.20993), with its baselines, on the tiny reasoner.

Batch mode on self-consistency (`certaindex` vs `fixed_budget`) and on Rebase/beam tree search
(`certaindex_tree` vs `fixed_budget_tree`), Dynasor-CoT (`dynasor_cot` vs `dynasor_truncation`,
on `tiny_reasoner_long`) and the online scheduler in the serving simulator (`dynasor_online`).
"""

from celine.api import MetricSpec, register_method, register_model, register_task

_ROOM = "celine.experiments.dynasor"

register_task(
    "dynasor",
    impl=f"{_ROOM}.task:DynasorTask",
    config=f"{_ROOM}.config:DynasorTaskConfig",
    metrics=[
        MetricSpec(
            "test/accuracy", goal="max", description="majority-vote / final answer accuracy"
        ),
        MetricSpec(
            "test/tokens_per_problem", goal="min", description="generated tokens (probes excluded)"
        ),
        MetricSpec(
            "test/token_savings",
            goal="max",
            required=False,
            description="1 - tokens / baseline tokens, same problems and samples",
        ),
        MetricSpec("test/accuracy_se", required=False, description="standard error over seeds"),
        MetricSpec(
            "online/rate_ratio",
            goal="max",
            required=False,
            description="Dynasor's sustainable rate at 90% attainment / best baseline's",
        ),
        MetricSpec(
            "online/sustainable_rate",
            goal="max",
            unit="programs/s",
            required=False,
            description="highest program rate with >= 90% of programs within their deadline",
        ),
    ],
    methods=[
        "certaindex",
        "fixed_budget",
        "dynasor_cot",
        "dynasor_cot_synthetic",
        "dynasor_truncation",
        "dynasor_online",
        "certaindex_tree",
        "fixed_budget_tree",
    ],
    description="Dynasor: certaindex early stopping (SC, tree search), Dynasor-CoT probing, "
    "online scheduling",
)
register_method(
    "certaindex",
    impl=f"{_ROOM}.method:Certaindex",
    config=f"{_ROOM}.config:CertaindexConfig",
    description="Dynasor batch mode: stop a program at detect_at when certaindex passes",
)
register_method(
    "fixed_budget",
    impl=f"{_ROOM}.method:FixedBudget",
    config=f"{_ROOM}.config:FixedBudgetConfig",
    description="baseline: the same program with its knob fixed (n samples, majority vote)",
)
register_method(
    "certaindex_tree",
    impl=f"{_ROOM}.method:CertaindexTree",
    config=f"{_ROOM}.config:CertaindexTreeConfig",
    description="Dynasor batch mode on Rebase/beam tree search: stop at detect_at searches "
    "when certaindex over their leaves passes",
)
register_method(
    "fixed_budget_tree",
    impl=f"{_ROOM}.method:FixedBudgetTree",
    config=f"{_ROOM}.config:FixedBudgetTreeConfig",
    description="baseline: the same tree search with its knob fixed (cap searches)",
)
register_method(
    "dynasor_cot",
    impl=f"{_ROOM}.method:DynasorCot",
    config=f"{_ROOM}.config:DynasorCotConfig",
    description="Dynasor-CoT: probe-in-the-middle, exit when n_consistent probes agree",
)
register_method(
    "dynasor_cot_synthetic",
    impl=f"{_ROOM}.method:DynasorCotSynthetic",
    config=f"{_ROOM}.config:DynasorCotSyntheticConfig",
    description="Dynasor-CoT's offline replay on synthetic self-doubt traces (no LLM)",
)
register_method(
    "dynasor_truncation",
    impl=f"{_ROOM}.method:Truncation",
    config=f"{_ROOM}.config:TruncationConfig",
    description="baseline for Dynasor-CoT: a fixed token budget per chain",
)
register_method(
    "dynasor_online",
    impl=f"{_ROOM}.method:DynasorOnline",
    config=f"{_ROOM}.config:DynasorOnlineConfig",
    description="online: gang + certaindex + SJF scheduling vs FCFS and gang FIFO, simulated",
)
register_model(
    "tiny_reasoner_long",
    impl=f"{_ROOM}.long_reasoner:tiny_reasoner_long",
    config=f"{_ROOM}.config:LongReasonerConfig",
    description="tiny_reasoner trained on long chains (a check re-derives the answer): "
    "Dynasor-CoT's self-doubt",
)
register_model(
    "dynasor_reasoner",
    impl=f"{_ROOM}.fast_reasoner:dynasor_reasoner",
    config=f"{_ROOM}.config:DynasorReasonerConfig",
    description="the dynasor room's default: a narrower tiny_reasoner that trains in minutes",
)
