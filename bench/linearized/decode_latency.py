"""Per-token decode latency and decoding-state memory against context length:
recurrent augmented linear attention vs softmax attention with a KV cache, same weights,
same process. Latency only, so the weights are random (a trained model decodes at the same
speed); the architecture is a tiny_llama size preset.

    python bench/linearized/decode_latency.py --size default --contexts 256,1024,4096
    python bench/linearized/decode_latency.py --size gpu --device cuda \
        --contexts 1024,4096,16384,32768,65536 --out /tmp/lat
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import pandas as pd
import torch

from celine.experiments.linearized.latency import decode_latency
from celine.experiments.linearized.linear_llama import linearize
from celine.llm.tiny_llama import PRESETS, build_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="default", choices=list(PRESETS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--contexts", default="256,1024,4096")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--variants", default="softmax,augmented")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    arch = PRESETS[args.size].arch
    base = build_model(arch, arch.vocab_size, seed=0).eval()
    contexts = [int(c) for c in args.contexts.split(",")]
    rows = []
    for variant in args.variants.split(","):
        model = linearize(copy.deepcopy(base), variant).to(args.device)
        for r in decode_latency(model, contexts, args.steps, arch.vocab_size):
            rows.append({"variant": variant, **r})
            print(
                f"{variant:10s} ctx {r['context']:6d}: {r['ms_per_token']:.3f} ms/token, "
                f"state {r['state_bytes'] / 2**20:.1f} MiB",
                flush=True,
            )
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    table = pd.DataFrame(rows)
    wide = table.pivot(index="context", columns="variant", values="ms_per_token")
    for v in wide.columns:  # growth against the shortest context, per variant
        wide[f"{v}_growth"] = wide[v] / wide[v].iloc[0]
    if {"softmax", "augmented"} <= set(table["variant"]):
        wide["softmax_over_linear"] = wide["softmax"] / wide["augmented"]
    print(wide.round(3).to_string())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "decode_latency.csv", index=False)
        wide.to_csv(out / "decode_latency_ratios.csv")
        name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        (out / "decode_latency_meta.json").write_text(
            json.dumps({"device": name, "size": args.size, "steps": args.steps}, indent=1)
        )


if __name__ == "__main__":
    main()
