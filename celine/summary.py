"""The few lines printed when a run or a sweep ends: what happened and where to look."""

from __future__ import annotations

import math
from typing import Any


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(number)
    return f"{number:.6g}"


def open_hint(uri: str | None, default_uri: str) -> str:
    """How to open the run in the MLflow UI."""
    if uri is None:
        return "untracked (tracking=none)"
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    if uri == default_uri:
        return "celine ui"
    return f"celine ui --uri {uri}"


def run_summary(
    doc: dict, primary: str | None, run_dir: str, uri: str | None, default_uri: str
) -> str:
    """A run's result as a short block: status, primary metric first, folder, run id, how to open."""
    metrics = dict(doc.get("metrics") or {})
    lines = [f"{doc.get('status', '?')}: {doc.get('task')} / {doc.get('method')} / {doc.get('model')}"
             f" in {_fmt(doc.get('duration_s'))} s"]  # fmt: skip
    if doc.get("error"):
        lines.append(f"  error: {doc['error'].splitlines()[0][:300]}")
    if primary in metrics:
        lines.append(f"  {primary} = {_fmt(metrics.pop(primary))}  (primary)")
    for name in sorted(metrics):
        lines.append(f"  {name} = {_fmt(metrics[name])}")
    lines.append(f"  run folder: {run_dir}")
    if doc.get("run_id"):
        lines.append(f"  MLflow run: {doc['run_id']}  ({open_hint(uri, default_uri)})")
    return "\n".join(lines)


def sweep_table(rows: list[dict], max_metrics: int = 4) -> str:
    """One line per job: job number, status, then the first metrics (the primary one first)."""
    if not rows:
        return "(no jobs)"
    metric_names: list[str] = []
    for row in rows:
        for key in row:
            if key not in ("job", "status", "overrides") and key not in metric_names:
                metric_names.append(key)
    metric_names = metric_names[:max_metrics]
    header = ["job", "status", *metric_names, "overrides"]
    body = [
        [
            str(r["job"]),
            str(r.get("status")),
            *(_fmt(r[m]) if m in r else "-" for m in metric_names),
            str(r.get("overrides", "")),
        ]  # fmt: skip
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    return "\n".join(out)
