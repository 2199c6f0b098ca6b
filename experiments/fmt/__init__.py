"""fmt: feature map testing as a backdoor defence (FMT / Adversarial Feature Map Pruning).

A backdoored classifier (BadNets, Blend, WaNet or SIG poisoning) is defended by attacking each
feature map, pruning the maps whose attack hurts accuracy most, and fine-tuning on clean data;
baselines: no defence, fine-tuning alone, random pruning, Fine-Pruning, Neural Attention
Distillation.
"""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.fmt"

register_task(
    "fmt",
    impl=f"{_ROOM}.task:FMTTask",
    config=f"{_ROOM}.config:FMTTaskConfig",
    metrics=[
        MetricSpec("asr", goal="min", description="attack success rate after the defence"),
        MetricSpec("acc", goal="max", description="clean test accuracy after the defence"),
        MetricSpec("ra", goal="max", description="robust accuracy: true labels on triggered"),
        MetricSpec("before/asr", goal="max", description="ASR of the backdoored model"),
        MetricSpec("before/acc", goal="max", description="clean accuracy, backdoored model"),
        MetricSpec("before/ra", goal="min", description="RA of the backdoored model"),
        MetricSpec(
            "backdoor_maps_removed",
            goal="max",
            description="share of ground-truth backdoor maps (most changed by the trigger) pruned",
        ),
    ],
    methods=[
        "fmt",
        "fmt_none",
        "fmt_finetune",
        "fmt_random_prune",
        "fmt_fine_pruning",
        "fmt_oracle",
        "fmt_nad",
    ],
    description="backdoor defence by feature map testing: detect, prune, fine-tune",
    primary_metric="asr",
)
register_method(
    "fmt",
    impl=f"{_ROOM}.method:FMT",
    config=f"{_ROOM}.config:FMTConfig",
    description="FMT/FMP: prune the maps whose feature-map attack hurts accuracy most, fine-tune",
    models=["small_cnn"],
)
register_method(
    "fmt_none",
    impl=f"{_ROOM}.method:NoDefense",
    config=f"{_ROOM}.config:NoDefenseConfig",
    description="baseline: the backdoored model, undefended",
    models=["small_cnn"],
)
register_method(
    "fmt_finetune",
    impl=f"{_ROOM}.method:FineTuneOnly",
    config=f"{_ROOM}.config:FineTuneOnlyConfig",
    description="baseline: fine-tuning on the clean subset alone",
    models=["small_cnn"],
)
register_method(
    "fmt_random_prune",
    impl=f"{_ROOM}.method:RandomPrune",
    config=f"{_ROOM}.config:RandomPruneConfig",
    description="baseline: as many maps per layer as FMT, chosen at random, then fine-tuning",
    models=["small_cnn"],
)
register_method(
    "fmt_fine_pruning",
    impl=f"{_ROOM}.method:FinePruning",
    config=f"{_ROOM}.config:FinePruningConfig",
    description="baseline: Fine-Pruning (least active last-layer maps, then fine-tuning)",
    models=["small_cnn"],
)
register_method(
    "fmt_oracle",
    impl=f"{_ROOM}.method:Oracle",
    config=f"{_ROOM}.config:OracleConfig",
    description="upper bound: prune the maps the real trigger changes most, then fine-tune",
    models=["small_cnn"],
)
register_method(
    "fmt_nad",
    impl=f"{_ROOM}.method:NAD",
    config=f"{_ROOM}.config:NADConfig",
    description="baseline: Neural Attention Distillation from a fine-tuned teacher",
    models=["small_cnn"],
)
