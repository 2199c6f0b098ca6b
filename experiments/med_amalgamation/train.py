"""Plain training loops: experts (one per task, cached), the amalgamated model, joint SwinUNETR."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import torch

from .data import TaskData, boxes_from_masks, points_from_masks
from .nets import build_dynunet


def _batches(n: int, batch_size: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def expert_key(expert_cfg, task_cfg, task_name: str, seed: int) -> str:
    """Everything that changes an expert's weights, hashed: the cache file name."""
    recipe = {k: v for k, v in dataclasses.asdict(expert_cfg).items() if k != "cache_dir"}
    data = {
        k: getattr(task_cfg, k)
        for k in ("source", "data_root", "spatial_dims", "image_size", "n_train", "channel",
                  "label_classes", "data_seed")
    }  # fmt: skip
    for k in ("pixdim", "intensity_range"):  # only where set: older cache keys stay valid
        if getattr(task_cfg, k, None):
            data[k] = list(getattr(task_cfg, k))
    data["tasks_order"] = list(task_cfg.tasks)  # data seeds depend on the task's position
    blob = json.dumps({"recipe": recipe, "data": data, "task": task_name, "seed": seed},
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def expert_augmentation(dims: int, seed: int):
    """nnU-Net-style augmentation in small, from MONAI: mirroring on every axis, 90-degree
    rotations in the first plane, intensity scaling and shifting. None of them changes whether an
    object is a disc, a square or large, so the labels stay exact."""
    from monai.transforms import (
        Compose,
        RandFlipd,
        RandRotate90d,
        RandScaleIntensityd,
        RandShiftIntensityd,
    )

    keys = ["image", "label"]
    aug = Compose(
        [
            *[RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(dims)],
            RandRotate90d(keys, prob=0.5, max_k=3, spatial_axes=(0, 1)),
            RandScaleIntensityd("image", factors=0.1, prob=0.5),
            RandShiftIntensityd("image", offsets=0.05, prob=0.5),
        ]
    )
    aug.set_random_state(seed=seed)

    def apply(x: torch.Tensor, y: torch.Tensor):
        out = [aug({"image": xi, "label": yi}) for xi, yi in zip(x, y, strict=True)]
        xs = torch.stack([torch.as_tensor(o["image"]).as_subclass(torch.Tensor) for o in out])
        ys = torch.stack([torch.as_tensor(o["label"]).as_subclass(torch.Tensor) for o in out])
        return xs.contiguous(), ys.contiguous()

    return apply


def train_expert(net, task: TaskData, cfg, device, seed: int, log=None, on_step=None) -> dict:
    """nnU-Net recipe in small: SGD (Nesterov) with poly learning-rate decay, Dice + CE, with
    augmentation (`augment`)."""
    from monai.losses import DiceCELoss

    augment = expert_augmentation(task.train_x.ndim - 2, seed) if cfg.augment else None
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    n = len(task.train_x)
    total = max(1, cfg.epochs * -(-n // cfg.batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / total) ** 0.9)
    gen = torch.Generator().manual_seed(seed)
    net.to(device).train()
    step, last = 0, float("nan")
    for epoch in range(cfg.epochs):
        running = []
        for idx in _batches(n, cfg.batch_size, gen):
            x, y = task.train_x[idx], task.train_y[idx]
            if augment is not None:
                x, y = augment(x, y)
            x, y = x.to(device), y.to(device)
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12.0)  # nnU-Net clips at 12
            opt.step()
            sched.step()
            step += 1
            running.append(loss.item())
        last = sum(running) / len(running)
        if on_step is not None:
            on_step(step, last)
        if log is not None and (epoch + 1) % 10 == 0:
            log.info("expert %s epoch %d/%d loss %.4f", task.name, epoch + 1, cfg.epochs, last)
    net.eval()
    return {"final_loss": last, "steps": step}


def get_experts(tasks, task_cfg, expert_cfg, cache_root: Path, device, seed: int, log):
    """One trained, frozen DynUNet per task: loaded from the cache, or trained and saved."""
    experts, info = [], []
    if expert_cfg.seed is not None:
        seed = expert_cfg.seed
    for k, task in enumerate(tasks):
        key = expert_key(expert_cfg, task_cfg, task.name, seed)
        path = cache_root / f"med_expert-{task.name}-{key}.pt"
        net = build_dynunet(expert_cfg, task_cfg.spatial_dims)
        if path.is_file():
            blob = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle
            net.load_state_dict(blob["state_dict"])
            meta = {**blob["meta"], "cached": True}
            log.info("expert %s: cached %s", task.name, path.name)
        else:
            started = time.time()
            log.info("expert %s: training (%d epochs)", task.name, expert_cfg.epochs)
            torch.manual_seed(seed * 1000 + k)
            net = build_dynunet(expert_cfg, task_cfg.spatial_dims)
            meta = train_expert(net, task, expert_cfg, device, seed * 1000 + k, log)
            meta["train_time_s"] = time.time() - started
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({"state_dict": net.cpu().state_dict(), "meta": meta}, tmp)
            tmp.replace(path)  # atomic: an interrupted run never leaves half a checkpoint
            meta = {**meta, "cached": False}
        net.to(device).eval().requires_grad_(False)
        experts.append(net)
        info.append({"task": task.name, "path": str(path), **meta})
    return experts, info


def _joint(tasks: list[TaskData]):
    x = torch.cat([t.train_x for t in tasks])
    y = torch.cat([t.train_y for t in tasks])
    return x, y


def make_prompts(y: torch.Tensor, kind: str, jitter: float, gen=None):
    boxes = boxes_from_masks(y.cpu(), jitter, gen) if "box" in kind else None
    points = points_from_masks(y.cpu(), gen) if "point" in kind else None
    dev = y.device
    return (
        boxes.to(dev) if boxes is not None else None,
        points.to(dev) if points is not None else None,
    )


def train_amalgamated(model, tasks, cfg, device, seed: int, log, on_epoch=None) -> dict:
    """All tasks' data together; experts frozen; Dice + CE (sigmoid) on the decoder's mask."""
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(sigmoid=True)
    params = model.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_all, y_all = _joint(tasks)
    n = len(x_all)
    total = max(1, cfg.epochs * -(-n // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    # the experts are frozen and the inputs fixed: their features are computed once, not per step
    feats = _expert_features(model, x_all, device, cfg.batch_size)
    step, last = 0, float("nan")
    for epoch in range(cfg.epochs):
        running = []
        for idx in _batches(n, cfg.batch_size, gen):
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            boxes, points = make_prompts(y, cfg.prompt, cfg.box_jitter, gen)
            logits, _ = model(
                x, boxes=boxes, points=points, expert_feats=[f[idx].to(device) for f in feats]
            )
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            running.append(loss.item())
        last = sum(running) / len(running)
        log.info("%s epoch %d/%d loss %.4f", cfg.name, epoch + 1, cfg.epochs, last)
        if on_epoch is not None:
            on_epoch(step, last)
    model.eval()
    return {"final_loss": last, "steps": step}


@torch.no_grad()
def _expert_features(model, x_all, device, batch_size: int) -> list[torch.Tensor]:
    chunks = [
        model.expert_features(x_all[i : i + batch_size].to(device))
        for i in range(0, len(x_all), batch_size)
    ]
    return [torch.cat([c[k] for c in chunks]).cpu() for k in range(len(model.experts))]


def train_joint(net, tasks, cfg, device, seed: int, log, on_epoch=None) -> dict:
    """SwinUNETR on the union of the tasks, no experts, no prompt: softmax Dice + CE."""
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_all, y_all = _joint(tasks)
    n = len(x_all)
    total = max(1, cfg.epochs * -(-n // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=total, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    net.to(device).train()
    step, last = 0, float("nan")
    for epoch in range(cfg.epochs):
        running = []
        for idx in _batches(n, cfg.batch_size, gen):
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running.append(loss.item())
        last = sum(running) / len(running)
        log.info("med_joint epoch %d/%d loss %.4f", epoch + 1, cfg.epochs, last)
        if on_epoch is not None:
            on_epoch(step, last)
    net.eval()
    return {"final_loss": last, "steps": step}
