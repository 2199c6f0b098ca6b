"""fmt: triggers and poisoning (exact), the backdoored model (fixed seed), FMT's detection score on
a hand-built network with a planted backdoor map, pruning, and one run end to end."""

import pandas as pd
import pytest
import torch
from celine_testing import compose, run_in_process, runs_of
from torch import nn

from celine.experiments.fmt import attacks, config
from celine.experiments.fmt.defense import (
    fmt_scores,
    kmeans_minority,
    lowest_per_layer,
    prune_count,
    random_per_layer,
)
from celine.vision.datasets import ImageSet, load_images


def test_attack_names_agree():
    assert config.ATTACKS == attacks.ATTACKS


def test_badnets_sets_exactly_the_corner_and_poisons_floor_ratio_n_with_the_target_label():
    x = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.9
    y = torch.arange(50) % 5
    trig = attacks.make_trigger("badnets", 1, 8, seed=0, patch_size=3)
    out = trig(x)
    assert torch.all(out[..., -3:, -3:] == 1.0)
    assert torch.equal(out[..., :5, :], x[..., :5, :]) and torch.equal(
        out[..., :, :5], x[..., :, :5]
    )
    poisoned, idx = attacks.poison_set(ImageSet(x, y), trig, 0.13, target=0, seed=1)
    assert len(idx) == 6  # floor(0.13 * 50)
    assert torch.all(y[idx] != 0) and torch.all(poisoned.y[idx] == 0)
    rest = torch.ones(50, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(poisoned.x[rest], x[rest]) and torch.equal(poisoned.y[rest], y[rest])
    bd = attacks.triggered_test(ImageSet(x, y), trig, target=0)
    assert len(bd) == int((y != 0).sum()) and torch.all(bd.y != 0)  # ASR excludes the target


def test_blend_sig_and_wanet_triggers():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    blend = attacks.make_trigger("blend", 1, 8, seed=0, blend_alpha=0.2)
    assert torch.allclose(blend(x), 0.8 * x + 0.2 * blend.pattern)
    sig = attacks.make_trigger("sig", 1, 8, seed=0, sig_delta=0.1, sig_freq=2)
    assert (sig(x * 0.5 + 0.25) - (x * 0.5 + 0.25)).abs().max() <= 0.1 + 1e-6
    idx = attacks.poison_indices(torch.arange(40) % 4, "sig", 0.1, target=1, seed=0)
    assert len(idx) == 4 and torch.all(torch.arange(40)[idx] % 4 == 1)  # clean-label: target only
    warp = attacks.make_trigger("wanet", 1, 8, seed=0, wanet_s=2.0)
    w = warp(x)
    assert w.min() >= 0 and w.max() <= 1 and not torch.allclose(w, x)
    again = attacks.make_trigger("wanet", 1, 8, seed=0, wanet_s=2.0)
    assert torch.equal(again(x), w)


def test_prune_counts_and_the_random_and_kmeans_choices():
    assert prune_count(128, None) == 2 and prune_count(63, None) == 0  # the paper's N // 64
    assert prune_count(12, 0.25) == 3
    plan = lowest_per_layer({"a": torch.tensor([0.5, 0.1, 0.9, 0.1])}, 0.5)
    assert plan == {"a": [1, 3]}
    km = kmeans_minority({"a": torch.tensor([0.9, 0.91, 0.89, 0.1, 0.92])})
    assert km == {"a": [3]}
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 4, 3))
    rnd = random_per_layer(net, 0.25, seed=0)
    assert [len(v) for v in rnd.values()] == [2, 1]
    assert rnd == random_per_layer(net, 0.25, seed=0)


class PlantedNet(nn.Module):
    """Eight fixed random 3x3 maps (4x4-pooled) feed a linear head trained on clean digits; a ninth map is a
    3x3 all-ones detector with a bias of -7.5, wired (global max, weight 1000) to the target class:
    it fires only where a 3x3 window is almost white, i.e. on the BadNets trigger."""

    def __init__(self, target: int = 0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 9, 3, padding=1)
        with torch.no_grad():
            self.conv.weight[8] = 1.0
            self.conv.bias[8] = -7.5
        self.head = nn.Linear(8 * 16, 10)
        self.target = target

    def generic(self, x):
        m = torch.relu(self.conv(x))
        return m, nn.functional.adaptive_avg_pool2d(m[:, :8], 4).flatten(1)

    def forward(self, x):
        m, generic = self.generic(x)
        out = self.head(generic)
        boost = torch.zeros_like(out)
        boost[:, self.target] = 1000 * m[:, 8].amax((1, 2))
        return out + boost


def test_detection_ranks_the_planted_backdoor_map_lowest():
    s = load_images("digits", seed=0, size=8)
    net = PlantedNet()
    with torch.no_grad():
        feats = net.generic(s.train.x)[1]
    opt = torch.optim.LBFGS(net.head.parameters(), max_iter=60)

    def closure():  # only the head learns (logistic regression); the maps stay as built
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net.head(feats), s.train.y)
        loss = loss + 1e-4 * net.head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    net.eval()
    trig = attacks.make_trigger("badnets", 1, 8, seed=0)
    with torch.no_grad():
        clean_acc = (net(s.test.x).argmax(1) == s.test.y).float().mean()
        bd = attacks.triggered_test(s.test, trig, 0)
        asr = (net(bd.x).argmax(1) == 0).float().mean()
    assert clean_acc > 0.75 and asr == 1.0  # a working backdoor that clean inputs do not trigger
    x, y = s.val.x[:128], s.val.y[:128]
    scores = fmt_scores(net, x, y, eps=0.3, alpha=0.05, steps=5, seed=0, map_attack="pgd")["conv"]
    assert int(scores.argmin()) == 8
    assert scores[8] < scores[:8].min() - 0.1  # measured: 0.45 vs 0.64
    assert lowest_per_layer({"conv": scores}, 1 / 9) == {"conv": [8]}


@pytest.fixture(scope="module")
def tiny_backdoor():
    """BadNets on 8x8 digits, the default ResNet-20 x0.5, 4 Adam epochs (fixed seed)."""
    from celine.vision.train import evaluate, train_classifier
    from celine.vision.zoo import build_classifier

    s = load_images("digits", seed=0, size=8)
    trig = attacks.make_trigger("badnets", 1, 8, seed=0)
    poisoned, _ = attacks.poison_set(s.train, trig, 0.1, 0, seed=0)
    torch.manual_seed(0)
    model = build_classifier("resnet20", 10, 1, width=0.5, size=8)
    train_classifier(model, poisoned, None, epochs=4, lr=5e-3, batch_size=64,
                     optimizer="adam", seed=0)  # fmt: skip
    bd = attacks.triggered_test(s.test, trig, 0)
    with torch.no_grad():
        asr = (model(bd.x).argmax(1) == 0).float().mean()
    return {"asr": float(asr), "acc": evaluate(model, s.test)}


def test_backdoored_model_has_asr_above_90_and_keeps_clean_accuracy(tiny_backdoor):
    """Held-out triggered test images go to the target; clean test accuracy stays at the level
    of a clean classifier on 8x8 digits (measured with this recipe, seed 0: ASR 1.0, acc .956)."""
    assert tiny_backdoor["asr"] > 0.9
    assert tiny_backdoor["acc"] > 0.9


def test_config_rejects_bad_values():
    from celine.api import ConfigError

    with pytest.raises(ConfigError, match="task.attack"):
        config.FMTTaskConfig(attack="trojan")
    with pytest.raises(ConfigError, match="method.selection"):
        config.FMTConfig(selection="largest")
    with pytest.raises(ConfigError, match="task.data_root"):
        config.FMTTaskConfig(data="cifar10")


TINY = [
    "task=fmt", "task.size=8", "task.epochs=3", "model.width=0.25", "method.steps=1",
    "method.attack_samples=16", "method.finetune_epochs=1",
]  # fmt: skip


def test_run_end_to_end_logs_every_stage(outputs, tmp_path):
    metrics = run_in_process(TINY, tmp_path / "run")
    (run,) = runs_of(outputs, "fmt")
    assert run.info.status == "FINISHED"
    for key in ("acc", "asr", "ra", "before/acc", "before/asr", "pruned/asr"):
        assert 0.0 <= metrics[key] <= 1.0 and run.data.metrics[key] == pytest.approx(metrics[key])
    assert 0.0 <= metrics["backdoor_maps_removed"] <= 1.0
    stages = pd.read_csv(tmp_path / "run" / "tables" / "stages.csv")
    assert list(stages["stage"]) == ["backdoored", "pruned", "fine-tuned"]
    assert (tmp_path / "run" / "plots" / "stages.png").is_file()
    # resnet20 x0.25 (4/8/16 maps, 7 convs each counting the shortcut) at the default prune_ratio
    # 1/4: 1 of 4, 2 of 8, 4 of 16
    assert metrics["maps_pruned"] == 7 * 1 + 7 * 2 + 7 * 4
    assert 0.0 <= metrics["val_acc"] <= 1.0
    scores = pd.read_csv(tmp_path / "run" / "tables" / "map_scores.csv")
    assert len(scores) == 4 + 6 * 4 + 7 * 8 + 7 * 16
    # the second method reuses the cached backdoored model: same starting point
    base = [o for o in TINY if not o.startswith("method.")]
    again = run_in_process(
        [*base, "method=fmt_finetune", "method.finetune_epochs=1"], tmp_path / "ft"
    )
    assert again["before/asr"] == metrics["before/asr"]
    assert again["before/acc"] == metrics["before/acc"]
    nad = run_in_process(
        [*base, "method=fmt_nad", "method.te_epochs=1", "method.finetune_epochs=1"],
        tmp_path / "nad",
    )
    assert nad["before/asr"] == metrics["before/asr"] and 0.0 <= nad["asr"] <= 1.0
    stages = pd.read_csv(tmp_path / "nad" / "tables" / "stages.csv")
    assert list(stages["stage"]) == ["backdoored", "fine-tuned"]


@pytest.mark.slow
def test_fmt_removes_the_blend_backdoor_that_fine_tuning_alone_keeps(outputs, tmp_path):
    """The built-in default (ResNet-20 x1, prune 1/4) under Blend, seed 0 on the CPU: fine-tuning
    alone keeps the backdoor, FMT's pruning + the same fine-tuning removes most of it within the
    two-point budget. Blend, because there FMT removed it on all 10 seed-runs of the GPU grid
    (ASR .01-.19); on BadNets single seeds go either way (GPU .00-.93; a fresh CPU seed 0: .70),
    and FMT against random pruning is a claim over seeds (README "Default"), not asserted here."""
    base = ["task=fmt", "task.attack=blend", "seed=0"]
    runs = {
        m: run_in_process([*base, f"method={m}"], tmp_path / m) for m in ("fmt", "fmt_finetune")
    }
    fmt, ft = runs["fmt"], runs["fmt_finetune"]
    assert fmt["before/asr"] > 0.9
    assert ft["asr"] > 0.9
    assert fmt["asr"] < 0.3 and fmt["ra"] > ft["ra"] + 0.5
    assert fmt["acc"] >= fmt["before/acc"] - 0.02


def test_nad_attention_maps_and_stages():
    from celine.experiments.fmt.nad import attention_layers, attention_loss, attention_map
    from celine.vision.zoo import build_classifier

    fm = torch.randn(3, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    am = attention_map(fm, p=2.0)
    assert am.shape == (3, 1, 4, 4)
    assert torch.allclose(am.flatten(1).norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(am, attention_map(2.0 * fm, p=2.0), atol=1e-6)  # scale-free
    energy = fm.pow(2).sum(1)
    assert torch.allclose(am[:, 0], energy / energy.flatten(1).norm(dim=1)[:, None, None])
    assert attention_loss(fm, fm.clone(), 2.0) == 0
    assert attention_loss(fm, fm.flip(-1), 2.0) > 0
    resnet = build_classifier("resnet20", 10, 1, width=0.25, size=8)
    assert attention_layers(resnet) == ["layer1", "layer2", "layer3"]  # BackdoorBench: last three
    lenet = build_classifier("lenet5", 10, 1, width=1.0, size=8)
    assert attention_layers(lenet) == ["conv1", "conv2"]


def test_probe_detection_quality_percentiles_and_hits():
    """The detection probe's measure: ground-truth maps scored lowest have percentile 0 and full
    hits; all-tied scores (no random start: the map attack has no gradient) give exactly .50."""
    from celine.experiments.fmt.probe_detection import detection_quality

    truth = {"layer1.0.conv1": [0, 1], "layer3.0.conv1": [7, 6]}
    perfect = {"layer1.0.conv1": torch.arange(8.0), "layer3.0.conv1": -torch.arange(8.0)}
    q = detection_quality(perfect, truth, 0.25)
    assert q["pct"] == pytest.approx(1 / 14) and q["pct_s3"] == pytest.approx(1 / 14)
    assert q["hit"] == 1.0  # the 2 lowest of each layer are exactly the ground truth
    worst = {name: -s for name, s in perfect.items()}
    q = detection_quality(worst, truth, 0.25)
    assert q["pct"] == pytest.approx(13 / 14) and q["hit"] == 0.0
    tied = {name: torch.ones(8) for name in truth}
    q = detection_quality(tied, truth, 0.25)
    assert q["pct"] == 0.5 and q["pct_s1"] == 0.5 and q["pct_s3"] == 0.5


def test_probe_map_scores_run_the_map_attack_for_every_map():
    """The probe's scores come from a real (gradient) attack on every map of every conv layer:
    one finite score per map, and accuracy and mode share read the same predictions."""
    from celine.experiments.fmt.probe_detection import map_scores
    from celine.vision.zoo import build_classifier

    torch.manual_seed(0)
    model = build_classifier("lenet5", 10, 1, width=1.0, size=8)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    out = map_scores(model, x, y, 0, eps=0.1, alpha=0.1, steps=1, random_start="sign", seed=0)
    convs = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    for score in ("accuracy", "mode_share", "target_share"):
        assert {n: len(s) for n, s in out[score].items()} == convs
        assert all(torch.isfinite(s).all() for s in out[score].values())
    for s in out["mode_share"].values():
        assert (s <= -1 / 6).all()  # the most common prediction holds at least one of 6 images


def test_every_grid_setting_composes_and_validates():
    """A setting is Hydra overrides: a typo fails here, not after models trained."""
    from celine import validation
    from celine.experiments.fmt.grid import GRID

    for name, setting in GRID.items():
        plan = validation.plan(compose(["task=fmt", *setting]))
        assert plan.method.name == setting[0].removeprefix("method="), name


@pytest.mark.slow  # 4 runs and a backdoored model: 1-5 min on 2 loaded cores
def test_grid_runs_each_setting_as_a_multirun(outputs, tmp_path):
    from celine.experiments.fmt.grid import main, run_setting

    tiny = ["task.size=8", "task.epochs=1", "model.width=0.25"]
    out = tmp_path / "grid.csv"
    df = main(["--attacks", "badnets", "--seeds", "0", "--settings", "none", "--out", str(out),
               *tiny])  # fmt: skip
    ft = ["method=fmt_random_prune", "method.finetune_epochs=1"]
    rows = [
        *run_setting("r8", [*ft, "method.prune_ratio=0.125"], ["badnets"], [0], tiny),
        *run_setting("r4", ft, ["badnets"], [0], tiny),
    ]
    df = pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
    assert list(df.setting) == ["none", "r8", "r4"] and (df.status == "FINISHED").all()
    # resnet20 x0.25 (7 convs each of 4, 8, 16 maps): 1/8 prunes 0+1+2 per conv, 1/4 1+2+4
    assert list(df.maps_pruned) == [0, 7 * 3, 7 * 7]
    assert (df.before_acc == df.before_acc.iloc[0]).all()  # one cached backdoored model
    assert out.with_suffix(".png").is_file() and out.with_name("grid_summary.csv").is_file()
    runs = runs_of(outputs, "fmt")  # each setting one sweep: a parent run, its cells children
    parents = {r.info.run_id for r in runs if r.data.tags.get("celine.role") == "sweep"}
    assert len(parents) == 3
    assert {
        r.data.tags["mlflow.parentRunId"] for r in runs if r.info.run_id in set(df.run_id)
    } == parents


def _cifar_format_folder(root, per_batch=40, seed=0):
    """A synthetic folder in CIFAR-10's on-disk format (pickled batches of uint8 rows): no
    CIFAR-10 files are available here, so the preset is exercised on class-coloured noise."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, size=(10, 3))
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        y = np.arange(per_batch) % 10
        x = np.clip(
            colours[y][:, :, None, None] + rng.normal(0, 40, (per_batch, 3, 32, 32)), 0, 255
        )
        with open(folder / name, "wb") as f:
            pickle.dump(
                {b"data": x.astype(np.uint8).reshape(per_batch, -1), b"labels": y.tolist()}, f
            )
    return root


PRESET_TINY = [
    "task.epochs=1", "model.width=0.25", "method.prune_ratio=null", "method.attack_samples=8",
    "method.finetune_epochs=1", "task.batch_size=64", "task.size=16",
    "++task.min_backdoor_asr=0",  # a 1-epoch model need not be backdoored: keep asr/ra as numbers
]  # fmt: skip


@pytest.mark.parametrize(
    "hardware", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
)  # fmt: skip
def test_cifar10_preset_runs_end_to_end_on_cifar_format_files(outputs, tmp_path, hardware):
    """`experiment=fmt_cifar10` (PreAct-ResNet-18, 5 % clean data, the paper's N // 64 rule)
    composes and runs from a folder in CIFAR-10's format (resized to 16 px and one epoch here to
    stay quick); with the `gpu` marker on CUDA (`make test-gpu`)."""
    root = _cifar_format_folder(tmp_path / "data", per_batch=20)
    overrides = ["experiment=fmt_cifar10", f"task.data_root={root}", f"hardware={hardware}"]
    metrics = run_in_process([*overrides, *PRESET_TINY], tmp_path / "run")
    (run,) = runs_of(outputs, "fmt")
    assert run.info.status == "FINISHED"
    assert run.data.params["model.arch"] == "preact_resnet18"
    assert run.data.params["hardware.device"].startswith(hardware)
    # PreAct-ResNet-18 x0.25: 16/32/64/128 maps; N // 64 prunes 0 / 0 / 1 / 2 per conv
    assert metrics["maps_pruned"] > 0 and 0.0 <= metrics["asr"] <= 1.0


# ---- issue 26: the official feature-map attack, Fine-Pruning after the residual add, triggers ----


def test_patch_shapes_and_positions_write_exactly_their_pixels():
    x = torch.full((2, 1, 8, 8), 0.5)
    square = attacks.make_trigger("badnets", 1, 8, seed=0, patch_position="top_left")(x)
    assert torch.all(square[..., :3, :3] == 1.0) and (square != x).sum() == 2 * 9
    checker = attacks.make_trigger("badnets", 1, 8, seed=0, patch_shape="checker")(x)
    assert torch.equal(checker[0, 0, -3:, -3:], torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]]))
    cross = attacks.make_trigger(
        "badnets", 1, 8, seed=0, patch_shape="cross", patch_position="center"
    )(x)
    changed = (cross[0, 0] != 0.5).nonzero().tolist()  # a plus centred at (3, 3) in rows 2..4
    assert sorted(changed) == [[2, 3], [3, 2], [3, 3], [3, 4], [4, 3]]
    with pytest.raises(Exception, match="task.patch_position"):
        config.FMTTaskConfig(patch_position="middle")


def test_fgsm_map_attack_is_unprojected_from_one_shared_start_and_pgd_stays_in_the_ball():
    from celine.vision.featuremaps import feature_map_pgd

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
    net.eval()
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    start = (x + 0.1 * noise.sign()).clamp(0, 1)
    adv = feature_map_pgd(
        net, x, "2", [0, 1, 2], eps=0.1, alpha=0.1, steps=1, project=False, start=start
    )
    step = adv - start  # one signed step of eps from the shared start: exactly +-0.1 (or 0)
    assert torch.allclose(step.abs().amax(), torch.tensor(0.1))
    assert (adv - x).abs().amax() > 0.15  # the fgsm script's pixel moves up to alpha + eps
    assert not torch.equal(adv[0], adv[1])  # each map's own gradient, the same start
    pgd = feature_map_pgd(net, x, "2", [0, 1, 2], eps=0.1, alpha=0.1, steps=1, random_start="sign",
                          generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert (pgd - x).abs().amax() <= 0.1 + 1e-6
    with pytest.raises(Exception, match="method.steps"):
        config.FMTConfig(map_attack="fgsm", steps=3)
    assert config.FMTConfig().map_attack == "fgsm"


@pytest.mark.parametrize(
    "arch, stage", [("resnet20", "layer3"), ("preact_resnet18", "layer4"), ("lenet5", "conv2")]
)
def test_fine_pruning_masks_the_last_stage_output_after_the_residual_add(arch, stage):
    from celine.experiments.fmt.defense import last_stage
    from celine.vision.featuremaps import MapMask
    from celine.vision.zoo import build_classifier

    torch.manual_seed(0)
    model = build_classifier(arch, 10, 1, width=0.25, size=16).eval()
    assert last_stage(model) == stage
    x = torch.rand(4, 1, 16, 16)
    if arch == "resnet20":  # the pooled features ARE the stage's channels: pruned ones are 0
        with MapMask(model, {stage: [0, 2]}), torch.no_grad():
            feats = model.features(x)
        assert torch.all(feats[:, [0, 2]] == 0) and torch.all(feats[:, 1] > 0)
    vgg = build_classifier("vgg16_bn", 10, 1, width=0.125, size=16)
    name = last_stage(vgg)
    assert isinstance(dict(vgg.named_modules())[name], nn.ReLU)


def test_backdoored_training_is_bit_identical_per_seed():
    from celine.vision.train import train_classifier
    from celine.vision.zoo import build_classifier

    s = load_images("digits", seed=0, size=8)
    trig = attacks.make_trigger("badnets", 1, 8, seed=3, patch_shape="cross")
    poisoned, _ = attacks.poison_set(s.train.subset(range(96)), trig, 0.1, 0, seed=3)
    weights = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build_classifier("resnet20", 10, 1, width=0.25, size=8)
        train_classifier(model, poisoned, None, epochs=1, lr=5e-3, batch_size=64,
                         optimizer="adam", seed=3)  # fmt: skip
        weights.append(torch.cat([p.detach().flatten() for p in model.state_dict().values()
                                  if p.is_floating_point()]))  # fmt: skip
    assert torch.equal(weights[0], weights[1])
