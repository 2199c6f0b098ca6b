"""The deepfeature task: a dataset, the model under test (trained once, cached), the tested
layer, and the candidate pool (every test image under several benign mutations)."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from celine.api import ConfigError, RunContext, load_checkpoint
from celine.vision.task import ImageTask

from .mutations import mutate


@dataclass
class Pool:
    x: Tensor  # mutated images
    origin: Tensor  # the unmutated image each one came from
    y: Tensor  # true labels
    kinds: list[str]


class DeepFeatureTask(ImageTask):
    def __init__(self, cfg, ctx: RunContext) -> None:
        super().__init__(cfg, ctx)
        self._model = None
        self._pool = None
        self._pred: dict[str, Tensor] = {}

    def model(self):
        """The clean model under test (cached under outputs/models/deepfeature by config); a
        fresh copy per call, so repair never touches the cached one."""
        if self._model is None:
            self._model = self._train()
        return copy.deepcopy(self._model)

    def _train(self):
        from celine.vision.train import config_key, train_classifier
        from celine.vision.zoo import build_classifier

        c, mc, ctx = self.cfg, self.ctx.model_cfg, self.ctx
        torch.manual_seed(self.seed)
        model = build_classifier(
            mc.arch, self.num_classes, self.in_channels, width=mc.width, size=self.size
        )
        if mc.path:
            state = load_checkpoint(mc.path, "model.path")
            model.load_state_dict(state.get("model", state))
            return model.eval()
        keys = ("data", "data_root", "size", "val_fraction", "test_fraction", "epochs", "lr",
                "optimizer", "batch_size", "weight_decay")  # fmt: skip
        spec = {k: asdict(c)[k] for k in keys}
        spec.update(arch=mc.arch, width=mc.width, seed=self.seed)
        ckpt = (
            ctx.outputs_dir / "models" / "deepfeature"
            / f"{c.data}-{mc.arch}-{config_key(spec)}.pt"
        )  # fmt: skip
        s = self.splits()
        train_classifier(
            model, s.train, s.val, epochs=c.epochs, lr=c.lr, batch_size=c.batch_size,
            weight_decay=c.weight_decay, optimizer=c.optimizer, seed=self.seed,
            device="cpu", log=ctx.log, checkpoint=ckpt,
        )  # fmt: skip
        return model.eval()

    def layer(self, model) -> str:
        from celine.vision.featuremaps import resolve_layer

        try:
            return resolve_layer(model, self.cfg.layer)
        except KeyError as err:
            raise ConfigError("task.layer", self.cfg.layer, str(err)) from None

    def pool(self) -> Pool:
        """Every test image under `mutations_per_image` benign mutations (seeded)."""
        if self._pool is None:
            test = self.splits().test
            m = self.cfg.mutations_per_image
            origin = test.x.repeat(m, 1, 1, 1)
            x, kinds = mutate(origin, seed=1_000 + self.seed, strength=self.cfg.mutation_strength)
            self._pool = Pool(x, origin, test.y.repeat(m), kinds)
        return self._pool

    def mutated_val(self) -> tuple[Tensor, Tensor]:
        """(clean, mutated) validation images: where FVS is measured by default."""
        val = self.splits().val
        x, _ = mutate(val.x, seed=2_000 + self.seed, strength=self.cfg.mutation_strength)
        return val.x, x

    def budget(self) -> int:
        return max(1, int(round(self.cfg.budget * len(self.pool().x))))

    @torch.no_grad()
    def pool_predictions(self, model) -> Tensor:
        key = "pool"
        if key not in self._pred:
            x = self.pool().x
            model.eval()
            self._pred[key] = torch.cat([model(x[i : i + 1024]).argmax(1) for i in range(0, len(x), 1024)])  # fmt: skip
        return self._pred[key]
