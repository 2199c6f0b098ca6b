"""The fmt task: a dataset, a backdoor attack, the backdoored model (trained once, cached) and the
measurements every defence gets (clean accuracy, attack success rate, robust accuracy)."""

from __future__ import annotations

import copy
from dataclasses import asdict

import torch

from celine.api import ConfigError, RunContext, load_checkpoint
from celine.vision.task import ImageTask

from .attacks import make_trigger, poison_set, triggered_test


class FMTTask(ImageTask):
    def __init__(self, cfg, ctx: RunContext) -> None:
        super().__init__(cfg, ctx)
        self._model = None

    def check(self, splits) -> None:
        if self.cfg.target >= splits.num_classes:
            raise ConfigError("task.target", self.cfg.target, f"expected < {splits.num_classes}")

    def trigger(self):
        c = self.cfg
        return make_trigger(
            c.attack, self.in_channels, self.size, seed=self.seed, patch_size=c.patch_size,
            blend_alpha=c.blend_alpha, wanet_k=c.wanet_k, wanet_s=c.wanet_s,
            sig_delta=c.sig_delta, sig_freq=c.sig_freq, patch_shape=c.patch_shape,
            patch_position=c.patch_position,
        )  # fmt: skip

    def clean_subset(self):
        """The defender's data: a class-balanced `clean_ratio` of the clean training images."""
        train = self.splits().train
        g = torch.Generator().manual_seed(30_011 + self.seed)
        picked = []
        for c in range(self.num_classes):
            idx = torch.nonzero(train.y == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            picked.append(idx[: max(1, round(self.cfg.clean_ratio * len(idx)))])
        return train.subset(torch.cat(picked).sort().values)

    def backdoor_test(self):
        return triggered_test(self.splits().test, self.trigger(), self.cfg.target)

    # ---- the backdoored model ----------------------------------------------------------------
    def backdoored_model(self):
        """The model trained on the poisoned set (cached under outputs/models/fmt by config);
        each call returns a fresh copy that a defence may modify."""
        if self._model is None:
            self._model = self._train_backdoored()
        return copy.deepcopy(self._model)

    def _train_backdoored(self):
        from celine.vision.train import config_key, train_classifier
        from celine.vision.zoo import build_classifier

        c, mc, ctx = self.cfg, self.ctx.model_cfg, self.ctx
        spec = {k: v for k, v in asdict(c).items() if k not in ("backdoor_map_fraction",)}
        spec.update(arch=mc.arch, width=mc.width, seed=self.seed, path=mc.path)
        key = config_key(spec)
        ckpt = ctx.outputs_dir / "models" / "fmt" / f"{c.data}-{c.attack}-{mc.arch}-{key}.pt"
        torch.manual_seed(self.seed)
        model = build_classifier(
            mc.arch, self.num_classes, self.in_channels, width=mc.width, size=self.size
        )
        device = ctx.hardware.device
        if mc.path:  # a user's own (backdoored) checkpoint: evaluate and defend it as it is
            state = load_checkpoint(mc.path, "model.path")  # never unpickled: may be hostile
            model.load_state_dict(state.get("model", state))
            self.history = []
            return model.to(device).eval()
        poisoned, idx = poison_set(
            self.splits().train, self.trigger(), c.poison_ratio, c.target, self.seed
        )
        ctx.log.info(
            "backdoored model: %s x%.2f on %s, %s attack, %d of %d training images poisoned "
            "(target %d); checkpoint %s",
            mc.arch, mc.width, c.data, c.attack, len(idx), len(poisoned), c.target, ckpt,
        )  # fmt: skip
        self.history = train_classifier(
            model, poisoned, self.splits().val, epochs=c.epochs, lr=c.lr,
            batch_size=c.batch_size, weight_decay=c.weight_decay, optimizer=c.optimizer,
            seed=self.seed, device=device, log=ctx.log, checkpoint=ckpt,
        )  # fmt: skip
        self.poisoned_count = len(idx)
        return model.eval()

    # ---- measurements ------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        """acc: clean test accuracy; asr: share of triggered non-target test images predicted as
        the target; ra: share of them still given their true label."""
        from celine.vision.train import predict

        device = self.ctx.hardware.device
        test, bd = self.splits().test, self.backdoor_test()
        clean = predict(model, test.x, device).argmax(1)
        trig = predict(model, bd.x, device).argmax(1)
        return {
            "acc": float((clean == test.y).float().mean()),
            "asr": float((trig == self.cfg.target).float().mean()),
            "ra": float((trig == bd.y).float().mean()),
        }

    @torch.no_grad()
    def val_accuracy(self, model) -> float:
        """Clean accuracy on the validation split: what a defender can check a defence's cost
        on (the prune ratio is chosen by it), unlike the test split's `acc`."""
        from celine.vision.train import predict

        val = self.splits().val
        pred = predict(model, val.x, self.ctx.hardware.device).argmax(1)
        return float((pred == val.y).float().mean())

    @torch.no_grad()
    def backdoor_maps(self, model) -> tuple[dict[str, list[int]], dict[str, torch.Tensor]]:
        """Ground truth for evaluation only: per conv layer, the `backdoor_map_fraction` maps
        whose mean absolute change between clean and triggered test images is largest (TAC)."""
        from celine.vision.featuremaps import conv_layers, forward_with_maps

        bd = self.backdoor_test()
        test = self.splits().test
        clean_x = test.x[test.y != self.cfg.target]
        layers = list(conv_layers(model))
        device = self.ctx.hardware.device
        _, a = forward_with_maps(model, clean_x.to(device), layers, detach=True)
        _, b = forward_with_maps(model, bd.x.to(device), layers, detach=True)
        tac, truth = {}, {}
        for name in layers:
            tac[name] = (a[name] - b[name]).abs().flatten(2).mean(2).mean(0).cpu()
            k = int(round(self.cfg.backdoor_map_fraction * len(tac[name])))
            truth[name] = tac[name].argsort(descending=True)[:k].tolist()
        return truth, tac


def offline_task(attack: str, seed: int, *, arch: str, width: float, outputs, device: str = "cpu",
                 **task_overrides) -> FMTTask:  # fmt: skip
    """The fmt task outside a run (the detection probe): the context `celine run task=fmt` would
    build (`celine.api.context`: the config composed and validated, the hardware resolved and
    seeded), untracked, so the cached backdoored model of the same config is found."""
    import json
    from pathlib import Path

    from celine import api

    overrides = [
        "task=fmt", f"task.attack={attack}", f"seed={seed}", f"model.arch={arch}",
        f"model.width={width}", f"paths.outputs='{Path(outputs).resolve()}'",
        "hardware=cuda" if device.startswith("cuda") else "hardware=cpu",
        f"hardware.device={device}",
        *(f"task.{k}={json.dumps(v)}" for k, v in task_overrides.items()),
    ]  # fmt: skip
    return api.context(overrides).task
