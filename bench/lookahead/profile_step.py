"""Where a lookahead step's time goes outside the model: decoding a random-weight gpu-size
tiny_llama on the CPU, the time inside `model.forward` is separated from everything else
(mask/position building, pool updates, commit, cache compaction), per decoder.

    OMP_NUM_THREADS=1 python bench/lookahead/profile_step.py [--cprofile] [--size gpu]

What matters on a GPU is the non-model time per step (the forward of a small model is itself
launch-bound there), so that is what this prints, in ms per step.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from dataclasses import replace

import torch

from celine.experiments.lookahead.baselines import greedy, greedy_loop
from celine.experiments.lookahead.decoding import lookahead_generate
from celine.llm.tiny_llama import build_model, get_preset


class ForwardClock:
    """Accumulates wall time spent inside the model's top-level forward."""

    def __init__(self, model) -> None:
        self.total, self.calls, self._t = 0.0, 0, 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_):
        self._t = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._t
        self.calls += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="gpu")
    ap.add_argument("--layers", type=int, default=None, help="override the preset's layers")
    ap.add_argument(
        "--hidden",
        type=int,
        default=None,
        help="e.g. 64: compute becomes negligible, so per-step overhead stands out",
    )
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cprofile", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    arch = get_preset(args.size).arch
    if args.layers:
        arch = replace(arch, layers=args.layers)
    if args.hidden:
        arch = replace(
            arch,
            hidden=args.hidden,
            intermediate=args.hidden * 2,
            heads=max(1, args.hidden // 64),
            kv_heads=max(1, args.hidden // 128),
        )
    model = build_model(arch, arch.vocab_size).eval()
    rng = random.Random(0)
    prompts = [[rng.randrange(3, arch.vocab_size) for _ in range(128)] for _ in range(2)]
    clock = ForwardClock(model)
    kw = dict(max_new_tokens=args.max_new, eos_token_id=None)
    decoders = {
        "greedy (generate)": lambda: greedy(model, prompts, **kw),
        "greedy_loop": lambda: greedy_loop(model, prompts, batch_size=args.batch, **kw),
        "lookahead 5,7,7": lambda: lookahead_generate(
            model, prompts, level=5, window=7, guess_set_size=7, pool_from_prompt=True,
            batch_size=args.batch, **kw),
        "lookahead 7,20,20": lambda: lookahead_generate(
            model, prompts, level=7, window=20, guess_set_size=20, pool_from_prompt=True,
            batch_size=args.batch, **kw),
    }  # fmt: skip
    for name, fn in decoders.items():
        fn()  # warm-up
        clock.total, clock.calls = 0.0, 0
        prof = cProfile.Profile() if args.cprofile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        out = fn()
        if prof:
            prof.disable()
        wall = time.perf_counter() - t0
        steps = clock.calls
        print(f"{name:20s} {out.total_tokens:4d} tok {steps:4d} steps  "
              f"model {1e3 * clock.total / steps:6.2f} ms/step  "
              f"other {1e3 * (wall - clock.total) / steps:6.2f} ms/step", flush=True)  # fmt: skip
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()
