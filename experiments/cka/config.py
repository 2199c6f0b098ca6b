"""Schemas of the cka task and its methods. Names follow the paper's vocabulary (temperature T,
contrastive temperature tau, loss weights lambda_*) and CFL's code for its baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.api import ConfigError, existing_path, in_range, one_of

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
ARCHS = ("lenet5", "resnet20", "vgg16_bn", "preact_resnet18")  # celine.vision.models.ARCHS


@dataclass
class CKATaskConfig:
    name: str = "cka"
    data: str = "digits"
    data_root: str | None = None
    size: int | None = None  # None: the native image size (8 for digits)
    split_seed: int = 0  # the train/val/test split; fixed so a seed sweep varies the models only
    val_fraction: float = 0.1
    test_fraction: float = 0.3  # digits only (others keep their official test set)
    # One list of classes per teacher (disjoint). With split_by=coarse (CIFAR-100) the ids are
    # superclasses and each teacher gets all the fine classes of its superclasses.
    splits: list[list[int]] = field(default_factory=lambda: [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    split_by: str = "fine"
    teacher_arch: str | None = None  # None: model.arch
    teacher_width: float = 2.0
    teacher_epochs: int = 40
    teacher_lr: float = 2e-3
    teacher_batch_size: int = 64
    teacher_weight_decay: float = 0.0
    teacher_optimizer: str = "adam"
    teacher_seed: int | None = None  # None: the run's seed
    # the student's initial weights: "default" (PyTorch's) or "kaiming" (Kaiming-normal, zero
    # biases); the LeNet student starts slowly under the default (see the README)
    student_init: str = "default"
    plot: str = "tsne"  # tsne | pca: the 2-D view of the student's representation
    plot_points: int = 600
    # torch intra-op threads for every teacher and student step of a run, whatever
    # hardware.threads says: float sums split over another number of threads add up in another
    # order, and over 60 epochs that moved test accuracy by a few images per seed (the size of
    # the effect under study). None: hardware.threads (faster; results then depend on it).
    threads: int | None = 1

    def __post_init__(self) -> None:
        one_of("task.data", self.data, DATASETS)
        if self.data != "digits" and self.data_root is None:
            raise ConfigError("task.data_root", None, f"{self.data} is read from a local folder")
        existing_path("task.data_root", self.data_root)
        if self.size is not None:
            in_range("task.size", self.size, 4)
        in_range("task.val_fraction", self.val_fraction, 0.0, 0.9)
        in_range("task.test_fraction", self.test_fraction, 0.01, 0.9)
        one_of("task.split_by", self.split_by, ("fine", "coarse"))
        if self.split_by == "coarse" and self.data != "cifar100":
            raise ConfigError(
                "task.split_by", "coarse", "superclass splits exist for cifar100 only"
            )
        splits = [list(s) for s in self.splits]
        flat = [int(c) for s in splits for c in s]
        if len(splits) < 2 or any(len(s) < 2 for s in splits):
            raise ConfigError("task.splits", self.splits, "expected >= 2 teachers of >= 2 classes")
        if len(set(flat)) != len(flat) or min(flat) < 0:
            raise ConfigError("task.splits", self.splits, "expected disjoint non-negative ids")
        if self.teacher_arch is not None:
            one_of("task.teacher_arch", self.teacher_arch, ARCHS)
        in_range("task.teacher_width", self.teacher_width, 1e-3)
        in_range("task.teacher_epochs", self.teacher_epochs, 1)
        in_range("task.teacher_lr", self.teacher_lr, 1e-8)
        in_range("task.teacher_batch_size", self.teacher_batch_size, 1)
        in_range("task.teacher_weight_decay", self.teacher_weight_decay, 0.0)
        one_of("task.teacher_optimizer", self.teacher_optimizer, ("adam", "sgd"))
        one_of("task.student_init", self.student_init, ("default", "kaiming"))
        one_of("task.plot", self.plot, ("pca", "tsne"))
        in_range("task.plot_points", self.plot_points, 10)
        if self.threads is not None:
            in_range("task.threads", self.threads, 1)


@dataclass
class StudentTraining:
    """How every student is optimised (shared by all student methods, so they differ only in
    their objective)."""

    epochs: int = 60
    lr: float = 2e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    head_lr_scale: float = 1.0  # projection heads / CFL blocks: lr x this (CFL's code uses 10)

    def _check(self) -> None:
        in_range("method.epochs", self.epochs, 1)
        in_range("method.lr", self.lr, 1e-8)
        in_range("method.batch_size", self.batch_size, 4)
        in_range("method.weight_decay", self.weight_decay, 0.0)
        in_range("method.head_lr_scale", self.head_lr_scale, 1e-6)


@dataclass
class CKAConfig(StudentTraining):
    name: str = "cka"
    T: float = 4.0  # temperature of the task-level soft targets
    tau: float = 0.1  # temperature of the intra- and inter-model contrastive losses
    tau_align: float = 0.5  # temperature of the sample-level similarity distributions
    lambda_kd: float = 1.0
    lambda_intra: float = 1.0
    lambda_inter: float = 1.0
    lambda_align: float = 1.0
    proj_dim: int = 64  # the common representation space
    proj_hidden: int = 128
    # inter-model pairs: "owner" contrasts a student anchor only with the teacher whose task
    # owns its pseudo-class; "all" with every teacher
    inter_pairs: str = "owner"
    # intra-model contrast also inside each teacher's projected space (keeps those spaces
    # class-structured, so the alignment target does not collapse)
    teacher_intra: bool = True

    def __post_init__(self) -> None:
        self._check()
        for key in ("T", "tau", "tau_align"):
            in_range(f"method.{key}", getattr(self, key), 1e-4)
        for key in ("lambda_kd", "lambda_intra", "lambda_inter", "lambda_align"):
            in_range(f"method.{key}", getattr(self, key), 0.0)
        in_range("method.proj_dim", self.proj_dim, 2)
        in_range("method.proj_hidden", self.proj_hidden, 2)
        one_of("method.inter_pairs", self.inter_pairs, ("owner", "all"))


@dataclass
class ConcatTeachersConfig:
    name: str = "cka_concat_teachers"


@dataclass
class VanillaKAConfig(StudentTraining):
    name: str = "cka_vanilla_ka"
    T: float = 4.0

    def __post_init__(self) -> None:
        self._check()
        in_range("method.T", self.T, 1e-4)


@dataclass
class CFLConfig(StudentTraining):
    name: str = "cka_cfl"
    T: float = 4.0
    hidden: int | None = None  # None: student feature width // 4, as in CFL's code
    sigmas: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.05, 0.1, 0.2, 1.0, 2.0])
    lambda_kd: float = 1.0
    lambda_mmd: float = 1.0
    lambda_recon: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        in_range("method.T", self.T, 1e-4)
        if self.hidden is not None:
            in_range("method.hidden", self.hidden, 2)
        if not self.sigmas or min(self.sigmas) <= 0:
            raise ConfigError("method.sigmas", self.sigmas, "expected positive kernel widths")
        for key in ("lambda_kd", "lambda_mmd", "lambda_recon"):
            in_range(f"method.{key}", getattr(self, key), 0.0)


@dataclass
class SupervisedConfig(StudentTraining):
    name: str = "cka_supervised"

    def __post_init__(self) -> None:
        self._check()
