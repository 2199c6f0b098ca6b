"""Per-token decode latency and state memory against context length."""

from __future__ import annotations

import statistics
import time

import torch

from .decoding import Decoder, Tree, _sync


@torch.no_grad()
def decode_latency(model, contexts: list[int], steps: int, vocab: int, seed: int = 0) -> list[dict]:
    """Prefill `n` random tokens, then time `steps` single-token decode steps (median ms),
    after an untimed warm-up (a prefill and steps at the first context) that takes the
    process's start-up cost out of the first context's number.
    Memory is the bytes of the per-layer decoding state after the prefill (KV cache for
    softmax; S + open chunk + conv buffer for the linear forms)."""
    dec = Decoder(model)
    device = model.lm_head.weight.device
    gen = torch.Generator().manual_seed(seed)
    rows, warm = [], True
    shape = (
        torch.zeros(1, dtype=torch.long, device=device),
        torch.ones(1, 1, dtype=torch.bool, device=device),
    )
    for n in [contexts[0], *contexts]:
        ids = torch.randint(0, vocab, (1, n), generator=gen).to(device)
        states = dec.new_states()
        hidden = dec.prefill(ids, states)[0, -1]
        token = int(dec.logits(hidden).argmax())
        times = []
        for _ in range(steps + 2):  # two warm-up steps
            _sync(device)
            t0 = time.perf_counter()
            h, plan = dec.verify(Tree([token], [-1], device, shape), states)
            dec.commit(plan, [0])
            token = int(dec.logits(h[0, -1]).argmax())  # the .item() syncs too
            times.append(time.perf_counter() - t0)
        if warm:
            warm = False
            continue
        rows.append(
            {
                "context": n,
                "ms_per_token": 1e3 * statistics.median(times[2:]),
                "state_bytes": sum(s.nbytes() for s in states),
            }
        )
        del states
    return rows
