"""Fuzzing under a budget: DeepFeature's fuzzer (random-start PGD maximising the summed change
of the vulnerable maps, every iterate a test case) and a coverage-guided fuzzer with the same
seeds, the same PGD steps and the same budget whose objective is the output of the neurons not
yet covered (DeepXplore's neuron-coverage objective)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from celine.vision.featuremaps import feature_map_pgd, forward_with_maps, input_pgd

from .coverage import nc_matrix


@dataclass
class FuzzResult:
    cases: int = 0
    faults: int = 0
    types: set = field(default_factory=set)
    steps: int = 0
    seconds: float = 0.0
    curve: list[tuple[float, int, int]] = field(default_factory=list)  # (s, faults, types)
    fault_x: list[Tensor] = field(default_factory=list)
    fault_y: list[Tensor] = field(default_factory=list)

    def metrics(self, prefix: str = "fuzz/") -> dict[str, float]:
        s = max(self.seconds, 1e-9)
        return {
            f"{prefix}cases": float(self.cases),
            f"{prefix}faults": float(self.faults),
            f"{prefix}fault_types": float(len(self.types)),
            f"{prefix}faults_per_s": self.faults / s,
            f"{prefix}fault_types_per_s": len(self.types) / s,
            f"{prefix}seconds": self.seconds,
            f"{prefix}steps": float(self.steps),
        }


def run_fuzzer(
    model: nn.Module,
    seeds_x: Tensor,
    seeds_y: Tensor,
    attack: Callable[[Tensor, torch.Generator], list[Tensor]],
    *,
    steps_per_round: int,
    budget: float,
    budget_unit: str,
    batch: int,
    restarts: int,
    seed: int,
    observe: Callable[[Tensor], None] | None = None,
    keep_faults: int = 0,
) -> FuzzResult:
    """Cycle over the seed images in batches; per batch `restarts` random-start attacks; every
    iterate is a test case, a fault when the prediction differs from the seed's label. Stops
    when `budget` gradient steps (budget_unit=steps) or seconds are spent."""
    model.eval()
    g = torch.Generator().manual_seed(90_001 + seed)
    res = FuzzResult()
    t0 = time.perf_counter()
    start = 0

    def spent() -> float:
        return res.steps if budget_unit == "steps" else time.perf_counter() - t0

    while spent() < budget:
        xb = seeds_x[start : start + batch]
        yb = seeds_y[start : start + batch]
        start = (start + batch) % len(seeds_x)
        for _ in range(restarts):
            if spent() >= budget:
                break
            for case in attack(xb, g):
                with torch.no_grad():
                    pred = model(case).argmax(1)
                wrong = pred != yb
                res.cases += len(case)
                res.faults += int(wrong.sum())
                res.types |= {(int(p), int(t)) for p, t in zip(pred[wrong], yb[wrong], strict=True)}
                if keep_faults and sum(len(f) for f in res.fault_x) < keep_faults:
                    res.fault_x.append(case[wrong])
                    res.fault_y.append(yb[wrong])
                if observe is not None:
                    observe(case)
            res.steps += steps_per_round
            res.curve.append((time.perf_counter() - t0, res.faults, len(res.types)))
    res.seconds = time.perf_counter() - t0
    return res


def deepfeature_attack(model, layer: str, vs: list[int], eps: float, alpha: float, steps: int):
    """Random-start PGD maximising the summed change of the vulnerable maps; all iterates."""

    def attack(x: Tensor, g: torch.Generator) -> list[Tensor]:
        its = feature_map_pgd(
            model, x, layer, [vs], eps=eps, alpha=alpha, steps=steps, generator=g,
            return_iterates=True,
        )  # fmt: skip
        return [it[0] for it in its]

    return attack


class CoverageObjective:
    """DeepXplore-style: maximise the summed (spatial-mean) output of the neurons that no test
    case has covered yet; coverage (NC, min-max scaled per layer) is updated from every case."""

    def __init__(self, model, layers: list[str], threshold: float, eps, alpha, steps) -> None:
        self.model, self.layers, self.threshold = model, layers, threshold
        self.eps, self.alpha, self.steps = eps, alpha, steps
        self.covered: Tensor | None = None

    def observe(self, case: Tensor) -> None:
        with torch.no_grad():
            _, maps = forward_with_maps(self.model, case, self.layers, detach=True)
        outs = {k: (v.flatten(2).mean(2) if v.dim() > 2 else v) for k, v in maps.items()}
        hit = nc_matrix(outs, self.threshold).any(0)
        self.covered = hit if self.covered is None else self.covered | hit

    def loss(self, adv: Tensor) -> Tensor:
        _, maps = forward_with_maps(self.model, adv, self.layers)
        outs = torch.cat([(v.flatten(2).mean(2) if v.dim() > 2 else v) for v in maps.values()], 1)
        if self.covered is None or bool(self.covered.all()):
            return outs.sum()
        return outs[:, ~self.covered].sum()

    def attack(self, x: Tensor, g: torch.Generator) -> list[Tensor]:
        return input_pgd(
            self.model, x, self.loss, eps=self.eps, alpha=self.alpha, steps=self.steps,
            random_start="uniform", generator=g, return_iterates=True,
        )  # fmt: skip
