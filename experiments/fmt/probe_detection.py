"""Detection probe: how well does FMT's per-map score find the ground-truth backdoor maps, before
any pruning or fine-tuning? For each backdoored model (the task's cached one, trained if absent)
and each setting of the faithful knobs (attacked images, eps, alpha, steps, random start), every
map of every conv layer is attacked once and scored three ways from the same attacked inputs:

- `accuracy` (FMP's score) and `mode_share` (share of the most common prediction): the defender's;
- `target_share` (share predicted as the attack's target): a diagnostic the defender cannot
  compute; it tells whether the map attacks reproduce the trigger's effect at all.

Ground truth = the task's `backdoor_maps` (per layer, the quarter of maps the real trigger changes
most). Reported per score: `pct`, the ground-truth maps' mean within-layer percentile of the score
(midranks for ties; 0 = scored most suspect, .50 = random), per stage (`pct_s1..3`: ResNet
stages / first and last halves of other nets' convs), and `hit`, the share of the `prune_ratio`
lowest-scored maps per layer that are ground truth (ties broken by index, as `lowest_per_layer`;
random = `backdoor_map_fraction`, .25).

    python -m celine.experiments.fmt.probe_detection --attacks badnets blend --seeds 0 1 2 \
        --samples 129 --eps 0.1 0.2 --steps 1 5 --random-start sign

Every combination of the listed knob values is run (alpha defaults to eps for one step, the FGSM
script, and eps / 4 for PGD); rows are printed and appended to `--out`.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import rankdata

from celine.vision.featuremaps import conv_layers

from .defense import lowest_per_layer, map_attack_predictions, mode_share
from .task import offline_task

SCORES = ("accuracy", "mode_share", "target_share")


def map_scores(model, x, y, target, *, eps, alpha, steps, random_start, seed, per_call=16):
    """{score: {layer: Tensor[maps]}}, every score low = suspect (as fmt_scores)."""
    model.eval()
    g = torch.Generator().manual_seed(40_009 + seed)
    out = {s: {} for s in SCORES}
    n_classes = int(y.max()) + 1
    for name in conv_layers(model):
        pred = map_attack_predictions(
            model, x, name, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
            generator=g, maps_per_call=per_call,
        )  # fmt: skip
        out["accuracy"][name] = (pred == y).float().mean(1)
        out["mode_share"][name] = -mode_share(pred, n_classes)
        out["target_share"][name] = -(pred == target).float().mean(1)
    return out


def _stage(name: str, index: int, total: int) -> int:
    for s in (1, 2, 3):
        if name.startswith(f"layer{s}"):
            return s
    if name.startswith("layer4"):
        return 3
    return 1 if name in ("conv1", "stem.0") or index < total // 2 else 3


def detection_quality(scores, truth, ratio: float) -> dict[str, float]:
    """pct (mean percentile of ground-truth maps, overall and per stage) and hit (precision of the
    `ratio` lowest per layer) of one score."""
    pcts = {0: [], 1: [], 2: [], 3: []}
    names = list(scores)
    for i, (name, s) in enumerate(scores.items()):
        if len(s) < 2:
            continue
        pct = (rankdata(s.detach().cpu().numpy()) - 1) / (
            len(s) - 1
        )  # midranks: ties get the same percentile
        st = _stage(name, i, len(names))
        for m in truth[name]:
            pcts[0].append(pct[m])
            pcts[st].append(pct[m])
    plan = lowest_per_layer(scores, ratio)
    picked = sum(len(v) for v in plan.values())
    hits = sum(len(set(plan[k]) & set(truth[k])) for k in plan)
    row = {"pct": sum(pcts[0]) / len(pcts[0]), "hit": hits / picked if picked else float("nan")}
    for st in (1, 2, 3):
        row[f"pct_s{st}"] = sum(pcts[st]) / len(pcts[st]) if pcts[st] else float("nan")
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attacks", nargs="+", default=["badnets", "blend"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--samples", nargs="+", type=int, default=[129])
    p.add_argument("--eps", nargs="+", type=float, default=[0.2])
    p.add_argument("--alpha", nargs="+", type=float, default=[None])
    p.add_argument("--steps", nargs="+", type=int, default=[5])
    p.add_argument("--random-start", nargs="+", default=["sign"])
    p.add_argument("--prune-ratio", type=float, default=0.125)
    p.add_argument("--outputs", type=Path, default=Path("outputs"))
    p.add_argument("--out", type=Path, default=None, help="CSV to append rows to")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for attack, seed in itertools.product(a.attacks, a.seeds):
        task = offline_task(attack, seed, arch=a.arch, width=a.width, outputs=a.outputs)
        model = task.backdoored_model()
        truth, _ = task.backdoor_maps(model)
        clean = task.clean_subset()
        for n, eps, alpha, steps, rs in itertools.product(
            a.samples, a.eps, a.alpha, a.steps, a.random_start
        ):
            alpha = alpha if alpha is not None else (eps if steps == 1 else eps / 4)
            t0 = time.perf_counter()
            scores = map_scores(
                model, clean.x[:n], clean.y[:n], task.cfg.target, eps=eps, alpha=alpha,
                steps=steps, random_start=rs, seed=seed,
            )  # fmt: skip
            secs = time.perf_counter() - t0
            for score, s in scores.items():
                row = dict(arch=a.arch, width=a.width, attack=attack, seed=seed, samples=n,
                           eps=eps, alpha=alpha, steps=steps, random_start=rs, score=score,
                           **detection_quality(s, truth, a.prune_ratio), secs=secs)  # fmt: skip
                rows.append(row)
                print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items()), flush=True)  # fmt: skip
            if a.out is not None:
                df = pd.DataFrame(rows[-len(scores) :])
                df.to_csv(a.out, mode="a", header=not a.out.exists(), index=False)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
