"""Typed schemas of the groups the runner itself owns (hardware, tracking), and the small checks
that every schema (rooms' included) uses to fail early with the key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from celine.errors import ConfigError


def one_of(key: str, value: object, allowed: Iterable[object]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(key, value, "expected one of " + ", ".join(map(str, allowed)))


def in_range(key: str, value: float, low: float | None = None, high: float | None = None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(key, value, f"expected a value in [{lo}, {hi}]")


def existing_path(key: str, value: str | None, kind: str = "any") -> Path | None:
    """A local path the user promised is there: checked before any work starts."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if kind == "dir" and not path.is_dir():
        raise ConfigError(
            key, value, "expected an existing local directory", "nothing is downloaded"
        )
    if kind == "file" and not path.is_file():
        raise ConfigError(key, value, "expected an existing local file", "nothing is downloaded")
    if kind == "any" and not path.exists():
        raise ConfigError(key, value, "expected an existing local path", "nothing is downloaded")
    return path


DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass
class HardwareConfig:
    name: str = "cpu"
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    dtype: str = "float32"  # float32 | bfloat16 | float16 | auto (bf16 on GPUs that have it)
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    deterministic: bool = True  # torch.use_deterministic_algorithms(warn_only=True), cudnn flags
    tf32: bool = False  # allow TF32 matmuls on CUDA

    def __post_init__(self) -> None:
        if not (self.device in DEVICES or self.device.startswith("cuda:")):
            one_of("hardware.device", self.device, DEVICES)
        one_of("hardware.dtype", self.dtype, DTYPES)
        if self.threads is not None:
            in_range("hardware.threads", self.threads, 1)


@dataclass
class TrackingConfig:
    backend: str = "mlflow"  # mlflow | none
    uri: str | None = None  # None: sqlite:///<outputs>/mlflow.db
    artifact_root: str | None = None  # None: <outputs>/mlartifacts
    experiment: str | None = None  # None: celine/<task>

    def __post_init__(self) -> None:
        one_of("tracking.backend", self.backend, ("mlflow", "none"))
