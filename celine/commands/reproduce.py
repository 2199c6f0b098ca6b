"""`celine reproduce task=X [overrides]`: a room's headline table from one command.

Runs `conf/experiment/X_headline.yaml` (see `celine.headline`) as ONE Hydra multirun (one parent
MLflow run, one child per job, the same path as `celine run -m`), then builds the table from the
sweep folder: per method n seeds, mean and 95% interval of each `reproduce.metrics`, and the
paired difference against `reproduce.baseline` with its interval and p. The table is written to
the sweep folder (headline.md, headline.csv, headline.png), attached to the parent run, and
printed. Extra overrides pass through to every job (e.g. smaller sizes, `seed=range(0,2)`).

`celine reproduce --list` shows each room's preset and its expected wall time on a 2-core CPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from celine import headline

USAGE = """usage: celine reproduce task=X [overrides ...]
       celine reproduce --list"""


def main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or "").split("\n\n", 1)[1])
        return 0 if args else 2
    if args[0] == "--list":
        return _list()
    key, _, task = args[0].partition("=")
    if key != "task" or not task:
        print(
            f"celine reproduce: first argument must be task=NAME, got {args[0]!r}\n{USAGE}",
            file=sys.stderr,
        )
        return 2
    from celine.errors import ConfigError

    try:
        preset = headline.load(task)
    except ConfigError as err:
        print(f"celine reproduce: {err}", file=sys.stderr)
        return 2
    extra = args[1:]
    minutes = (
        f"~{preset.expected_minutes:g} min on a 2-core CPU" if preset.expected_minutes else "?"
    )
    print(
        f"celine reproduce: {preset.path.name} ({minutes}); sweep: "
        + ", ".join(f"{k}={v}" for k, v in preset.sweep.items())
    )
    sweep_dir, failed = run_sweep(preset, extra)
    if sweep_dir is None:
        print("celine reproduce: the sweep did not start", file=sys.stderr)
        return 1
    text = write_table(preset, sweep_dir)
    print(text)
    if failed:
        print(
            f"celine reproduce: {len(failed)} job(s) failed: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    return 0


def run_sweep(preset: headline.HeadlinePreset, extra: list[str]) -> tuple[Path | None, list[str]]:
    """The headline sweep through `celine.api.multirun`, exactly as `celine run -m` runs it."""
    from celine import api

    results = api.multirun([f"task={preset.task}", f"experiment={preset.experiment}", *extra])
    if not results:
        return None, []
    return results[0].run_dir.parent, [r.run_dir.name for r in results if not r.ok]


def sweep_rows(sweep_dir: Path, seed_key: str, metrics: list[str]):
    """One row per job of a sweep folder: its method, what else its overrides vary, its seed,
    status, metrics and missing metrics (from results.json and the job's resolved config)."""
    import pandas as pd
    from omegaconf import OmegaConf

    jobs = sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
    )
    raw = []
    for folder in jobs:
        results = folder / "results.json"
        if not results.is_file():
            continue
        doc = json.loads(results.read_text())
        overrides = _overrides(folder)
        seed = overrides.get(seed_key)
        config = folder / "resolved_config.yaml"
        if config.is_file():
            seed = OmegaConf.select(OmegaConf.load(config), seed_key, default=seed)
        raw.append((folder.name, doc, overrides, seed))
    varying = _varying_keys(
        [o for _, _, o, _ in raw], exclude={seed_key, "method", "task", "experiment"}
    )
    rows = []
    for job_name, doc, overrides, seed in raw:
        row = {
            "job": job_name,
            "status": doc.get("status"),
            "start": int(job_name),
            "method": doc.get("method"),
            **{k: overrides.get(k, "-") for k in varying},
            "seed": str(seed),
        }
        for m in metrics:
            value = doc.get("metrics", {}).get(m)
            row[m] = float(value) if isinstance(value, int | float) else float("nan")
        row["missing"] = dict(doc.get("missing") or {})
        rows.append(row)
    return pd.DataFrame(rows)


def _overrides(folder: Path) -> dict[str, str]:
    from omegaconf import OmegaConf

    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    out = {}
    for item in OmegaConf.to_container(OmegaConf.load(path)):
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def _varying_keys(all_overrides: list[dict[str, str]], exclude: set[str]) -> list[str]:
    keys = sorted({k for o in all_overrides for k in o} - exclude)
    return [k for k in keys if len({o.get(k) for o in all_overrides}) > 1]


def write_table(preset: headline.HeadlinePreset, sweep_dir: Path) -> str:
    """headline.{md,csv,png} in the sweep folder, attached to the sweep's parent run."""
    from celine import evidence

    metrics = list(preset.metrics)
    rows = sweep_rows(sweep_dir, preset.seed_key, metrics)
    if rows.empty:
        return f"(no finished jobs in {sweep_dir})\n"
    finished = rows[rows["status"] == "FINISHED"].drop(columns=["job", "status"])
    not_finished = len(rows) - len(finished)
    ev = evidence.summarise(
        finished, metrics, preset.baseline if preset.baseline in set(finished["method"]) else None
    )
    if ev.baseline is None:
        ev.notes.append(f"no finished run of the baseline {preset.baseline}: no paired differences")
    if not_finished:
        ev.notes.append(f"{not_finished} job(s) did not finish and are not counted")
    title = f"`celine reproduce task={preset.task}`: {sweep_dir}"
    table = evidence.markdown(ev)
    md = f"{title}\n\n{table}\n{evidence.legend(ev)}"
    (sweep_dir / "headline.md").write_text(md)
    ev.summary.to_csv(sweep_dir / "headline.csv", index=False)
    evidence.plot(ev, sweep_dir / "headline.png", f"celine reproduce task={preset.task}")
    attached = _attach(sweep_dir, ["headline.md", "headline.csv", "headline.png"])
    where = (
        f"attached to parent run {attached}" if attached else "not attached (no MLflow parent run)"
    )
    return f"{md}\ntable: {sweep_dir / 'headline.md'} (+ .csv, .png), {where}\n"


def _attach(sweep_dir: Path, names: list[str]) -> str | None:
    from celine.tracking.callbacks import PARENT_RUN_FILE, _tracking_target

    marker = sweep_dir / PARENT_RUN_FILE
    config = sweep_dir / "multirun.yaml"
    if not marker.is_file() or not config.is_file():
        return None
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    from celine import configs  # noqa: F401  (registers ${celine_outputs:} for multirun.yaml)

    target = _tracking_target(OmegaConf.load(config))
    if target is None:
        return None
    run_id = json.loads(marker.read_text())["run_id"]
    client = MlflowClient(tracking_uri=target[0])
    for name in names:
        if (sweep_dir / name).is_file():
            client.log_artifact(run_id, str(sweep_dir / name), "headline")
    return run_id


def _list() -> int:
    tasks = headline.available()
    if not tasks:
        print("no headline presets (conf/experiment/*_headline.yaml)")
        return 0
    print(f"{'task':<18} {'expected':>10}  baseline / sweep")
    for task in tasks:
        try:
            p = headline.load(task)
        except Exception as err:  # one broken preset must not hide the others
            print(f"{task:<18} {'?':>10}  error: {err}")
            continue
        minutes = f"{p.expected_minutes:g} min" if p.expected_minutes is not None else "?"
        sweep = " ".join(f"{k}={v}" for k, v in p.sweep.items())
        print(f"{task:<18} {minutes:>10}  {p.baseline} / {sweep}")
    print("\nceline reproduce task=<task> [overrides]   (times: 2-core CPU)")
    return 0
