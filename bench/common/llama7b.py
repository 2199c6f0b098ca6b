"""Shared GPU bench helper (issue #28): a Llama-2-7B-shaped model with random weights and the
decoding baseline every contender is compared with in the same process.

Speed at these shapes does not depend on weight values, so the weights are random (normal,
std 0.02) and the model is built straight on the GPU in bf16 from a transformers `LlamaConfig`
(no checkpoint, no download). `StaticDecoder` runs a transformers static KV cache
(`StaticCache`) and replays each step as a CUDA graph, either of the eager forward
(`mode="graph"`) or of the torch.compile'd forward (`mode="compile"`, inductor without its own
cudagraphs; the graph is ours so that every contender is replayed the same way); `mode="eager"`
is the launch-bound loop, reported beside it and labelled. Everything a step needs (token ids,
positions, the 4-D attention mask over the static cache) lives in fixed buffers updated on the
device, so a replay never syncs with the host: the greedy next token is the argmax written into
the input buffer of the next replay.

    from bench.common.llama7b import llama_config, build_model, StaticDecoder
"""

from __future__ import annotations

import inspect
import statistics
import time
from contextlib import contextmanager

import torch

SHAPES = {  # Llama-2 configs (hidden, intermediate, layers, heads)
    "7b": (4096, 11008, 32, 32),
    "13b": (5120, 13824, 40, 40),
}
MODES = ("eager", "graph", "compile")


def llama_config(size: str = "7b", layers: int | None = None, max_positions: int = 4096, **over):
    """The transformers LlamaConfig of Llama-2 `size` (vocab 32000, MHA, SDPA attention);
    `layers` shortens it (tests), `over` overrides any field (e.g. a tiny hidden size)."""
    from transformers import LlamaConfig

    if size not in SHAPES:
        raise ValueError(f"size={size!r}: allowed {sorted(SHAPES)}")
    hidden, inter, n_layers, heads = SHAPES[size]
    kw = dict(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers or n_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    kw.update(over)
    cfg = LlamaConfig(**kw)
    cfg._attn_implementation = "sdpa"
    return cfg


@contextmanager
def _default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@torch.no_grad()
def build_model(cfg, device="cuda", dtype=torch.bfloat16, seed: int = 0):
    """LlamaForCausalLM with random normal(0, 0.02) weights, built directly on `device` in
    `dtype` (no fp32 copy of 7B parameters on the host)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    with _default_dtype(dtype), torch.device(device):
        model = LlamaForCausalLM(cfg)
    for name, p in model.named_parameters():
        if "norm" in name:
            p.fill_(1.0)
        else:
            p.normal_(0.0, 0.02)
    return model.eval()


def weight_bytes(model) -> int:
    """Bytes a decode step must read: every parameter and buffer except the token embedding
    (one row is gathered per token) and the rotary tables."""
    total = 0
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if "embed_tokens" in name or "rotary" in name:
            continue
        total += t.numel() * t.element_size()
    return total


def _fused_attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None,
                             past_key_values=None, **kwargs):  # fmt: skip
    """transformers' LlamaAttention.forward with q, k and v from one GEMM/GEMV (`qkv_proj`)."""
    from transformers.models.llama import modeling_llama as ml

    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    q, k, v = self.qkv_proj(hidden_states).split(self.qkv_sizes, dim=-1)
    q, k, v = (t.view(hidden_shape).transpose(1, 2) for t in (q, k, v))
    cos, sin = position_embeddings
    q, k = ml.apply_rotary_pos_emb(q, k, cos, sin)
    if past_key_values is not None:
        k, v = past_key_values.update(k, v, self.layer_idx)
    attend = ml.ALL_ATTENTION_FUNCTIONS.get_interface(
        self.config._attn_implementation, ml.eager_attention_forward
    )
    out, weights = attend(self, q, k, v, attention_mask, dropout=0.0, scaling=self.scaling,
                          **kwargs)  # fmt: skip
    return self.o_proj(out.reshape(*input_shape, -1).contiguous()), weights


def _fused_mlp_forward(self, x):
    gate, up = self.gate_up_proj(x).split(self.gate_up_sizes, dim=-1)
    return self.down_proj(self.act_fn(gate) * up)


FUSED_LINEARS = ("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj")


@torch.no_grad()
def fuse_projections(model) -> None:
    """Fuse q/k/v into one `qkv_proj` and gate/up into one `gate_up_proj` (rows concatenated,
    the same function), as serving engines load Llama (vLLM's QKVParallelLinear and
    MergedColumnParallelLinear): 4 matrix products per layer instead of 7, on larger shapes.
    Instances get the fused forward; the class is untouched."""
    import types

    from torch import nn

    def cat(mods):
        w = torch.cat([m.weight for m in mods], 0)
        fused = nn.Linear(w.shape[1], w.shape[0], bias=False, device=w.device, dtype=w.dtype)
        fused.weight.copy_(w)
        return fused, [m.out_features for m in mods]

    for layer in model.model.layers:
        a, m = layer.self_attn, layer.mlp
        a.qkv_proj, a.qkv_sizes = cat([a.q_proj, a.k_proj, a.v_proj])
        del a.q_proj, a.k_proj, a.v_proj
        a.forward = types.MethodType(_fused_attention_forward, a)
        m.gate_up_proj, m.gate_up_sizes = cat([m.gate_proj, m.up_proj])
        del m.gate_proj, m.up_proj
        m.forward = types.MethodType(_fused_mlp_forward, m)


class StaticDecoder:
    """Greedy decoding of `model` with a static KV cache of `max_len` slots, `batch` rows.

    `step_fn(T)` returns a callable that runs one forward of T new tokens per row at the current
    position buffer and writes the argmax of the last position into `ids[:, :1]`; in graph/compile
    mode it is a CUDA graph replay (captured on first use per T). Timing helpers: `decode` (greedy
    tokens/s over `new` steps) and `step_ms` (one step of T tokens at a fixed position)."""

    def __init__(self, model, batch: int, max_len: int, mode: str = "graph", max_step: int = 1,
                 use_mask: bool = True):  # fmt: skip
        from transformers import StaticCache

        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: allowed {MODES}")
        if batch < 1 or max_len < 2:
            raise ValueError(f"batch={batch}, max_len={max_len}: need batch >= 1, max_len >= 2")
        self.model, self.batch, self.max_len, self.mode = model, batch, max_len, mode
        # use_mask=False: no mask at all, for steps that attend to every cache slot (a cache of
        # exactly context + 1 slots), so SDPA may pick its flash/cuDNN decode kernels
        dev = next(model.parameters()).device
        self.device = dev
        try:
            self.cache = StaticCache(config=model.config, max_cache_len=max_len)
        except TypeError:  # older transformers 5.x signature
            self.cache = StaticCache(
                config=model.config, max_batch_size=batch, max_cache_len=max_len, device=dev,
                dtype=next(model.parameters()).dtype,
            )  # fmt: skip
        self.ids = torch.zeros(batch, max_step, dtype=torch.long, device=dev)
        self.pos = torch.zeros((), dtype=torch.long, device=dev)  # position of the first new token
        self.slots = torch.arange(max_len, device=dev)
        self.use_mask = use_mask
        self.masks: dict[int, torch.Tensor] = {}
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.forward = model.forward
        if mode == "compile":
            self.forward = torch.compile(model.forward, dynamic=False, fullgraph=False)
        self._takes_cache_position = (
            "cache_position" in inspect.signature(model.model.forward).parameters
        )

    # -- one step ---------------------------------------------------------------------------
    def _mask(self, t: int) -> torch.Tensor:
        if t not in self.masks:
            self.masks[t] = torch.zeros(self.batch, 1, t, self.max_len, dtype=torch.bool,
                                        device=self.device)  # fmt: skip
        return self.masks[t]

    def set_position(self, p: int) -> None:
        """Move every layer's write position to p (static layers keep it as a device tensor)."""
        self.pos.fill_(p)
        for layer in getattr(self.cache, "layers", []):
            if hasattr(layer, "cumulative_length") and torch.is_tensor(layer.cumulative_length):
                layer.cumulative_length.fill_(p)

    def _run(self, t: int) -> None:
        """T tokens per row at positions pos..pos+T-1, causal among themselves, seeing the
        cache below pos; the next token (argmax at the last position) goes to ids[:, 0]."""
        q_pos = self.pos + torch.arange(t, device=self.device)
        mask = None
        if self.use_mask:
            mask = self._mask(t)
            mask.copy_((self.slots[None, :] <= q_pos[:, None])[None, None].expand_as(mask))
        kw = dict(
            input_ids=self.ids[:, :t],
            attention_mask=mask,
            position_ids=q_pos[None].expand(self.batch, t),
            past_key_values=self.cache,
            use_cache=True,
        )
        if self._takes_cache_position:
            kw["cache_position"] = q_pos
        if "logits_to_keep" in inspect.signature(self.model.forward).parameters:
            kw["logits_to_keep"] = 1
        logits = self.forward(**kw).logits
        self.ids[:, 0].copy_(logits[:, -1].argmax(-1))
        self.pos.add_(t)

    def step_fn(self, t: int):
        if self.mode == "eager":
            return lambda: self._run(t)
        if t not in self.graphs:
            p0 = int(self.pos)
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):  # warm-up: lazy cache allocation, compilation, autotuning
                    self.set_position(p0)
                    self._run(t)
            torch.cuda.current_stream().wait_stream(stream)
            self.set_position(p0)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                self._run(t)
            self.graphs[t] = g
            self.set_position(p0)
        return self.graphs[t].replay

    # -- timing -----------------------------------------------------------------------------
    @torch.no_grad()
    def prefill(self, prompt: torch.Tensor) -> None:
        """Fill the cache with `prompt [batch, P]` (eager, untimed); the next position is P."""
        b, p = prompt.shape
        self.set_position(0)
        mask = self.slots[None, :] <= torch.arange(p, device=self.device)[:, None]
        kw = dict(
            input_ids=prompt.to(self.device),
            attention_mask=mask[None, None].expand(b, 1, p, self.max_len),
            position_ids=torch.arange(p, device=self.device)[None].expand(b, p),
            past_key_values=self.cache,
            use_cache=True,
        )
        if self._takes_cache_position:
            kw["cache_position"] = torch.arange(p, device=self.device)
        logits = self.model(**kw).logits
        self.ids[:, 0].copy_(logits[:, -1].argmax(-1))
        self.set_position(p)

    @torch.no_grad()
    def decode(self, prompt: torch.Tensor, new: int, repeats: int = 3) -> dict:
        """Greedy decoding of `new` tokens after `prompt`, `repeats` timed runs (median).
        Returns tokens/s (all rows), ms per token (per step), and the generated ids of the
        last run [batch, new] (for equality checks across contenders)."""
        p = prompt.shape[1]
        if p + new > self.max_len:
            raise ValueError(f"prompt {p} + new {new} > max_len {self.max_len}")
        step = None
        times, out = [], None
        for r in range(repeats + 1):  # run 0: warm-up (and capture)
            self.prefill(prompt)
            if step is None:
                step = self.step_fn(1)
                self.prefill(prompt)
            toks = torch.empty(self.batch, new, dtype=torch.long, device=self.device)
            _sync(self.device)
            t0 = time.perf_counter()
            for i in range(new):
                toks[:, i] = self.ids[:, 0]
                step()
            _sync(self.device)
            if r:
                times.append(time.perf_counter() - t0)
            out = toks
        sec = statistics.median(times)
        return {
            "tokens_per_s": self.batch * new / sec,
            "ms_per_token": 1e3 * sec / new,
            "spread_ms_per_token": 1e3 * (max(times) - min(times)) / new,
            "tokens": out.cpu(),
        }

    @torch.no_grad()
    def step_ms(self, t: int, position: int, reps: int = 10, rounds: int = 5) -> float:
        """Median ms of one step carrying `t` tokens per row at `position` (cache filled below
        it): `rounds` x `reps` back-to-back replays between CUDA events, the position reset
        before each round (outside the events) so the cache never overflows."""
        if position + reps * t > self.max_len:
            reps = max(1, (self.max_len - position) // t)
        if position + t > self.max_len:
            raise ValueError(f"position {position} + t {t} > max_len {self.max_len}")
        self.set_position(position)
        step = self.step_fn(t)
        per = []
        for _ in range(rounds):
            self.set_position(position)
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(reps):
                step()
            b.record()
            torch.cuda.synchronize()
            per.append(a.elapsed_time(b) / reps)
        return statistics.median(per)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def read_bandwidth_gbps(nbytes: int = 2**31) -> float:
    """Measured HBM read bandwidth (GB/s): a sum over a large bf16 buffer, CUDA events."""
    x = torch.randn(nbytes // 2, dtype=torch.bfloat16, device="cuda")
    for _ in range(3):
        x.sum()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for _ in range(10):
        a.record()
        x.sum()
        b.record()
        torch.cuda.synchronize()
        ms.append(a.elapsed_time(b))
    return nbytes / statistics.median(ms) / 1e6


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
