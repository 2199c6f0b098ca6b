"""The Hydra application behind `celine run`: one call of `job` per Hydra job."""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from celine import configs, paths  # noqa: F401  (configs registers ${celine_outputs:})
from celine.errors import CelineError, Interrupted

log = logging.getLogger("celine")


def job_info(cfg: DictConfig):
    from celine.experiment import JobInfo

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return JobInfo(
        output_dir=Path(hc.runtime.output_dir),
        overrides=list(hc.overrides.task),
        choices=dict(hc.runtime.choices),
        sweep_dir=Path(hc.sweep.dir) if multirun else None,
        job_num=hc.job.num if multirun else None,
    )


@hydra.main(config_path=str(paths.config_dir()), config_name="config", version_base="1.3")
def job(cfg: DictConfig) -> float | None:
    from celine.experiment import Experiment

    info = job_info(cfg)
    try:
        metrics = Experiment(cfg, info).run()
    except CelineError as err:
        # a problem the user can fix: one paragraph, no traceback (HYDRA_FULL_ERROR=1 shows it)
        log.error("%s", err)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(err, Interrupted) and info.sweep_dir is not None:
            # Ctrl-C deferred to a safe point by training: stop the sweep, not just this job
            raise KeyboardInterrupt(str(err)) from err
        if info.sweep_dir is None:
            sys.exit(130 if isinstance(err, Interrupted) else 2)
        _mark_failed(info.output_dir, err)
        return math.nan
    except Exception as err:
        if info.sweep_dir is None:
            raise
        # one failed job must not stop the sweep; it is recorded FAILED, and `celine run -m`
        # exits non-zero at the end (see tracking.callbacks)
        log.exception("job %s failed", info.job_num)
        _mark_failed(info.output_dir, err)
        return math.nan
    key = cfg.get("optimized_metric")
    return float(metrics[key]) if key else None


def _mark_failed(output_dir: Path, err: BaseException) -> None:
    """Config errors never open a run; leave a results.json so the sweep summary sees them."""
    import json

    path = output_dir / "results.json"
    if not path.exists():
        output_dir.mkdir(parents=True, exist_ok=True)
        doc = {"status": "FAILED", "error": f"{type(err).__name__}: {err}", "metrics": {}}
        path.write_text(json.dumps(doc, indent=2) + "\n")
