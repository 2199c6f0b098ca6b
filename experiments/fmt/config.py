"""Schemas of the fmt task (data, attack, poisoned training) and its defences."""

from __future__ import annotations

from dataclasses import dataclass

from celine.api import ConfigError, existing_path, in_range, one_of

ATTACKS = ("badnets", "blend", "wanet", "sig")  # keep in step with attacks.ATTACKS (a test checks)
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class FMTTaskConfig:
    name: str = "fmt"
    data: str = "digits"
    data_root: str | None = None
    size: int | None = 16  # None: native size (CIFAR-10 32); digits are upsampled from 8x8
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    # the attack (BackdoorBench defaults: all-to-one, target 0, poison ratio 0.1, 3x3 patch)
    attack: str = "badnets"
    target: int = 0
    poison_ratio: float = 0.1
    patch_size: int = 3
    # BadNets variants the defence was not tuned on (robustness): square | checker | cross,
    # bottom_right | top_left | top_right | bottom_left | center
    patch_shape: str = "square"
    patch_position: str = "bottom_right"
    blend_alpha: float = 0.2
    wanet_k: int = 4
    wanet_s: float = 4.0  # paper: 0.5 at 32 px; s/2 pixels of warp, too weak on 16 px digits
    sig_delta: float = 0.0784  # 20/255
    sig_freq: int = 6
    # training of the backdoored model (BackdoorBench: SGD 0.01, cosine, 100 epochs, batch 128)
    epochs: int = 40
    lr: float = 0.002
    optimizer: str = "adam"
    batch_size: int = 64
    weight_decay: float = 5e-4
    # the defender's clean data: a class-balanced fraction of the clean training set
    clean_ratio: float = 0.1
    # ground-truth backdoor maps: per conv layer, this fraction of maps most changed (mean
    # absolute change) by the real trigger on clean test images
    backdoor_map_fraction: float = 0.25
    model_seed: int | None = None  # None: the run's seed (data split, poisoning and init)
    # below this ASR the trained model is not backdoored (a 3-epoch smoke model can miss it:
    # ASR .26): a defence's low ASR / high RA would be no evidence, so they are reported missing
    # with the reason (`Result.missing`) instead of as a win. Celine's own guard, not the paper's.
    min_backdoor_asr: float = 0.5

    def __post_init__(self) -> None:
        one_of("task.data", self.data, DATASETS)
        if self.data != "digits" and self.data_root is None:
            raise ConfigError("task.data_root", None, f"{self.data} is read from a local folder")
        existing_path("task.data_root", self.data_root)
        if self.size is not None:
            in_range("task.size", self.size, 8)
        one_of("task.attack", self.attack, ATTACKS)
        in_range("task.target", self.target, 0)
        in_range("task.poison_ratio", self.poison_ratio, 0.0, 1.0)
        in_range("task.patch_size", self.patch_size, 1)
        one_of("task.patch_shape", self.patch_shape, ("square", "checker", "cross"))
        one_of(
            "task.patch_position", self.patch_position,
            ("bottom_right", "top_left", "top_right", "bottom_left", "center"),
        )  # fmt: skip
        if self.size is not None and self.patch_size > self.size:
            raise ConfigError(
                "task.patch_size", self.patch_size, f"expected <= task.size ({self.size})"
            )
        in_range("task.blend_alpha", self.blend_alpha, 0.0, 1.0)
        in_range("task.wanet_k", self.wanet_k, 2)
        in_range("task.wanet_s", self.wanet_s, 0.0)
        in_range("task.sig_delta", self.sig_delta, 0.0, 1.0)
        in_range("task.sig_freq", self.sig_freq, 1)
        in_range("task.epochs", self.epochs, 1)
        in_range("task.lr", self.lr, 1e-8)
        one_of("task.optimizer", self.optimizer, OPTIMIZERS)
        in_range("task.batch_size", self.batch_size, 1)
        in_range("task.clean_ratio", self.clean_ratio, 1e-4, 1.0)
        in_range("task.backdoor_map_fraction", self.backdoor_map_fraction, 0.0, 1.0)
        in_range("task.min_backdoor_asr", self.min_backdoor_asr, 0.0, 1.0)


@dataclass
class FineTuneConfig:
    """Fine-tuning on the clean subset, shared by every defence (FMP's recipe: SGD 0.01,
    momentum 0.9, wd 5e-4, cosine to eta_min 1e-4; BackdoorBench FT: 100 epochs, batch 256)."""

    finetune_epochs: int = 60
    finetune_lr: float = 0.01
    finetune_momentum: float = 0.9
    finetune_weight_decay: float = 5e-4
    finetune_batch_size: int = 32
    finetune_eta_min: float = 1e-4
    keep_mask: bool = False  # False: pruned weights may regrow during fine-tuning (as FMP)

    def _check_finetune(self) -> None:
        in_range("method.finetune_epochs", self.finetune_epochs, 0)
        in_range("method.finetune_lr", self.finetune_lr, 0.0)
        in_range("method.finetune_momentum", self.finetune_momentum, 0.0, 1.0)
        in_range("method.finetune_batch_size", self.finetune_batch_size, 1)
        in_range("method.finetune_eta_min", self.finetune_eta_min, 0.0)


@dataclass
class FMTConfig(FineTuneConfig):
    """FMT/FMP: per map, a feature-map attack from a random start; score = accuracy on it."""

    name: str = "fmt"
    # fgsm (fgsm-feature.py, FMP's main script): x0 = clip(x + alpha * sign noise), drawn once
    # for every map, then ONE step x0 + eps * sign(grad) clipped to [0, 1], with no eps-ball
    # (a pixel moves up to alpha + eps). pgd: `steps` of alpha from a random start per map,
    # projected onto the eps-ball around x (pgd-feature.py's projection; Celine's old default)
    map_attack: str = "fgsm"
    eps: float = 0.1  # fgsm: the step; pgd: the L-inf radius (FMP's yaml values are not public)
    alpha: float = 0.1  # the random start's amplitude (random_start=sign); pgd: also the step
    steps: int = 1  # pgd only; fgsm is one step
    random_start: str = "sign"  # sign (FMP) | uniform | none (no start: no gradient, all tied)
    attack_samples: int = 1024  # clean images attacked per map, at most the defender's subset
    # (pgd-feature.py: one batch of 1024 on CIFAR-10)
    prune_ratio: float | None = 0.25  # per layer; None = the paper's N // 64 rule
    selection: str = "lowest"  # lowest (fgsm-feature.py) | kmeans (pgd-feature.py minority)
    score: str = "accuracy"  # accuracy (FMP) | mode_share (share of the most common prediction)

    def __post_init__(self) -> None:
        self._check_finetune()
        one_of("method.map_attack", self.map_attack, ("fgsm", "pgd"))
        in_range("method.eps", self.eps, 0.0, 1.0)
        in_range("method.alpha", self.alpha, 0.0, 1.0)
        in_range("method.steps", self.steps, 1)
        if self.map_attack == "fgsm" and self.steps != 1:
            raise ConfigError(
                "method.steps", self.steps, "map_attack=fgsm takes one step; use map_attack=pgd"
            )
        one_of("method.random_start", self.random_start, ("sign", "uniform", "none"))
        in_range("method.attack_samples", self.attack_samples, 1)
        if self.prune_ratio is not None:
            in_range("method.prune_ratio", self.prune_ratio, 0.0, 1.0)
        one_of("method.selection", self.selection, ("lowest", "kmeans"))
        one_of("method.score", self.score, ("accuracy", "mode_share"))


@dataclass
class NoDefenseConfig:
    name: str = "fmt_none"


@dataclass
class FineTuneOnlyConfig(FineTuneConfig):
    name: str = "fmt_finetune"

    def __post_init__(self) -> None:
        self._check_finetune()


@dataclass
class RandomPruneConfig(FineTuneConfig):
    """The same number of maps per layer as FMT, chosen at random, then the same fine-tuning."""

    name: str = "fmt_random_prune"
    prune_ratio: float | None = 0.25

    def __post_init__(self) -> None:
        self._check_finetune()
        if self.prune_ratio is not None:
            in_range("method.prune_ratio", self.prune_ratio, 0.0, 1.0)


@dataclass
class FinePruningConfig(FineTuneConfig):
    """Fine-Pruning (Liu et al. 2018): prune the last conv stage's output channels (after the
    residual add) in ascending order of mean activation on clean data until clean accuracy falls
    by more than `acc_drop` or `max_ratio` of them are pruned, then fine-tune with them masked."""

    name: str = "fmt_fine_pruning"
    max_ratio: float = 0.8  # BackdoorBench FP: ratio 0.8
    acc_drop: float = 0.1  # BackdoorBench FP: acc_ratio 0.1
    keep_mask: bool = True  # the paper's pruned neurons stay removed through fine-tuning

    def __post_init__(self) -> None:
        self._check_finetune()
        if not self.keep_mask:
            raise ConfigError(
                "method.keep_mask", False, "Fine-Pruning masks the stage's output channels "
                "(there are no conv rows to zero after the residual add); keep it true",
            )  # fmt: skip
        in_range("method.max_ratio", self.max_ratio, 0.0, 1.0)
        in_range("method.acc_drop", self.acc_drop, 0.0, 1.0)


@dataclass
class NADConfig(FineTuneConfig):
    """Neural Attention Distillation (Li et al. 2021) with BackdoorBench's defaults: a teacher
    fine-tuned for `te_epochs`, then the backdoored model trained for `finetune_epochs` with
    cross-entropy + beta_k * attention MSE on the last three stages (beta1 the earliest)."""

    name: str = "fmt_nad"
    te_epochs: int = 10
    beta1: float = 500.0
    beta2: float = 1000.0
    beta3: float = 1000.0
    p: float = 2.0

    def __post_init__(self) -> None:
        self._check_finetune()
        in_range("method.te_epochs", self.te_epochs, 0)
        for key in ("beta1", "beta2", "beta3"):
            in_range(f"method.{key}", getattr(self, key), 0.0)
        in_range("method.p", self.p, 1e-3)


@dataclass
class OracleConfig(RandomPruneConfig):
    """Upper bound: the maps the real trigger changes most (unknown to a defender)."""

    name: str = "fmt_oracle"
