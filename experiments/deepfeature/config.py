"""Schemas of the deepfeature task (data, the model under test, the mutated candidate pool) and
its methods (DeepFeature's selection and fuzzer, and their baselines)."""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.api import ConfigError, existing_path, in_range, one_of

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
BASELINES = ("random", "nc", "kmnc", "nbc", "gini", "lsa")


@dataclass
class DeepFeatureTaskConfig:
    name: str = "deepfeature"
    data: str = "digits"
    data_root: str | None = None
    size: int | None = 16
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    # the model under test (trained once per config and seed, cached under outputs/models)
    epochs: int = 40
    lr: float = 0.002
    optimizer: str = "adam"
    batch_size: int = 64
    weight_decay: float = 5e-4
    layer: str | None = None  # the tested layer's module name; None: the last conv layer
    # the candidate pool: every test image under this many benign mutations
    mutations_per_image: int = 5
    mutation_strength: float = 1.0  # 1 = the official parameter ranges
    budget: float = 0.2  # selection budget as a fraction of the pool (official: 2000 of 10000)
    model_seed: int | None = None  # None: the run's seed

    def __post_init__(self) -> None:
        one_of("task.data", self.data, DATASETS)
        if self.data != "digits" and self.data_root is None:
            raise ConfigError("task.data_root", None, f"{self.data} is read from a local folder")
        existing_path("task.data_root", self.data_root)
        if self.size is not None:
            in_range("task.size", self.size, 8)
        in_range("task.epochs", self.epochs, 1)
        in_range("task.lr", self.lr, 1e-8)
        one_of("task.optimizer", self.optimizer, ("sgd", "adam"))
        in_range("task.batch_size", self.batch_size, 1)
        in_range("task.mutations_per_image", self.mutations_per_image, 1)
        in_range("task.mutation_strength", self.mutation_strength, 0.0, 3.0)
        in_range("task.budget", self.budget, 1e-4, 1.0)


@dataclass
class _Repair:
    """Retraining with the selected (or fuzzed) cases added to the training set (official:
    SGD lr 1e-3, momentum 0.99 Nesterov, wd 5e-4, batch 512, 36 epochs; here cosine SGD)."""

    repair: bool = False
    repair_epochs: int = 10
    repair_lr: float = 0.001
    repair_batch_size: int = 64

    def _check_repair(self) -> None:
        in_range("method.repair_epochs", self.repair_epochs, 1)
        in_range("method.repair_lr", self.repair_lr, 1e-8)
        in_range("method.repair_batch_size", self.repair_batch_size, 1)


@dataclass
class DeepFeatureConfig(_Repair):
    name: str = "deepfeature"
    selection: str = "topk"  # topk (commented out in the official code) | kselection (official)
    vs_size: int = 5  # the vulnerable set: the maps with the highest FVS
    fvs_data: str = "val"  # val: FVS from mutated validation images | pool: from the pool itself
    # the feature-map attack score of every map (reported beside FVS; SVHN LeNet-5 script values)
    fas_eps: float = 0.15
    fas_alpha: float = 0.05
    fas_steps: int = 20
    fas_samples: int = 256
    # baselines measured on the same pool in the same run (each is also its own method)
    # (the controls least_vulnerable, random_maps, origin_distance are always measured)
    baselines: list[str] = field(
        default_factory=lambda: ["random", "nc", "kmnc", "nbc", "gini", "lsa"]
    )
    nc_threshold: float = 0.5
    kmnc_k: int = 10

    def __post_init__(self) -> None:
        self._check_repair()
        one_of("method.selection", self.selection, ("kselection", "topk"))
        in_range("method.vs_size", self.vs_size, 1)
        one_of("method.fvs_data", self.fvs_data, ("val", "pool"))
        in_range("method.fas_eps", self.fas_eps, 0.0, 1.0)
        in_range("method.fas_alpha", self.fas_alpha, 0.0, 1.0)
        in_range("method.fas_steps", self.fas_steps, 0)
        in_range("method.fas_samples", self.fas_samples, 1)
        for b in self.baselines:
            one_of("method.baselines", b, BASELINES)
        in_range("method.nc_threshold", self.nc_threshold, 0.0, 1.0)
        in_range("method.kmnc_k", self.kmnc_k, 1)


@dataclass
class RandomSelectionConfig(_Repair):
    name: str = "df_random"


@dataclass
class NCSelectionConfig(_Repair):
    name: str = "df_nc"
    nc_threshold: float = 0.5  # DeepXplore: outputs min-max scaled per layer, then thresholded
    scale: bool = True

    def __post_init__(self) -> None:
        self._check_repair()
        in_range("method.nc_threshold", self.nc_threshold, 0.0)


@dataclass
class KMNCSelectionConfig(_Repair):
    name: str = "df_kmnc"
    kmnc_k: int = 10  # DeepGauge used k=1000 on large test sets; 10 fits a pool of ~1.8k inputs

    def __post_init__(self) -> None:
        self._check_repair()
        in_range("method.kmnc_k", self.kmnc_k, 1)


@dataclass
class NBCSelectionConfig(_Repair):
    name: str = "df_nbc"


@dataclass
class GiniSelectionConfig(_Repair):
    name: str = "df_gini"


@dataclass
class LSASelectionConfig(_Repair):
    name: str = "df_lsa"
    var_threshold: float = 1e-5  # SA's code drops trace dimensions with lower training variance

    def __post_init__(self) -> None:
        self._check_repair()
        in_range("method.var_threshold", self.var_threshold, 0.0)


@dataclass
class _FuzzConfig:
    eps: float = 0.1  # official fuzzer: eps 0.1, alpha 0.05, 3 steps per restart
    alpha: float = 0.05
    steps: int = 3
    budget: float = 300.0  # gradient steps (budget_unit=steps) or seconds (official: 300 s)
    budget_unit: str = "steps"  # steps: deterministic and equal work | seconds: wall clock
    seeds: int = 256  # seed images from the training set (official: all, batch 1)
    batch: int = 32  # seeds attacked together (official: 1)
    restarts: int = 3  # random restarts per seed batch before moving on (official: until 1 s)

    def _check_fuzz(self) -> None:
        in_range("method.eps", self.eps, 0.0, 1.0)
        in_range("method.alpha", self.alpha, 0.0, 1.0)
        in_range("method.steps", self.steps, 1)
        in_range("method.budget", self.budget, 1e-3)
        one_of("method.budget_unit", self.budget_unit, ("steps", "seconds"))
        in_range("method.seeds", self.seeds, 1)
        in_range("method.batch", self.batch, 1)
        in_range("method.restarts", self.restarts, 1)


@dataclass
class FuzzConfig(_FuzzConfig):
    name: str = "df_fuzz"
    vs_size: int = 5
    fvs_data: str = "val"

    def __post_init__(self) -> None:
        self._check_fuzz()
        in_range("method.vs_size", self.vs_size, 1)
        one_of("method.fvs_data", self.fvs_data, ("val", "pool"))


@dataclass
class CoverageFuzzConfig(_FuzzConfig):
    name: str = "df_coverage_fuzz"
    nc_threshold: float = 0.5

    def __post_init__(self) -> None:
        self._check_fuzz()
        in_range("method.nc_threshold", self.nc_threshold, 0.0)
