"""Training loops: linearization fine-tuning, Medusa heads, and the truncated draft model.

Plain loops over random windows of the training stream (`celine.llm.train.get_batch`, the
batch at step s is a function of (seed, s)), AdamW with warmup + cosine decay.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from celine.llm.tiny_llama import Recipe
from celine.llm.train import get_batch, lr_lambda, make_optimizer

OnLog = Callable[[int, dict], None]


def _recipe(steps, batch_size, seq_len, lr, warmup, weight_decay=0.0, grad_clip=1.0) -> Recipe:
    return Recipe(
        steps=max(steps, 1),
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        warmup=max(1, min(warmup, steps)),
        weight_decay=weight_decay,
        grad_clip=grad_clip,
    )


def _lm_loss(model, x, y) -> torch.Tensor:
    logits = model(input_ids=x).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def _loop(params_model, loss_fn, stream, recipe, seed, device, on_log: OnLog, prefix: str):
    """The shared loop; returns the last logged loss."""
    opt = make_optimizer(params_model, recipe)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe))
    autocast = device.type == "cuda"
    params = [p for p in params_model.parameters() if p.requires_grad]
    running, last = 0.0, float("nan")
    for step in range(recipe.steps):
        x, y = get_batch(stream, recipe.batch_size, recipe.seq_len, seed, step)
        x, y = x.to(device), y.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % 10 == 0 or step + 1 == recipe.steps:
            last = running / ((step % 10) + 1)
            on_log(step + 1, {f"{prefix}/loss": last, f"{prefix}/lr": sched.get_last_lr()[0]})
            running = 0.0
    return last


def finetune(model, stream: np.ndarray, cfg, seq_len: int, seed: int, on_log: OnLog):
    """Fine-tune a linearized model in place (full, or LoRA merged back at the end)."""
    device = model.lm_head.weight.device
    if cfg.finetune == "none" or cfg.steps == 0:
        return model, float("nan")
    recipe = _recipe(
        cfg.steps, cfg.batch_size, seq_len, cfg.lr, cfg.warmup, cfg.weight_decay, cfg.grad_clip
    )
    target = model
    if cfg.finetune == "lora":
        from peft import LoraConfig, get_peft_model

        target = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=list(cfg.lora_targets),
            ),
        )
        # the reference also trains embeddings, norms and the new attention parameters
        keys = [*cfg.trainable_params, "conv_weight", "global_factor"]
        for name, p in target.named_parameters():
            if any(k in name for k in keys):
                p.requires_grad_(True)
    target.train()
    last = _loop(
        target,
        lambda x, y: _lm_loss(target, x, y),
        stream,
        recipe,
        seed,
        device,
        on_log,
        "finetune",
    )
    target.eval()
    if cfg.finetune == "lora":
        model = target.merge_and_unload()
    return model, last


def train_medusa(model, heads, stream, cfg, seq_len: int, seed: int, on_log: OnLog) -> float:
    """Medusa-1: the base model is frozen; head k at position i learns token i+k+2."""
    device = model.lm_head.weight.device
    recipe = _recipe(cfg.medusa_steps, cfg.medusa_batch_size, seq_len, cfg.medusa_lr, 10)
    heads.train()

    def loss_fn(x, y):
        with torch.no_grad():
            h = model.model(input_ids=x).last_hidden_state
        total = 0.0
        for k, logits in enumerate(heads(h)):
            shift = k + 1  # y[i] is token i+1; head k predicts token i+k+2 = y[i+k+1]
            pred = logits[:, :-shift].float()
            total = total + F.cross_entropy(
                pred.reshape(-1, pred.size(-1)), y[:, shift:].reshape(-1)
            )
        return total / len(heads.heads)

    last = _loop(heads, loss_fn, stream, recipe, seed + 1, device, on_log, "medusa")
    heads.eval()
    return last


def truncated_draft(model, layers: int):
    """A copy of the (linearized) target keeping its first `layers` decoder layers, the final
    norm and the LM head: same tokenizer, no extra checkpoint needed."""
    draft = copy.deepcopy(model)
    draft.model.layers = draft.model.layers[:layers]
    draft.config.num_hidden_layers = layers
    return draft


def train_draft(draft, stream, cfg, seq_len: int, seed: int, on_log: OnLog) -> float:
    if cfg.draft_steps == 0:
        return float("nan")
    device = draft.lm_head.weight.device
    recipe = _recipe(cfg.draft_steps, cfg.batch_size, seq_len, cfg.lr, cfg.warmup)
    draft.train()
    last = _loop(
        draft, lambda x, y: _lm_loss(draft, x, y), stream, recipe, seed + 2, device, on_log, "draft"
    )
    draft.eval()
    return last
