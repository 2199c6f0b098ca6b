"""Schemas of the shiftadd task and its methods, with the reference code's names and defaults
(`parsers.py` of GATECH-EIC/ShiftAddLLM: wbits -> bits, bcq_round -> bcq_rounds,
apot_nums -> apot_terms)."""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.api import ConfigError, existing_path, in_range, one_of
from celine.llm.corpora import CORPORA

ALLOCATIONS = ("none", "ilp", "quota")


@dataclass
class ShiftAddTaskConfig:
    name: str = "shiftadd"
    corpus: str | None = None  # None: the corpus the model was trained on (required for model=hf)
    data_root: str | None = None
    nsamples: int = 128  # calibration windows from the train split (reference: 128 x 2048)
    calib_seqlen: int | None = None  # None: the model's training length (tiny_llama: 256)
    calib_seed: int = 0
    eval_tokens: int = 65_536  # cap on validation/test tokens scored
    window: int | None = None  # perplexity window; None: the model's training length
    batch_size: int = 8
    gemv_iters: int = 20  # batch-1 timing of the largest quantized layer (0: skip)

    def __post_init__(self) -> None:
        if self.corpus is not None:
            one_of("task.corpus", self.corpus, CORPORA)
        existing_path("task.data_root", self.data_root)
        in_range("task.nsamples", self.nsamples, 1)
        in_range("task.eval_tokens", self.eval_tokens, 2)
        in_range("task.batch_size", self.batch_size, 1)
        in_range("task.gemv_iters", self.gemv_iters, 0)
        for key in ("calib_seqlen", "window"):
            if getattr(self, key) is not None:
                in_range(f"task.{key}", getattr(self, key), 2)


def _check_groupsize(value: int, multiple: int = 1) -> None:
    if value == -1:
        return
    if value <= 0 or value % multiple:
        raise ConfigError(
            "method.groupsize", value, f"-1 (whole row/column) or a positive multiple of {multiple}"
        )


@dataclass
class AllocationMixin:
    """Mixed precision: per-layer widths in {2, 3, 4} instead of `bits` everywhere."""

    bit_alloc: str = "none"  # none | ilp (exact search, paper 4.3) | quota (reference script)
    # upper bound on the weight-count-weighted average of `ilp` (None: bits); setting it alone
    # (bit_alloc none) means ilp, so `method.avg_bits=2.2` is the paper's 2.2-bit setting
    avg_bits: float | None = None
    mix_bits: list[float] = field(default_factory=lambda: [0.0, 0.8, 0.2])  # quota: 1,2,3-bit

    def _check_allocation(self) -> None:
        one_of("method.bit_alloc", self.bit_alloc, ALLOCATIONS)
        if self.avg_bits is not None and self.bit_alloc == "none":
            self.bit_alloc = "ilp"
        if self.avg_bits is not None:
            in_range("method.avg_bits", self.avg_bits, 2, 4)
        if abs(sum(self.mix_bits) - 1.0) > 1e-6 or min(self.mix_bits) < 0:
            raise ConfigError(
                "method.mix_bits", self.mix_bits, "non-negative fractions summing to 1"
            )


@dataclass
class Fp16Config:
    """The unquantized model (in the hardware group's dtype)."""

    name: str = "fp16"


@dataclass
class RTNConfig(AllocationMixin):
    name: str = "rtn"
    bits: int = 3
    groupsize: int = -1
    sym: bool = False

    def __post_init__(self) -> None:
        in_range("method.bits", self.bits, 1, 8)
        _check_groupsize(self.groupsize)
        self._check_allocation()


@dataclass
class GPTQConfig(AllocationMixin):
    name: str = "gptq"
    bits: int = 3
    groupsize: int = -1
    sym: bool = False
    act_order: bool = False  # the reference's `--gptq` baseline runs without it
    blocksize: int = 128
    percdamp: float = 0.01

    def __post_init__(self) -> None:
        in_range("method.bits", self.bits, 1, 8)
        _check_groupsize(self.groupsize)
        in_range("method.blocksize", self.blocksize, 1)
        in_range("method.percdamp", self.percdamp, 0.0, 1.0)
        self._check_allocation()


@dataclass
class BCQRowwiseConfig(AllocationMixin):
    """LUT-GEMM's format: row-wise BCQ fitted on the weights alone (no calibration)."""

    name: str = "bcq_rowwise"
    bits: int = 3
    groupsize: int = -1  # -1: one set of q scales per row; g: per g columns of a row
    bcq_rounds: int = 50
    apot_terms: int = 0  # 0: float scales, as LUT-GEMM

    def __post_init__(self) -> None:
        in_range("method.bits", self.bits, 1, 4)
        _check_groupsize(self.groupsize)
        in_range("method.bcq_rounds", self.bcq_rounds, 0)
        in_range("method.apot_terms", self.apot_terms, 0, 3)
        self._check_allocation()


GEMV_KERNELS = ("triton", "cuda")


@dataclass
class ShiftAddLatConfig(AllocationMixin):
    """Ours (Lat.): one APoT scale set per 8 columns x row group, GPTQ error feedback."""

    name: str = "shiftadd_lat"
    bits: int = 3
    groupsize: int = -1  # -1: row groups of N/8 rows; g: g/8 rows (8 x g/8 = g weights/scale)
    bcq_rounds: int = 50
    apot_terms: int = 3
    act_order: bool = True  # over blocks of 8 columns
    blocksize: int = 128
    percdamp: float = 0.01
    pack: bool = True  # replace nn.Linear by ShiftAddLinear (packed planes + APoT codes)
    gemv_kernel: str = "triton"  # CUDA decode GEMV: triton (LUT kernels) | cuda (nvcc-built)

    def __post_init__(self) -> None:
        in_range("method.bits", self.bits, 1, 4)
        if self.gemv_kernel not in GEMV_KERNELS:
            raise ConfigError("method.gemv_kernel", self.gemv_kernel, " | ".join(GEMV_KERNELS))
        _check_groupsize(self.groupsize, 8)
        in_range("method.bcq_rounds", self.bcq_rounds, 0)
        in_range("method.apot_terms", self.apot_terms, 1, 3)
        in_range("method.blocksize", self.blocksize, 8)
        if self.blocksize % 8:
            raise ConfigError("method.blocksize", self.blocksize, "a multiple of 8")
        in_range("method.percdamp", self.percdamp, 0.0, 1.0)
        self._check_allocation()


@dataclass
class ShiftAddAccConfig(AllocationMixin):
    """Ours (Acc.): column-wise APoT scales fitted inside the GPTQ loop."""

    name: str = "shiftadd_acc"
    bits: int = 3
    groupsize: int = -1  # -1: one scale set per column; g: per g rows of a column
    bcq_rounds: int = 50
    apot_terms: int = 3
    act_order: bool = True
    incoherence: bool = True  # QuIP rescale + random rotations: in the code, not the paper
    blocksize: int = 128
    percdamp: float = 0.01

    def __post_init__(self) -> None:
        in_range("method.bits", self.bits, 1, 4)
        _check_groupsize(self.groupsize)
        in_range("method.bcq_rounds", self.bcq_rounds, 0)
        in_range("method.apot_terms", self.apot_terms, 1, 3)
        in_range("method.blocksize", self.blocksize, 1)
        in_range("method.percdamp", self.percdamp, 0.0, 1.0)
        self._check_allocation()
