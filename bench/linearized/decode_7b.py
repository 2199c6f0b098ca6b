"""Per-token decode latency against context length at Llama-2-7B shapes (issue #28): the
augmented linear attention (one Triton kernel per layer, `kernels/linear_decode.py`, constant-size
state) vs softmax attention with a static KV cache (transformers StaticCache + SDPA, which picks
flash/cuDNN decode kernels since the step attends to every cache slot, no mask), same random bf16
weights, same process, each step one CUDA-graph replay. Plus the prefill attention alone (one
layer's heads): SDPA causal (flash) vs the Triton prefill kernel (`kernels/linear_prefill.py`)
and the room's chunked form in plain PyTorch.

    python bench/linearized/decode_7b.py --out $OUT
    python bench/linearized/decode_7b.py --layers 2 --contexts 1024,2048 --prefill ""   # smoke
    python bench/linearized/decode_7b.py --contexts "" --out $OUT       # the prefill table alone
    python bench/linearized/decode_7b.py --contexts "" --prefill "" --ttft 4096,32768   # TTFT

Latency only: the cache/state contents are random (speed does not depend on them; the state's
size does not depend on the context at all, the KV cache's grows with it). The linear model's
chunk (64), conv kernel (63 taps, 31 causal) and alpha follow the room's defaults; its states are
fp32 S plus bf16 chunk/ring buffers, 32 layers x 32 heads.
"""

# ruff: noqa: B023  (every lambda here is timed at once, inside its own loop iteration)
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.llama7b import StaticDecoder, build_model, device_name, llama_config  # noqa: E402

from celine.kernels.linear_decode import LinearDecodeState, aug_linear_decode  # noqa: E402


class LinearDecodeAttention(nn.Module):
    """Decode-only stand-in for a LlamaAttention: the same projections and RoPE, then the fused
    augmented-linear step on this layer's fixed-size state at the shared position `pos`."""

    def __init__(self, attn, pos: torch.Tensor, batch: int, chunk=64, kernel=63, alpha=0.5,
                 random_state: bool = True):  # fmt: skip
        super().__init__()
        cfg = attn.config
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj,
        )  # fmt: skip
        self.heads, self.head_dim = cfg.num_attention_heads, attn.head_dim
        w = attn.o_proj.weight
        self.half = kernel // 2
        self.conv_weight = nn.Parameter(
            torch.randn(self.heads, kernel, dtype=w.dtype, device=w.device) * 0.1
        )
        self.global_factor = nn.Parameter(torch.full((), alpha, dtype=w.dtype, device=w.device))
        self.pos = pos
        self.state = LinearDecodeState.empty(batch, self.heads, self.head_dim, chunk, self.half,
                                             w.dtype, w.device)  # fmt: skip
        if random_state:  # latency runs: a state as if `pos` tokens had been decoded
            for t in (self.state.S, self.state.k, self.state.v, self.state.ring):
                t.normal_(0, 0.05)

    def forward(self, hidden_states, position_embeddings=None, **kwargs):
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        b, t, _ = hidden_states.shape
        if t != 1:
            raise ValueError(f"LinearDecodeAttention decodes one token per step, got {t}")
        q = self.q_proj(hidden_states).view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden_states).view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        cos, sin = position_embeddings
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        o = aug_linear_decode(q[:, :, 0], k[:, :, 0], v[:, :, 0], self.state, self.pos,
                              self.global_factor, self.conv_weight, self.half)  # fmt: skip
        return self.o_proj(o.reshape(b, 1, -1)), None


@torch.no_grad()
def linear_step_ms(model, attns, position: int, reps: int = 64, rounds: int = 5) -> float:
    """Median ms per decode step of the linearized model (graph replays, `reps` per round from
    `position`, so the chunk fold every 64 tokens is inside the average)."""
    dev = next(model.parameters()).device
    pos = attns[0].pos
    ids = torch.zeros(1, 1, dtype=torch.long, device=dev)
    mask = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=dev)  # unused by the linear layers

    def run():
        logits = model(input_ids=ids, position_ids=pos.view(1, 1), attention_mask=mask,
                       use_cache=False, logits_to_keep=1).logits  # fmt: skip
        ids.copy_(logits[:, -1].argmax(-1, keepdim=True))
        pos.add_(1)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            pos.fill_(position)
            run()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        run()
    per = []
    for _ in range(rounds):
        pos.fill_(position)
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            g.replay()
        b.record()
        torch.cuda.synchronize()
        per.append(a.elapsed_time(b) / reps)
    return statistics.median(per)


@torch.no_grad()
def softmax_step_ms(model, context: int) -> float:
    """One decode step at `context` tokens in the cache: a static cache of exactly context + 1
    slots, so the step attends to every slot and needs no mask (flash/cuDNN decode kernels)."""
    dec = StaticDecoder(model, 1, context + 1, mode="graph", use_mask=False)
    dec.prefill(torch.zeros(1, 1, dtype=torch.long))  # allocates the cache
    for layer in dec.cache.layers:
        layer.keys.normal_()
        layer.values.normal_()
    ms = dec.step_ms(1, context, reps=1, rounds=21)
    del dec
    torch.cuda.empty_cache()
    return ms


def prefill_table(contexts, heads=32, head_dim=128) -> list[dict]:
    """One layer's prefill attention: SDPA causal (flash) against the augmented linear attention
    as the fused Triton kernel (`kernels/linear_prefill.py`) and as the eager chunked form, on
    the same inputs; the kernel's output is checked against the eager form at every length."""
    from triton.testing import do_bench

    from celine.experiments.linearized.attention import VARIANTS, chunked_attention, normalize
    from celine.kernels.linear_prefill import aug_linear_prefill

    rows = []
    for n in contexts:
        q, k, v = (torch.randn(1, heads, n, head_dim, dtype=torch.bfloat16, device="cuda")
                   for _ in range(3))  # fmt: skip
        conv = torch.randn(heads, 63, dtype=torch.bfloat16, device="cuda") * 0.1
        alpha = torch.tensor(0.5, dtype=torch.bfloat16, device="cuda")
        eager = lambda: chunked_attention(normalize(q), normalize(k), v, 64, alpha, conv,  # noqa: E731
                                          VARIANTS["augmented"])  # fmt: skip
        fused = lambda: aug_linear_prefill(q, k, v, 64, alpha, conv)  # noqa: E731
        ref = chunked_attention(normalize(q.double()), normalize(k.double()), v.double(), 64,
                                alpha.double(), conv.double(), VARIANTS["augmented"])  # fmt: skip
        err = float((fused().double() - ref).abs().max() / ref.abs().max())
        sdpa = do_bench(lambda: torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True), return_mode="median")  # fmt: skip
        lin = do_bench(eager, return_mode="median")
        tri = do_bench(fused, return_mode="median")
        rows.append(dict(context=n, sdpa_causal_ms=sdpa, triton_ms=tri, chunked_torch_ms=lin,
                         triton_over_sdpa=tri / sdpa, chunked_over_sdpa=lin / sdpa,
                         triton_rel_err_vs_fp64=err))  # fmt: skip
        print(f"prefill attention {n:6d}: SDPA {sdpa:.3f} ms, Triton {tri:.3f} ms, "
              f"chunked (torch) {lin:.3f} ms, Triton rel. err {err:.1e}", flush=True)  # fmt: skip
        del ref
        torch.cuda.empty_cache()
    return rows


@torch.no_grad()
def ttft_table(size: str, layers, contexts) -> list[dict]:
    """Time to first token at 7B shapes: one forward over a prompt of n tokens (logits of the last
    position only), the softmax model (SDPA causal, flash) against the same weights linearized by
    the room (`linearize(model, "augmented")`: at inference its layers call the Triton prefill
    kernel), same process."""
    from triton.testing import do_bench

    from celine.experiments.linearized.linear_llama import attention_modules, linearize

    cfg = llama_config(size, layers=layers, max_positions=max(contexts) + 1)
    model = build_model(cfg)
    ids = {n: torch.randint(0, cfg.vocab_size, (1, n), device="cuda") for n in contexts}
    rows = [dict(context=n) for n in contexts]
    for label, prepare in (("softmax", None), ("linear", "augmented")):
        if prepare:
            linearize(model, prepare, chunk=64, kernel=63, alpha=0.5)
            for a in attention_modules(model):  # trained-looking conv taps (zero at init)
                a.conv_weight.data.normal_(0, 0.1)
        for r in rows:
            n = r["context"]
            r[f"{label}_ms"] = do_bench(lambda: model(input_ids=ids[n], logits_to_keep=1),
                                        warmup=1, rep=3, return_mode="median")  # fmt: skip
            print(f"ttft {label:7s} {n:6d} tokens: {r[f'{label}_ms']:.1f} ms", flush=True)
    for r in rows:
        r["softmax_over_linear"] = r["softmax_ms"] / r["linear_ms"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="7b")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--contexts", default="1024,2048,4096,8192,16384,32768")
    ap.add_argument("--prefill", default="1024,2048,4096,8192,16384,32768")
    ap.add_argument("--ttft", default="", help="contexts for the time-to-first-token table")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/linearized_7b"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ttft:
        tt = pd.DataFrame(
            ttft_table(args.size, args.layers, [int(c) for c in args.ttft.split(",")])
        )
        tt.insert(0, "gpu", device_name())
        tt.to_csv(args.out / "ttft_7b.csv", index=False)
        print(tt.round(3).to_string(index=False))
        torch.cuda.empty_cache()
    gpu = device_name()
    contexts = [int(c) for c in args.contexts.split(",") if c]
    if not contexts:  # the prefill table alone (or nothing more)
        if args.prefill:
            p = pd.DataFrame(prefill_table([int(c) for c in args.prefill.split(",")]))
            p.insert(0, "gpu", gpu)
            p.to_csv(args.out / "prefill_attention_7b.csv", index=False)
            print(p.round(3).to_string(index=False))
        return
    cfg = llama_config(args.size, layers=args.layers, max_positions=max(contexts) + 1)
    model = build_model(cfg)
    rows = []
    for n in contexts:
        rows.append(dict(context=n, softmax_ms=softmax_step_ms(model, n)))
        print(f"softmax ctx {n:6d}: {rows[-1]['softmax_ms']:.3f} ms/token", flush=True)
    pos = torch.zeros((), dtype=torch.int64, device="cuda")
    attns = []
    for layer in model.model.layers:
        layer.self_attn = LinearDecodeAttention(layer.self_attn, pos, batch=1)
        attns.append(layer.self_attn)
    state_mb = sum(sum(t.numel() * t.element_size() for t in
                       (a.state.S, a.state.k, a.state.v, a.state.ring)) for a in attns) / 2**20  # fmt: skip
    for r in rows:
        r["linear_ms"] = linear_step_ms(model, attns, r["context"])
        r["linear_state_MiB"] = state_mb
        r["kv_cache_MiB"] = 2 * cfg.num_hidden_layers * r["context"] * cfg.hidden_size * 2 / 2**20
        print(f"linear  ctx {r['context']:6d}: {r['linear_ms']:.3f} ms/token", flush=True)
    t = pd.DataFrame(rows)
    t.insert(0, "gpu", gpu)
    t["softmax_over_linear"] = t["softmax_ms"] / t["linear_ms"]
    t["linear_growth_vs_first"] = t["linear_ms"] / t["linear_ms"].iloc[0]
    t["softmax_growth_vs_first"] = t["softmax_ms"] / t["softmax_ms"].iloc[0]
    t.to_csv(args.out / "decode_7b.csv", index=False)
    print(t.round(3).to_string(index=False))
    meta = dict(gpu=gpu, argv=sys.argv, torch=torch.__version__)
    if args.prefill:
        del model
        torch.cuda.empty_cache()
        p = pd.DataFrame(prefill_table([int(c) for c in args.prefill.split(",")]))
        p.insert(0, "gpu", gpu)
        p.to_csv(args.out / "prefill_attention_7b.csv", index=False)
        print(p.round(3).to_string(index=False))
    (args.out / "decode_7b_meta.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
