"""med_amalgamation: KA2ER, knowledge adaptive amalgamation of segmentation experts (DynUNet)
into a SwinUNETR foundation model with prompts, and its baselines (arXiv 2410.21085)."""

from celine.api import MetricSpec, register_method, register_model, register_task

_ROOM = "celine.experiments.med_amalgamation"

register_task(
    "med_amalgamation",
    impl=f"{_ROOM}.task:MedAmalgamationTask",
    config=f"{_ROOM}.config:MedAmalgamationTaskConfig",
    metrics=[
        MetricSpec("dice/mean", goal="max", description="Dice (MONAI DiceMetric), mean of tasks"),
        MetricSpec("hd95/mean", goal="min", unit="px", description="95th-percentile Hausdorff"),
        MetricSpec(
            "alpha/own_expert",
            goal="max",
            required=False,
            description="mean weight the expert attention gives each input's own-task expert",
        ),
        *[
            MetricSpec(f"dice/{t}", goal="max", required=False, description=f"Dice on {t}")
            for t in ("discs", "squares", "large_objects")
        ],
        MetricSpec(
            "expert_dice/mean",
            goal=None,
            required=False,
            description="each task's own expert on the same test images (ka2er's reference)",
        ),
        MetricSpec(
            "fp_empty/mean",
            goal="min",
            required=False,
            description="share of test images with an empty label where anything is predicted",
        ),
        MetricSpec(
            "dice_label_prompt/mean",
            goal="max",
            required=False,
            description="Dice with test prompts from the ground truth (MedSAM protocol)",
        ),
        MetricSpec(
            "dice/off_task_mean",
            goal=None,
            required=False,
            description="experts on the other tasks' data (domain shift)",
        ),
    ],  # fmt: skip
    methods=[
        "ka2er",
        "med_feature_avg",
        "med_joint",
        "med_expert",
        "med_threshold",
        "med_joint_decoder",
        "ka2er_noskip",
    ],
    description="amalgamate per-task segmentation experts into one prompted SwinUNETR model",
)
register_method(
    "ka2er",
    impl=f"{_ROOM}.method:KA2ER",
    config=f"{_ROOM}.config:KA2ERConfig",
    description="frozen experts + SwinUNETR, hierarchical attention, prompt + mask decoder",
    models=["swinunetr"],
)
register_method(
    "med_feature_avg",
    impl=f"{_ROOM}.method:KA2ER",
    config=f"{_ROOM}.config:MedFeatureAvgConfig",
    description="baseline: as ka2er, experts' features averaged instead of attended",
    models=["swinunetr"],
)
register_method(
    "med_joint_decoder",
    impl=f"{_ROOM}.method:KA2ER",
    config=f"{_ROOM}.config:MedJointDecoderConfig",
    description="baseline: pooled training with ka2er's decoder, no experts, no prompt",
    models=["swinunetr"],
)
register_method(
    "ka2er_noskip",
    impl=f"{_ROOM}.method:KA2ER",
    config=f"{_ROOM}.config:KA2ERNoSkipConfig",
    description="ablation: ka2er whose decoder gets no skip features from the target",
    models=["swinunetr"],
)
register_method(
    "med_threshold",
    impl=f"{_ROOM}.method:MedThreshold",
    config=f"{_ROOM}.config:MedThresholdConfig",
    description="sanity baseline: one intensity threshold per task, fitted on the training split",
    models=None,  # no network: any model group choice is ignored
)
register_method(
    "med_joint",
    impl=f"{_ROOM}.method:MedJoint",
    config=f"{_ROOM}.config:MedJointConfig",
    description="baseline: SwinUNETR trained on all tasks together, no experts",
    models=["swinunetr"],
)
register_method(
    "med_expert",
    impl=f"{_ROOM}.method:MedExpert",
    config=f"{_ROOM}.config:MedExpertConfig",
    description="baseline: each DynUNet expert on its own task (and on the others)",
    models=["dynunet"],
)
register_model(
    "swinunetr",
    impl=f"{_ROOM}.nets:swinunetr_model",
    config=f"{_ROOM}.config:SwinUNETRConfig",
    description="MONAI SwinUNETR (2D/3D), optionally from a local checkpoint",
)
register_model(
    "dynunet",
    impl=f"{_ROOM}.nets:dynunet_model",
    config=f"{_ROOM}.config:DynUNetConfig",
    description="MONAI DynUNet (nnU-Net-style) expert with its training recipe",
)
