"""cka: Contrastive Knowledge Amalgamation (arXiv 2307.14781) of classifier teachers into one
student that learns the union of their tasks without labels, beside its baselines."""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.cka"
METHODS = ["cka", "cka_concat_teachers", "cka_vanilla_ka", "cka_cfl", "cka_supervised"]

register_task(
    "cka",
    impl=f"{_ROOM}.task:CKATask",
    config=f"{_ROOM}.config:CKATaskConfig",
    metrics=[
        MetricSpec("test/union_acc", goal="max", description="student accuracy on all classes"),
        MetricSpec(
            "test/mean_task_acc",
            goal="max",
            description="student accuracy per teacher task (within its classes), averaged",
        ),
        MetricSpec(
            "teachers/mean_task_acc",
            goal="max",
            description="each teacher's accuracy on its own task, averaged",
        ),
    ],
    methods=METHODS,
    description="amalgamate classifier teachers of disjoint class sets into one label-free student",
)
register_method(
    "cka",
    impl=f"{_ROOM}.method:CKA",
    config=f"{_ROOM}.config:CKAConfig",
    description="contrastive (intra/inter-model) + sample-level alignment + soft-target KD",
    models=["small_cnn"],
)
register_method(
    "cka_concat_teachers",
    impl=f"{_ROOM}.method:ConcatTeachers",
    config=f"{_ROOM}.config:ConcatTeachersConfig",
    description="reference: argmax of the teachers' concatenated logits (no student)",
    models=["small_cnn"],
)
register_method(
    "cka_vanilla_ka",
    impl=f"{_ROOM}.method:VanillaKA",
    config=f"{_ROOM}.config:VanillaKAConfig",
    description="baseline: KD on the teachers' concatenated soft targets",
    models=["small_cnn"],
)
register_method(
    "cka_cfl",
    impl=f"{_ROOM}.method:CFL",
    config=f"{_ROOM}.config:CFLConfig",
    description="baseline: common feature learning (MMD in a shared space + reconstruction + KD)",
    models=["small_cnn"],
)
register_method(
    "cka_supervised",
    impl=f"{_ROOM}.method:Supervised",
    config=f"{_ROOM}.config:SupervisedConfig",
    description="upper bound: the same student trained with the ground-truth labels",
    models=["small_cnn"],
)
