"""The training loop: plain, readable, resumable.

- AdamW (no weight decay on norms/biases), linear warmup then cosine decay to
  lr * min_lr_ratio, gradient clipping, optional bf16 autocast.
- Data: one long token stream (documents as <bos> text <eos>, concatenated); the batch
  at step s is a pure function of (seed, s): random windows drawn from a generator
  seeded with [seed, s]. A resumed run therefore sees exactly the batches it would have.
- Every `checkpoint_interval` steps, and on SIGTERM / Ctrl-C (deferred to the end of
  the current step, so the state saved is consistent), model + optimizer + scheduler +
  step + RNG states are written atomically (tmp file, then os.replace). Rerunning with
  the same out_dir resumes there and ends at the same final step.
- At the end: `save_pretrained` (safetensors) + tokenizer + `celine_meta.json`. The
  metadata file is written last; its presence marks the checkpoint complete.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from celine.errors import Interrupted
from celine.llm.tiny_llama import Recipe

STATE_FILE = "training_state.pt"
META_FILE = "celine_meta.json"

OnLog = Callable[[int, dict], None]


class TrainingInterrupted(Interrupted):
    """Raised when training stops early (SIGTERM or `stop_after_step`); the state at
    `step` is saved and a rerun resumes from it."""

    def __init__(self, step: int, reason: str):
        super().__init__(f"training stopped at step {step} ({reason}); rerun to resume")
        self.step = step
        self.reason = reason


# ----------------------------------------------------------------------------- data


def token_stream(docs_ids: list[list[int]]) -> np.ndarray:
    """Concatenate tokenized documents into one int32 stream."""
    if not docs_ids:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate([np.asarray(d, dtype=np.int32) for d in docs_ids])


def get_batch(
    stream: np.ndarray, batch_size: int, seq_len: int, seed: int, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of shape (batch, seq_len) for `step`; depends only on
    (stream, seed, step), not on any global RNG state."""
    if len(stream) < seq_len + 2:
        raise ValueError(
            f"training stream has {len(stream)} tokens, fewer than seq_len+2={seq_len + 2}"
        )
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(stream) - seq_len - 1, size=batch_size)
    window = torch.from_numpy(stream[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64))
    return window[:, :-1], window[:, 1:]


# ----------------------------------------------------------------------------- schedule


def lr_lambda(recipe: Recipe) -> Callable[[int], float]:
    """Multiplier of the peak lr after `s` optimizer steps: linear warmup, then cosine."""

    def f(s: int) -> float:
        if s < recipe.warmup:
            return (s + 1) / recipe.warmup
        progress = min(1.0, (s - recipe.warmup) / max(1, recipe.steps - recipe.warmup))
        return recipe.min_lr_ratio + (1 - recipe.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    return f


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    # Weight decay only on matrices: decaying norm gains pulls them toward 0 for no gain.
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=(recipe.beta1, recipe.beta2), eps=1e-8)


# ----------------------------------------------------------------------------- checkpoints


def atomic_write_bytes(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save_state(path: Path, model, optimizer, scheduler, step: int, elapsed: float) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "elapsed_s": elapsed,
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
    }
    atomic_write_bytes(path, lambda p: torch.save(state, p))


def _numpy_rng_globals() -> list:
    """What numpy's RNG state (an ndarray in a tuple) needs from a weights-only load: the array
    type and its reconstructor, nothing that can run code."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy 2
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_state(path: Path, model, optimizer, scheduler) -> tuple[int, float]:
    # the state lives in a cache folder other runs (and people) share: never unpickle it
    with torch.serialization.safe_globals(_numpy_rng_globals()):
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return int(state["step"]), float(state.get("elapsed_s", 0.0))


def is_complete(out_dir: str | os.PathLike) -> bool:
    meta = Path(out_dir) / META_FILE
    if not meta.exists():
        return False
    try:
        return bool(json.loads(meta.read_text()).get("complete"))
    except (json.JSONDecodeError, OSError):
        return False


@contextmanager
def _deferred_signals():
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a checkpoint is never
    taken mid-update. A second Ctrl-C interrupts at once. Only possible in the main thread."""
    flag = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if flag["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signal"] = signum

    for s in previous:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def eval_loss(model, stream: np.ndarray, recipe: Recipe, device: torch.device) -> float:
    """Mean token NLL on the first `eval_tokens` tokens of the validation stream, in
    non-overlapping windows of seq_len (the same windows every time)."""
    from celine.llm.evaluate import perplexity

    n = min(len(stream), recipe.eval_tokens + 1)
    res = perplexity(
        model, stream[:n], window=recipe.seq_len, batch_size=recipe.batch_size, device=device
    )
    return res.mean_nll


# ----------------------------------------------------------------------------- the loop


def train(
    model,
    train_stream: np.ndarray,
    val_stream: np.ndarray,
    recipe: Recipe,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    tokenizer=None,
    config: dict | None = None,
    on_log: OnLog | None = None,
    stop_after_step: int | None = None,
    progress: bool = True,
    bf16: bool | None = None,
) -> dict:
    """Train `model` to `recipe.steps`, resuming from `out_dir/training_state.pt` if it
    exists; returns the final metrics. Saves the final model, `tokenizer` and metadata
    (`config` is stored in it) into `out_dir`.

    `stop_after_step=k` saves the state after step k and raises TrainingInterrupted
    (for tests of resuming, and for splitting a long run into jobs). `bf16` forces bf16
    autocast on or off (default: the recipe's flag, on accelerators only).
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    model.to(device)
    model.train()
    optimizer = make_optimizer(model, recipe)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe))
    state_path = out / STATE_FILE
    step, elapsed_before = 0, 0.0
    if state_path.exists():
        step, elapsed_before = load_state(state_path, model, optimizer, scheduler)
    # bf16 autocast: forced by `bf16`, else the recipe's choice on accelerators only (a
    # CPU without bf16 units runs it an order of magnitude slower).
    use_bf16 = bool(bf16) if bf16 is not None else (recipe.bf16 and device.type != "cpu")
    metrics: dict[str, float] = {}
    start = time.time()
    tokens_per_step = recipe.batch_size * recipe.seq_len
    log_t, log_step = time.time(), step

    def log(step_done: int, m: dict) -> None:
        metrics.update(m)
        if on_log is not None:
            on_log(step_done, dict(m))

    def save() -> None:
        """The resumable state at the current step (atomic: a kill mid-write loses nothing)."""
        save_state(
            state_path, model, optimizer, scheduler, step, elapsed_before + time.time() - start
        )

    bar = tqdm(
        total=recipe.steps,
        initial=step,
        file=sys.stderr,
        disable=not progress,
        desc="train",
        dynamic_ncols=True,
    )
    with _deferred_signals() as flag:
        consistent_step = step  # last step whose update completed (safe to checkpoint)
        try:
            while step < recipe.steps:
                x, y = get_batch(train_stream, recipe.batch_size, recipe.seq_len, seed, step)
                x, y = x.to(device), y.to(device)
                with torch.autocast(
                    device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16
                ):
                    logits = model(input_ids=x).logits
                loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                consistent_step = step
                bar.update(1)

                if step % recipe.log_interval == 0 or step == recipe.steps:
                    now = time.time()
                    tps = (step - log_step) * tokens_per_step / max(now - log_t, 1e-9)
                    log_t, log_step = now, step
                    lval = loss.item()
                    bar.set_postfix(loss=f"{lval:.3f}")
                    log(
                        step,
                        {
                            "train/loss": lval,
                            "train/lr": scheduler.get_last_lr()[0],
                            "train/grad_norm": float(grad_norm),
                            "train/tokens_per_s": tps,
                        },
                    )
                if step % recipe.eval_interval == 0 or step == recipe.steps:
                    model.eval()
                    vl = eval_loss(model, val_stream, recipe, device)
                    model.train()
                    log(step, {"val/loss": vl, "val/perplexity": math.exp(vl)})
                    log_t = time.time()  # eval time is not training throughput
                if step % recipe.checkpoint_interval == 0 and step < recipe.steps:
                    save()
                if flag["signal"] == signal.SIGINT:
                    raise KeyboardInterrupt  # the handler below saves the state
                if flag["signal"] is not None or (
                    stop_after_step is not None and step >= stop_after_step and step < recipe.steps
                ):
                    save()
                    reason = (
                        "SIGTERM"
                        if flag["signal"] is not None
                        else f"stop_after_step={stop_after_step}"
                    )
                    raise TrainingInterrupted(step, reason)
        except KeyboardInterrupt:
            # Raised by our deferred handler, or by a callback after a completed step.
            if consistent_step == step:
                save()
            raise
        finally:
            bar.close()

    wall = elapsed_before + time.time() - start
    model.eval()
    save_final(
        out,
        model,
        tokenizer,
        {
            "complete": True,
            "final_step": step,
            "final_metrics": metrics,
            "wall_time_s": wall,
            "recipe": asdict(recipe),
            "seed": seed,
            "config": config or {},
        },
    )
    state_path.unlink(missing_ok=True)
    return {**metrics, "wall_time_s": wall, "final_step": step}


def save_final(out: Path, model, tokenizer, meta: dict) -> None:
    """Model (safetensors) and tokenizer first, the completion marker last."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a one-shard "Writing model shards" bar is only noise
    model.save_pretrained(str(out), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    text = json.dumps(meta, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(out / META_FILE, lambda p: p.write_text(text))
