"""deepfeature: mutations, DeepFeature's scores and selection, coverage baselines against hand-computed
values on tiny networks, the fuzzers, and runs end to end."""

import pandas as pd
import pytest
import torch
from celine_testing import run_in_process, runs_of
from torch import nn

from celine.experiments.deepfeature import coverage as cov
from celine.experiments.deepfeature.fuzz import (
    CoverageObjective,
    deepfeature_attack,
    run_fuzzer,
)
from celine.experiments.deepfeature.mutations import MUTATIONS, mutate
from celine.experiments.deepfeature.scores import (
    fault_curve,
    fvs,
    kselection,
    map_changes,
    selection_scores,
    topk,
    vulnerable_set,
)


def _images(n=12, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_mutations_are_deterministic_per_seed_and_stay_images():
    x = _images(40)
    a, kinds = mutate(x, seed=3)
    b, kinds_b = mutate(x, seed=3)
    c, _ = mutate(x, seed=4)
    assert torch.equal(a, b) and kinds == kinds_b
    assert not torch.equal(a, c)
    assert set(kinds) <= set(MUTATIONS) and len(set(kinds)) >= 5
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    bright = [i for i, k in enumerate(kinds) if k == "brightness"]
    ratio = a[bright].sum((1, 2, 3)) / x[bright].sum((1, 2, 3))
    assert torch.all((ratio >= 0.5 - 1e-4) & (ratio <= 1.5 + 1e-4))


class OneConv(nn.Module):
    """conv 1 -> 2 maps with 1x1 kernels (weights 2 and -1, no bias): map0 = 2x, map1 = -x."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight[:, 0, 0, 0] = torch.tensor([2.0, -1.0])
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_fvs_equals_the_hand_computed_mse_and_is_zero_for_identity():
    net = OneConv().eval()
    x = _images(6)
    assert torch.count_nonzero(fvs(map_changes(net, x, x.clone(), "conv"))) == 0
    x_mut = (x + 0.1).clamp(0, 1)
    d = x_mut - x
    hand0 = ((2 * d) ** 2).mean((1, 2, 3))  # per image, over positions
    hand1 = (d**2).mean((1, 2, 3))
    ch = map_changes(net, x, x_mut, "conv", batch=4)
    assert torch.allclose(ch[:, 0], hand0) and torch.allclose(ch[:, 1], hand1)
    scores = fvs(ch)
    assert torch.allclose(scores, torch.stack([hand0.mean(), hand1.mean()]))
    assert vulnerable_set(scores, 1) == [0]
    assert torch.allclose(selection_scores(ch, [0, 1]), (hand0 + hand1) / 2)


def test_kselection_picks_evenly_spaced_ranks_and_topk_the_highest():
    scores = torch.tensor([5.0, 1.0, 9.0, 3.0, 7.0, 0.0, 8.0, 2.0, 6.0, 4.0])
    # ranks 0..9 ascending = values 0..9; linspace(0, 9, 4) -> ranks 0, 3, 6, 9
    picked = kselection(scores, 4)
    assert sorted(scores[picked].tolist()) == [0.0, 3.0, 6.0, 9.0]
    assert scores[picked].tolist() == [9.0, 6.0, 3.0, 0.0]  # highest first
    assert scores[topk(scores, 3)].tolist() == [9.0, 8.0, 7.0]


def test_fault_curve_counts_rates_and_distinct_pairs():
    true = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    pred = torch.tensor([1, 1, 1, 0, 2, 0, 3, 2])
    # misclassified pairs in order 0..7: (1,0), (1,0), -, (0,1), -, (0,2), -, (2,3)
    out = fault_curve(pred, true, list(range(8)))
    assert out["fdr_25"] == 1.0 and out["fdd_25"] == 1  # first 2
    assert out["fdr_50"] == 0.75 and out["fdd_50"] == 2  # first 4
    assert out["fdr_100"] == 5 / 8 and out["fdd_100"] == 4
    assert out["fdd_auc"] == pytest.approx((1 + 1 + 1 + 2 + 2 + 3 + 3 + 4) / 8)


class TinyMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 3)
        self.out = nn.Linear(3, 2)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
            self.hidden.bias.zero_()

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def test_coverage_metrics_match_hand_computed_values():
    net = TinyMLP().eval()
    assert cov.neuron_layers(net) == ["hidden"]
    x = torch.tensor([[0.0, 1.0], [0.9, 0.1], [0.5, 0.5]])
    _, outs = cov.neuron_outputs(net, x, ["hidden"])
    # hidden outputs: [0, 1, -1], [0.9, 0.1, 0.8], [0.5, 0.5, 0]
    assert torch.allclose(
        outs["hidden"], torch.tensor([[0, 1, -1], [0.9, 0.1, 0.8], [0.5, 0.5, 0]])
    )
    # NC without scaling, threshold 0.5: covered by any input: n0 (0.9), n1 (1.0), n2 (0.8)
    nc = cov.nc_matrix(outs, 0.5, scale=False)
    assert nc.tolist() == [[False, True, False], [True, False, True], [False, False, False]]
    assert cov.coverage(nc[[0]]) == pytest.approx(1 / 3)
    assert cov.coverage(nc) == 1.0
    # scaled per input: [0,1,-1] -> [0.5, 1, 0]; [0.9,0.1,0.8] -> [1, 0, 0.875]; [.5,.5,0] -> [1,1,0]
    nc_s = cov.nc_matrix(outs, 0.6, scale=True)
    assert nc_s.tolist() == [[False, True, False], [True, False, True], [True, True, False]]
    # KMNC with training ranges low = [0, 0, -1], high = [1, 1, 1], k = 2
    low, high = torch.tensor([0.0, 0.0, -1.0]), torch.tensor([1.0, 1.0, 1.0])
    km = cov.kmnc_matrix(outs, low, high, 2)
    # n0: 0 -> sec 0, 0.9 -> sec 1, 0.5 -> sec 1; n1: 1 -> sec 1 (= high), 0.1 -> 0, 0.5 -> 1;
    # n2: -1 -> sec 0, 0.8 -> sec 1, 0 -> sec 1
    expect = [[1, 0, 0, 1, 1, 0], [0, 1, 1, 0, 0, 1], [0, 1, 0, 1, 0, 1]]
    assert km.int().tolist() == expect
    assert cov.coverage(km) == 1.0 and cov.coverage(km[[0]]) == pytest.approx(3 / 6)
    # NBC with a narrower range: low = [0.2, 0.2, 0.2], high = [0.6, 0.6, 0.6]
    nb = cov.nbc_matrix(outs, torch.full((3,), 0.2), torch.full((3,), 0.6))
    # (upper, lower) per neuron
    assert nb.int().tolist() == [[0, 1, 1, 0, 0, 1], [1, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]]
    assert cov.coverage(nb) == 1.0
    lo, hi = cov.neuron_ranges(outs)
    assert lo.tolist() == pytest.approx([0, 0.1, -1]) and hi.tolist() == pytest.approx(
        [0.9, 1, 0.8]
    )


def test_conv_neurons_are_spatial_means():
    net = OneConv().eval()
    x = _images(3)
    _, outs = cov.neuron_outputs(net, x, ["conv"])
    assert torch.allclose(outs["conv"][:, 0], 2 * x.mean((1, 2, 3)))
    assert torch.allclose(outs["conv"][:, 1], -x.mean((1, 2, 3)))


def test_greedy_additional_coverage_order():
    m = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool
    )
    order = cov.greedy_additional(m, 5, seed=0)
    assert order[:2] == [1, 2]  # 3 new items, then the only one adding the last item
    assert sorted(order[2:]) == [0, 3, 4]  # nothing adds coverage: the rest at random
    assert cov.greedy_additional(m, 5, seed=0) == order


def test_gini_and_lsa_rank_uncertain_and_surprising_inputs_first():
    logits = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    assert cov.gini(logits)[1] == pytest.approx(0.5) and cov.gini(logits)[0] < 0.01
    g = torch.Generator().manual_seed(0)
    train = torch.randn(200, 2, generator=g)
    pred = torch.zeros(200, dtype=torch.long)
    s = cov.lsa(
        train, pred, torch.tensor([[0.0, 0.0], [4.0, 4.0]]), torch.zeros(2, dtype=torch.long)
    )
    assert s[1] > s[0]


def test_fuzzers_spend_the_same_step_budget_and_count_faults():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    net.eval()
    x, y = _images(8), torch.arange(8) % 3
    attack = deepfeature_attack(net, "0", [0, 1], eps=0.1, alpha=0.05, steps=3)
    res = run_fuzzer(net, x, y, attack, steps_per_round=3, budget=9, budget_unit="steps",
                     batch=4, restarts=2, seed=0)  # fmt: skip
    assert res.steps == 9 and res.cases == 3 * 3 * 4  # 3 rounds of 3 iterates of 4 seeds
    assert 0 <= res.faults <= res.cases and len(res.types) <= res.faults
    again = run_fuzzer(net, x, y, attack, steps_per_round=3, budget=9, budget_unit="steps",
                       batch=4, restarts=2, seed=0)  # fmt: skip
    assert again.faults == res.faults and again.types == res.types
    obj = CoverageObjective(net, ["0"], 0.5, eps=0.1, alpha=0.05, steps=3)
    res2 = run_fuzzer(net, x, y, obj.attack, steps_per_round=3, budget=9, budget_unit="steps",
                      batch=4, restarts=2, seed=0, observe=obj.observe)  # fmt: skip
    assert res2.steps == 9 and res2.cases == res.cases and obj.covered is not None
    for case in attack(x, torch.Generator().manual_seed(1)):
        assert (case - x).abs().max() <= 0.1 + 1e-6


def test_config_rejects_bad_values():
    from celine.api import ConfigError
    from celine.experiments.deepfeature import config

    with pytest.raises(ConfigError, match="method.selection"):
        config.DeepFeatureConfig(selection="best")
    with pytest.raises(ConfigError, match="method.baselines"):
        config.DeepFeatureConfig(baselines=["dsa"])
    with pytest.raises(ConfigError, match="task.budget"):
        config.DeepFeatureTaskConfig(budget=0)


TINY = ["task=deepfeature", "task.size=8", "task.epochs=2", "task.mutations_per_image=1"]


def test_runs_end_to_end(outputs, tmp_path):
    overrides = [
        *TINY, "method.fas_steps=1", "method.fas_samples=16", "method.baselines=[random,nc]",
        "method.repair=true", "method.repair_epochs=1",
    ]  # fmt: skip
    metrics = run_in_process(overrides, tmp_path / "sel")
    (run,) = runs_of(outputs, "deepfeature")
    assert run.info.status == "FINISHED"
    assert metrics["budget"] == 72  # 20 % of 360 test digits x 1 mutation
    for key in ("fdr", "fdr_25", "random/fdr_100", "nc/fdr_100", "deepfeature_kselection/fdr_100"):
        assert 0 <= metrics[key] <= 1 and run.data.metrics[key] == pytest.approx(metrics[key])
    table = pd.read_csv(tmp_path / "sel" / "tables" / "selection.csv")
    assert list(table["strategy"]) == [
        "deepfeature", "deepfeature_kselection", "least_vulnerable", "random_maps",
        "origin_distance", "random", "nc",
    ]  # fmt: skip
    for control in ("least_vulnerable", "random_maps", "origin_distance"):
        diff = metrics["fdr"] - metrics[f"{control}/fdr_100"]
        assert metrics[f"vs_minus_{control}/fdr"] == pytest.approx(diff)
    assert (tmp_path / "sel" / "plots" / "fault_curves.png").is_file()
    assert 0 <= metrics["repair/heldout_pool_acc_after"] <= 1
    fuzz = run_in_process([*TINY, "method=df_fuzz", "method.budget=6", "method.seeds=16"], tmp_path / "fz")  # fmt: skip
    assert fuzz["fuzz/steps"] == 6 and fuzz["fuzz/cases"] == 6 * 16
    assert runs_of(outputs, "deepfeature")[-1].info.status == "FINISHED"


@pytest.mark.slow
def test_deepfeature_selection_beats_coverage_and_random_over_seeds(outputs, tmp_path):
    """The built-in default (digits 16x16, LeNet-5, 5 mutations per test image) over 3 seeds:
    DeepFeature's top-k selection finds more faults than NC-guided and random selection."""
    wins = 0
    for seed in (0, 1, 2):
        m = run_in_process(
            ["task=deepfeature", f"seed={seed}", "method.selection=topk", "method.fas_steps=0",
             "method.baselines=[random,nc]"], tmp_path / f"s{seed}",
        )  # fmt: skip
        wins += m["fdr"] > max(m["nc/fdr_100"], m["random/fdr_100"])
    assert wins == 3


def test_controls_score_the_least_vulnerable_random_maps_and_pixel_distance():
    import torch

    from celine.experiments.deepfeature import selection as sel

    class Pool:
        origin = torch.zeros(3, 1, 2, 2)
        x = torch.stack([torch.full((1, 2, 2), v) for v in (0.1, 0.5, 0.2)])

    class Task:
        def pool(self):
            return Pool()

    changes = torch.tensor([[1.0, 2.0, 30.0, 4.0], [5.0, 0.0, 10.0, 8.0], [0.0, 9.0, 20.0, 1.0]])
    info = {"changes": changes, "fvs": changes.mean(0), "vs": [2, 3]}  # FVS 2, 3.67, 20, 4.33
    out = sel.control_scores(Task(), info, seed=0)
    assert torch.allclose(out["least_vulnerable"], changes[:, [0, 1]].mean(1))  # 2 lowest FVS
    assert torch.allclose(out["origin_distance"], torch.tensor([0.01, 0.25, 0.04]))
    again = sel.control_scores(Task(), info, seed=0)["random_maps"]
    assert torch.equal(out["random_maps"], again) and out["random_maps"].shape == (3,)
