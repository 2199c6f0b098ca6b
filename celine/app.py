"""The Hydra application behind `celine run` and `celine.api.run/multirun`.

`job` is one Hydra job. `launch_run` and `launch_multirun` drive Hydra's own `Hydra.run` and
`Hydra.multirun` (the configured sweeper and launcher, the callbacks that open the sweep's parent
MLflow run) the way `@hydra.main` does, but hand back what the jobs produced instead of exiting.
`main` is `celine run`: the plain run and sweep go through those launchers; the flags that only
show something (--help, --cfg, --info, shell completion) go to `@hydra.main` unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from celine import configs, paths  # noqa: F401  (configs registers ${celine_outputs:})
from celine.errors import CelineError, Interrupted

if TYPE_CHECKING:
    from celine.api import RunResult

log = logging.getLogger("celine")

CONFIG_NAME = "config"


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


def job(cfg: DictConfig) -> float | None:
    """One Hydra job. A single run raises what the run raised (`launch_run` turns it into a
    result); a sweep job records its failure and returns NaN so the other jobs go on."""
    from celine.experiment import Experiment

    info = job_info(cfg)
    try:
        metrics = Experiment(cfg, info).run()
    except CelineError as err:
        # a problem the user can fix: one paragraph, no traceback (HYDRA_FULL_ERROR=1 shows it)
        log.error("%s", err)
        if info.sweep_dir is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(err, Interrupted):
            # Ctrl-C deferred to a safe point by training: stop the sweep, not just this job
            raise KeyboardInterrupt(str(err)) from err
        _mark_failed(info.output_dir, err)
        return math.nan
    except Exception as err:
        if info.sweep_dir is None:
            raise
        # one failed job must not stop the sweep: it is recorded FAILED, and the sweep's results
        # (launch_multirun) say so
        log.exception("job %s failed", info.job_num)
        _mark_failed(info.output_dir, err)
        return math.nan
    key = cfg.get("optimized_metric")
    return float(metrics[key]) if key else None


def _mark_failed(output_dir: Path, err: BaseException) -> None:
    """Config errors never open a run; leave a results.json so the sweep's results see them."""
    import json

    path = output_dir / "results.json"
    if not path.exists():
        output_dir.mkdir(parents=True, exist_ok=True)
        doc = {"status": "FAILED", "error": f"{type(err).__name__}: {err}", "metrics": {}}
        path.write_text(json.dumps(doc, indent=2) + "\n")


# -- launching (celine.api.run / multirun) ------------------------------------------------------


def _hydra():
    """Hydra's application object (what `@hydra.main` builds), inside `configs.hydra_context`."""
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().hydra


def launch_run(overrides: list[str], config_dir: str | Path | None = None) -> RunResult:
    from celine.api import RunResult

    where: dict[str, Path] = {}

    def task_function(cfg: DictConfig) -> float | None:
        where["run_dir"] = Path(HydraConfig.get().runtime.output_dir)
        return job(cfg)

    # as `@hydra.main` does for a plain run (a preset's hydra.mode cannot turn it into a sweep)
    overrides = [*_drop_key(overrides, "hydra.mode"), "hydra.mode=RUN"]
    with configs.hydra_context(Path(config_dir) if config_dir else None):
        app = _hydra()
        try:
            app.run(CONFIG_NAME, task_function, overrides, with_log_configuration=True)
        except CelineError as err:
            # raised before the run opened (no results.json): a config problem, the caller's
            run_dir = where.get("run_dir")
            if run_dir is None or not (run_dir / "results.json").is_file():
                raise
            return RunResult.from_dir(run_dir, exception=err)
        except Exception as err:
            if "run_dir" not in where:
                raise  # composition failed: no job ran
            return RunResult.from_dir(where["run_dir"], exception=err)
    return RunResult.from_dir(where["run_dir"])


def launch_multirun(overrides: list[str], config_dir: str | Path | None = None) -> list[RunResult]:
    from celine.api import RunResult

    # as `@hydra.main -m` does: HydraConfig says MULTIRUN, so each job finds the sweep's parent run
    overrides = [*_drop_key(overrides, "hydra.mode"), "hydra.mode=MULTIRUN"]
    with configs.hydra_context(Path(config_dir) if config_dir else None):
        app = _hydra()
        overrides, sweep_dir = _pin_sweep_dir(app, overrides)
        returns = app.multirun(CONFIG_NAME, job, overrides, with_log_configuration=True)
    # The basic and joblib sweepers return each job's JobReturn; others (Optuna) return None:
    # then every job is found by its results.json in the sweep folder, which all launchers share.
    job_dirs = [Path(r.hydra_cfg.hydra.runtime.output_dir) for r in _job_returns(returns)]
    if not job_dirs and sweep_dir is not None:
        job_dirs = sorted(
            (p.parent for p in sweep_dir.glob("*/results.json")), key=lambda d: _job_num(d)
        )
    return [RunResult.from_dir(d) for d in job_dirs]


def _pin_sweep_dir(app, overrides: list[str]) -> tuple[list[str], Path | None]:
    """Resolve the sweep folder once (its ${now:} included) and pass it as an override, so the
    jobs, the callbacks and this function agree on where the sweep's results are."""
    try:
        cfg = app.compose_config(
            CONFIG_NAME, overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False
        )
        sweep_dir = Path(str(OmegaConf.select(cfg, "hydra.sweep.dir"))).resolve()
    except Exception:  # e.g. a sweep dir interpolating ${hydra:...}: let Hydra resolve it
        return overrides, None
    from celine.api import _quoted

    pinned = [*_drop_key(overrides, "hydra.sweep.dir"), f"hydra.sweep.dir={_quoted(sweep_dir)}"]
    return pinned, sweep_dir


def _drop_key(overrides: list[str], key: str) -> list[str]:
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+") != key]


def _job_returns(returns) -> list:
    from hydra.core.utils import JobReturn

    if isinstance(returns, JobReturn):
        return [returns]
    if isinstance(returns, list | tuple):
        return [r for item in returns for r in _job_returns(item)]
    return []


def _job_num(folder: Path) -> int:
    return int(folder.name) if folder.name.isdigit() else 1 << 30


# -- `celine run` ---------------------------------------------------------------------------------

# flags that only show something: Hydra's own main handles them as it always has
_LAUNCH_FLAGS = {"-m", "--multirun", "-r", "--run"}


def main(argv: list[str]) -> int:
    """`celine run [-m] overrides...`: the exit code comes from the results the runs returned."""
    if any(a.startswith("-") and a not in _LAUNCH_FLAGS for a in argv):
        sys.argv = [sys.argv[0], *argv]
        configs.register_defaults()
        hydra.main(config_path=str(paths.config_dir()), config_name=CONFIG_NAME,
                   version_base="1.3")(job)()  # fmt: skip
        return 0
    from celine import api

    overrides = [a for a in argv if a not in _LAUNCH_FLAGS]
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        if "-m" in argv or "--multirun" in argv:
            results = api.multirun(overrides)
            failed = [r for r in results if not r.ok]
            if failed or not results:
                log.error("%d of %d jobs did not finish", len(failed), len(results))
            return 1 if failed or not results else 0
        result = api.run(overrides)
    except CelineError as err:
        if full_error:
            raise
        print(f"celine: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # Hydra's composition errors: its message, no traceback
        if full_error or not _is_config_problem(err):
            raise
        print(f"celine: {err}", file=sys.stderr)
        return 1
    if result.ok:
        return 0
    if isinstance(result.exception, CelineError) and not full_error:
        return 2  # already logged as one paragraph by `job`
    if result.exception is not None:
        traceback.print_exception(result.exception, file=sys.stderr)
    else:
        print(f"celine: run {result.status}: {result.error}", file=sys.stderr)
    return 1


def _is_config_problem(err: Exception) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, HydraException | OmegaConfBaseException)
