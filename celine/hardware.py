"""Turn the hardware group into a device, a dtype and seeded, configured torch state."""

from __future__ import annotations

import os
import random

from celine.api import Hardware
from celine.errors import ConfigError
from celine.schema import HardwareConfig


def resolve(cfg: HardwareConfig) -> Hardware:
    import torch

    has_cuda = torch.cuda.is_available()
    device = cfg.device
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device.startswith("cuda") and not has_cuda:
        raise ConfigError(
            "hardware.device",
            cfg.device,
            "no CUDA device is visible here",
            "use hardware=cpu or auto",
        )
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = (
            "bfloat16"
            if device.startswith("cuda") and torch.cuda.is_bf16_supported()
            else "float32"
        )
    if device == "cpu" and dtype == "float16":
        raise ConfigError(
            "hardware.dtype", dtype, "float16 is for GPUs; on the CPU use float32 or bfloat16"
        )
    return Hardware(cfg.name, device, dtype, cfg.threads, cfg.deterministic)


def configure(hw: Hardware, cfg: HardwareConfig, seed: int) -> None:
    """Seed every generator and apply thread and determinism settings."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if hw.threads:
        torch.set_num_threads(hw.threads)
    if hw.deterministic:
        # warn_only: an op without a deterministic kernel warns instead of aborting the run
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    if hw.device.startswith("cuda"):
        torch.cuda.manual_seed_all(seed)
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
