"""Calibration: input Hessians of every nn.Linear of a causal LM's decoder blocks, collected
block by block ("sequential"): block i's Hessians are measured with blocks < i already quantized,
as the reference does. Embeddings and the LM head stay in full precision."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn


class _Stop(Exception):
    """Raised after the block of interest, so a pass does not run the rest of the model."""


def decoder_blocks(model) -> nn.ModuleList:
    """The decoder blocks of a transformers causal LM (Llama/Mistral/Qwen, OPT, GPT-NeoX)."""
    for path in ("model.layers", "model.decoder.layers", "gpt_neox.layers", "transformer.h"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ValueError(f"cannot find the decoder blocks of {type(model).__name__}")


def block_linears(block: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}


@torch.no_grad()
def hessians(model, calib: torch.Tensor, blocks: list[int], batch_size: int = 8) -> dict:
    """`{(block, linear name): sum x x^T / count}` (float64) for the listed blocks, from one pass
    over `calib [n, seqlen]` stopped after the last listed block."""
    layers = decoder_blocks(model)
    found: dict = {}
    counts: dict = {}
    hooks = []

    def hook(key):
        def fn(mod, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            found[key] = found.get(key, 0) + x.T @ x
            counts[key] = counts.get(key, 0) + x.shape[0]

        return fn

    for b in blocks:
        for name, lin in block_linears(layers[b]).items():
            hooks.append(lin.register_forward_pre_hook(hook((b, name))))
    last = max(blocks)

    def stop(mod, args, out):
        raise _Stop

    hooks.append(layers[last].register_forward_hook(stop))
    device = next(model.parameters()).device
    try:
        for i in range(0, calib.shape[0], batch_size):
            with contextlib.suppress(_Stop):
                model(input_ids=calib[i : i + batch_size].to(device))
    finally:
        for h in hooks:
            h.remove()
    return {k: (v / counts[k]).cpu() for k, v in found.items()}


def quantize_sequential(
    model,
    calib: torch.Tensor,
    quantize: Callable[[int, str, nn.Linear, torch.Tensor], nn.Module | None],
    log=None,
    batch_size: int = 8,
) -> None:
    """For each block: measure its linears' Hessians (earlier blocks already quantized), then
    call `quantize(block, name, linear, H)` for each; a returned module replaces the linear."""
    layers = decoder_blocks(model)
    for b in range(len(layers)):
        hs = hessians(model, calib, [b], batch_size)
        for name, lin in block_linears(layers[b]).items():
            new = quantize(b, name, lin, hs[(b, name)])
            if new is not None:
                parent_name, _, child = name.rpartition(".")
                parent = layers[b].get_submodule(parent_name) if parent_name else layers[b]
                setattr(parent, child, new)
        if log is not None:
            log.info("quantized block %d/%d", b + 1, len(layers))
