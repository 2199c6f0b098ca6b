"""Schemas of the med_amalgamation task, its two model families and its methods.

Names follow the paper's vocabulary (experts, target/foundation model, amalgamation layer, prompt,
mask decoder). Where the paper body could not be read, the choice is a config key with the reason
in the YAML (see conf/method/ka2er.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.api import ConfigError, existing_path, in_range, one_of

SOURCES = ("synthetic", "decathlon", "nifti")
# Built-in synthetic tasks (data.py). The default three label discs / squares / large objects in
# images that all hold both shapes at one intensity distribution (conflicting labels, a shape or
# size rule). The first benchmark's three (bright_discs, inverted_gamma, small_bright_class)
# differ only in intensity statistics: one threshold per task solves them (Dice 1.000).
SHAPE_TASKS = ("discs", "squares", "large_objects")
SYNTHETIC_TASKS = (*SHAPE_TASKS, "bright_discs", "inverted_gamma", "small_bright_class")
# Tasks that DecathlonDataset knows (it refuses other folder names).
DECATHLON_TASKS = (
    "Task01_BrainTumour", "Task02_Heart", "Task03_Liver", "Task04_Hippocampus",
    "Task05_Prostate", "Task06_Lung", "Task07_Pancreas", "Task08_HepaticVessel",
    "Task09_Spleen", "Task10_Colon",
)  # fmt: skip
FUSIONS = ("attention", "average", "none")
PROMPTS = ("box", "point", "box_point", "none")
EVAL_PROMPTS = ("expert", "label")
EXPERT_ATTENTION = ("token", "global")


@dataclass
class DynUNetConfig:
    """An nnU-Net-style expert (MONAI DynUNet) and its training recipe.

    The same schema is the model group `dynunet` and the task's `expert` node (the experts that
    KA2ER amalgamates), so `method=med_expert model=dynunet` and `method=ka2er` share one cache.
    """

    name: str = "dynunet"
    filters: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    kernel_size: int = 3
    res_block: bool = False
    epochs: int = (
        50  # the loss is flat by then on the shape tasks (README: 0.072 at 50, 0.069 at 60)
    )
    batch_size: int = 8
    seed: int | None = None  # None: the run seed (replicates retrain the experts); a number:
    # the same experts for every run seed (a sweep then varies the amalgamation alone)
    augment: bool = True  # MONAI random flips, 90-degree rotations, intensity scale/shift:
    # none of them changes a shape's class, so the labels stay exact
    lr: float = 0.01  # nnU-Net: SGD, Nesterov momentum 0.99, poly decay
    momentum: float = 0.99
    cache_dir: str | None = None  # None: <outputs>/models

    def __post_init__(self) -> None:
        if len(self.filters) < 2:
            raise ConfigError("filters", self.filters, "at least 2 levels")
        for f in self.filters:
            in_range("filters[]", f, 1)
        one_of("kernel_size", self.kernel_size, (3, 5))
        in_range("epochs", self.epochs, 0)
        in_range("batch_size", self.batch_size, 1)
        in_range("lr", self.lr, 0.0)
        in_range("momentum", self.momentum, 0.0, 1.0)


@dataclass
class SwinUNETRConfig:
    """The target (foundation) model: MONAI SwinUNETR, optionally from a local checkpoint."""

    name: str = "swinunetr"
    feature_size: int = 12  # paper-scale 48; MONAI requires a multiple of 12
    depths: list[int] = field(default_factory=lambda: [1, 1, 1, 1])  # paper-scale [2, 2, 2, 2]
    num_heads: list[int] = field(default_factory=lambda: [3, 3, 3, 3])  # paper [3, 6, 12, 24]
    norm_name: str = "instance"
    use_v2: bool = False
    checkpoint: str | None = None  # local .pt: a SwinUNETR state dict or the self-supervised
    # Swin-ViT checkpoint (loaded with `load_from`); nothing is downloaded

    def __post_init__(self) -> None:
        if self.feature_size % 12 != 0 or self.feature_size <= 0:
            raise ConfigError("feature_size", self.feature_size, "a positive multiple of 12")
        if len(self.depths) != 4 or len(self.num_heads) != 4:
            raise ConfigError("depths", self.depths, "4 stages (depths and num_heads)")
        for s, heads in enumerate(self.num_heads):
            if (self.feature_size * 2**s) % heads != 0:
                raise ConfigError(
                    "num_heads", self.num_heads, f"stage {s} width {self.feature_size * 2**s} "
                    "must be divisible by its number of heads"
                )  # fmt: skip
        one_of("norm_name", self.norm_name, ("instance", "batch"))
        existing_path("checkpoint", self.checkpoint, kind="file")


@dataclass
class MedAmalgamationTaskConfig:
    name: str = "med_amalgamation"
    source: str = "synthetic"  # synthetic | decathlon | nifti
    tasks: list[str] = field(default_factory=lambda: list(SHAPE_TASKS))
    data_root: str | None = None  # decathlon: the folder holding TaskXX_*; nifti: one folder
    # per task (tasks = its sub-folders), each with imagesTr/ and labelsTr/ of equal file names
    spatial_dims: int = 2
    image_size: int = 64  # every side; SwinUNETR needs a multiple of 32, >= 64 (instance norm)
    n_train: int = 96  # per task (synthetic), or a cap for real data
    n_test: int = 32
    channel: int = 0  # real data with several channels (e.g. BrainTumour): the one used
    # real data: the label values that count as foreground; [] = any label > 0
    label_classes: list[int] = field(default_factory=list)
    data_seed: int = 1234  # the synthetic tasks' generator seed (not the run seed)
    # real data (decathlon, nifti), MONAI transforms:
    pixdim: list[float] = field(default_factory=list)  # Spacingd target spacing (mm) per
    # spatial axis of the volume; [] keeps each file's own spacing
    intensity_range: list[float] = field(default_factory=list)  # [a_min, a_max]:
    # ScaleIntensityRanged window (e.g. CT [-175, 250]) clipped to [0, 1]; []: each image's
    # min..max (ScaleIntensityd)
    test_size: int = 0  # 0: test images are resized like the training ones; N: resampled to
    # pixdim, padded or cropped to N per side (no resizing) and segmented with MONAI's
    # sliding_window_inference over image_size windows
    test_slice: str = "middle"  # 2D, real test volumes: the middle axial slice (no ground
    # truth used) or the slice with the most foreground (`foreground`: picked from the label)
    expert: DynUNetConfig = field(default_factory=DynUNetConfig)

    def __post_init__(self) -> None:
        one_of("source", self.source, SOURCES)
        one_of("spatial_dims", self.spatial_dims, (2, 3))
        if self.image_size % 32 != 0 or self.image_size < 64:
            raise ConfigError(
                "image_size", self.image_size, "a multiple of 32, at least 64 (SwinUNETR)"
            )
        in_range("n_train", self.n_train, 1)
        in_range("n_test", self.n_test, 1)
        in_range("channel", self.channel, 0)
        one_of("test_slice", self.test_slice, ("middle", "foreground"))
        if self.pixdim and len(self.pixdim) not in (2, 3):
            raise ConfigError("pixdim", self.pixdim, "[] or one spacing per spatial axis")
        for v in self.pixdim:
            in_range("pixdim[]", v, 0.0)
        if self.intensity_range and (
            len(self.intensity_range) != 2 or self.intensity_range[0] >= self.intensity_range[1]
        ):
            raise ConfigError("intensity_range", self.intensity_range, "[] or [a_min, a_max]")
        if self.test_size and self.test_size < self.image_size:
            raise ConfigError(
                "test_size", self.test_size, f"0 or at least image_size ({self.image_size})"
            )
        if not self.tasks:
            raise ConfigError("tasks", self.tasks, "at least one task")
        if len(set(self.tasks)) != len(self.tasks):
            raise ConfigError("tasks", self.tasks, "distinct task names")
        if self.source == "synthetic":
            for t in self.tasks:
                one_of("tasks[]", t, SYNTHETIC_TASKS)
        else:
            if self.data_root is None:
                raise ConfigError("data_root", None, f"source {self.source} reads a local folder")
            existing_path("data_root", self.data_root, kind="dir")
        if self.source == "decathlon":
            for t in self.tasks:
                one_of("tasks[]", t, DECATHLON_TASKS)


@dataclass
class KA2ERConfig:
    """Knowledge adaptive amalgamation: frozen experts + target + hierarchical attention."""

    name: str = "ka2er"
    fusion: str = "attention"  # attention (KA2ER) | average (baseline) | none (no experts)
    hidden_size: int = 64  # d_h, the amalgamation layer's shared width
    num_heads: int = 4
    mlp_ratio: float = 2.0
    target_stage: int = 2  # Swin-ViT hidden state amalgamated (1/2**(stage+1) resolution)
    expert_attention: str = "token"  # token: weights per location | global: per input
    decoder_depth: int = 2  # two-way transformer layers
    prompt: str = "box"  # box | point | box_point | none
    box_jitter: float = 0.05  # training-time box noise, fraction of the image side
    dense_box: bool = False  # also mark the tokens inside the box (a dense box embedding)
    eval_prompt: str = "expert"  # test-time boxes/points: from the input's own-task expert's
    # prediction (expert), or from the ground truth (label, MedSAM's protocol; always also
    # reported as dice_label_prompt/*)
    skips: bool = True  # the decoder fuses the target's UNETR skip features; false: zeros of the
    # same shape (same parameters, no full-resolution information): the decoder ablation
    epochs: int = 5
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        one_of("fusion", self.fusion, FUSIONS)
        one_of("expert_attention", self.expert_attention, EXPERT_ATTENTION)
        one_of("prompt", self.prompt, PROMPTS)
        one_of("eval_prompt", self.eval_prompt, EVAL_PROMPTS)
        one_of("target_stage", self.target_stage, (1, 2, 3))
        in_range("hidden_size", self.hidden_size, 8)
        in_range("num_heads", self.num_heads, 1)
        if self.hidden_size % self.num_heads != 0:
            raise ConfigError("hidden_size", self.hidden_size, "divisible by num_heads")
        if self.hidden_size % 4 != 0:
            raise ConfigError("hidden_size", self.hidden_size, "a multiple of 4")
        in_range("mlp_ratio", self.mlp_ratio, 0.25)
        in_range("decoder_depth", self.decoder_depth, 1)
        in_range("box_jitter", self.box_jitter, 0.0, 0.5)
        in_range("epochs", self.epochs, 0)
        in_range("batch_size", self.batch_size, 1)
        in_range("lr", self.lr, 0.0)
        in_range("weight_decay", self.weight_decay, 0.0)


@dataclass
class MedFeatureAvgConfig(KA2ERConfig):
    """Baseline: the same model with the experts' projected features averaged (no attention)."""

    name: str = "med_feature_avg"
    fusion: str = "average"

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("fusion", self.fusion, ("average",))


@dataclass
class MedJointDecoderConfig(KA2ERConfig):
    """Baseline: pooled training with ka2er's decoder: the target SwinUNETR + ka2er's mask
    decoder (and its skip features) on the union of all tasks, no experts, no prompt. Differs
    from ka2er only in the experts (and the prompt), so the decoder's share shows."""

    name: str = "med_joint_decoder"
    fusion: str = "none"
    prompt: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("fusion", self.fusion, ("none",))


@dataclass
class KA2ERNoSkipConfig(KA2ERConfig):
    """Ablation: ka2er whose decoder gets no skip features from the target (zeros instead), so
    the mask comes from the amalgamated 1/8-resolution features alone."""

    name: str = "ka2er_noskip"
    skips: bool = False


@dataclass
class MedThresholdConfig:
    """Sanity baseline: one intensity threshold and side per task, fitted on the training split."""

    name: str = "med_threshold"
    candidates: int = 256  # evenly spaced intensity levels tried

    def __post_init__(self) -> None:
        in_range("candidates", self.candidates, 1)


@dataclass
class MedJointConfig:
    """Baseline: the target SwinUNETR trained on all tasks together, no experts, no prompt."""

    name: str = "med_joint"
    epochs: int = 5
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        in_range("epochs", self.epochs, 0)
        in_range("batch_size", self.batch_size, 1)
        in_range("lr", self.lr, 0.0)
        in_range("weight_decay", self.weight_decay, 0.0)


@dataclass
class MedExpertConfig:
    """Baseline: each expert on its own task (and, for the domain-shift table, on the others)."""

    name: str = "med_expert"
