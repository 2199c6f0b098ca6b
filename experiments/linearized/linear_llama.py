"""Swap the attention of a transformers Llama for a linearized variant, in place.

Each decoder layer's `self_attn` (a `LlamaAttention`) is replaced by a `LinearizedAttention`
that keeps the original q/k/v/o projections (so pretrained weights, LoRA targets and
`save_pretrained` keys stay the same) and adds the paper's two new parameters: a per-head
masked depthwise conv on V and the per-layer global mix `global_factor`, both zero.
Replacing the module, rather than registering an attention function with transformers'
`AttentionInterface`, is needed because the linear forms carry their own decoding state
(S, open chunk, conv buffer) and their own tree verification, which an attention function
that only sees (q, k, v, mask) cannot hold.

Without a `plan` the module runs the chunked (training) form over the whole sequence, so
`model(input_ids).logits`, perplexity and fine-tuning use stock transformers code paths.
A `Plan` (set by `decoding.Decoder`) switches it to prefill (chunked form + build state) or
tree verification (recurrent state + candidate tree, nothing committed until `commit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attention import (
    VARIANTS,
    LinearState,
    Variant,
    chunked_attention,
    normalize,
    softmax_tree_attention,
    tree_attention,
)


@dataclass
class Plan:
    """What the attention layers do on the next forward (decoding only)."""

    kind: str  # "prefill" | "tree"
    states: list[LinearState]
    depth: torch.Tensor | None = None  # (n,) tree depth of each node
    ancestors: torch.Tensor | None = None  # (n, n) bool, ancestor-or-self
    pending: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


def _rotary():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    return apply_rotary_pos_emb


class LinearizedAttention(nn.Module):
    def __init__(
        self, attn: nn.Module, layer: int, variant: Variant, chunk: int, kernel: int, alpha: float
    ):
        super().__init__()
        cfg = attn.config
        self.layer, self.variant, self.chunk = layer, variant, chunk
        self.heads = cfg.num_attention_heads
        self.head_dim = attn.head_dim
        self.groups = attn.num_key_value_groups
        self.scaling = attn.scaling
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            attn.q_proj,
            attn.k_proj,
            attn.v_proj,
            attn.o_proj,
        )
        w = attn.o_proj.weight
        # zero init: the augmented model starts as exactly the local-only model
        self.conv_weight = nn.Parameter(torch.zeros(self.heads, kernel, dtype=w.dtype))
        self.global_factor = nn.Parameter(torch.full((), float(alpha), dtype=w.dtype))
        self.half = kernel // 2 if variant.conv else 0
        self.plan: Plan | None = None

    def _project(self, hidden, position_embeddings):
        b, t, _ = hidden.shape
        q = self.q_proj(hidden).view(b, t, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden).view(b, t, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden).view(b, t, -1, self.head_dim).transpose(1, 2)
        cos, sin = position_embeddings
        q, k = _rotary()(q, k, cos, sin)
        if self.groups > 1:  # GQA: repeat after RoPE, as the reference does
            k = k.repeat_interleave(self.groups, dim=1)
            v = v.repeat_interleave(self.groups, dim=1)
        return q, k, v

    def forward(self, hidden_states, position_embeddings=None, attention_mask=None, **kwargs):
        # attention_mask is ignored: causality is built into every form (no padding support)
        b, t, _ = hidden_states.shape
        q, k, v = self._project(hidden_states, position_embeddings)
        plan, var = self.plan, self.variant
        if var.softmax:
            if plan is None or plan.kind == "prefill":
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scaling)
                if plan is not None:
                    plan.states[self.layer].append(k, v, None, 0)
            else:
                out = self._per_row(
                    plan,
                    lambda q, k, v, state: softmax_tree_attention(
                        q, k, v, plan.ancestors, state, self.scaling
                    ),
                    q, k, v,
                )  # fmt: skip
                plan.pending[self.layer] = (k, v)
        else:
            qh, kh = normalize(q), normalize(k)
            args = (self.chunk, self.global_factor, self.conv_weight, var)
            if plan is None or plan.kind == "prefill":
                out = self._whole_sequence(q, k, v, qh, kh)
                if plan is not None:
                    plan.states[self.layer].append(kh, v, self.chunk, self.half)
            else:
                out = self._per_row(
                    plan,
                    lambda q, k, v, state: tree_attention(
                        q, k, v, plan.depth, plan.ancestors, state, *args
                    ),
                    qh, kh, v,
                )  # fmt: skip
                plan.pending[self.layer] = (kh, v)
        out = out.transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(out), None

    def _whole_sequence(self, q, k, v, qh, kh):
        """The chunked form; on a GPU without autograd (prefill, evaluation) the fused Triton
        kernel computes the same function without materialising every chunk's state (6-7x the
        eager form at 7B head sizes, faster than flash attention from 4k tokens: README)."""
        var = self.variant
        if q.is_cuda and not torch.is_grad_enabled() and var.conv_mask:
            from celine.kernels.linear_prefill import aug_linear_prefill, prefill_supported

            if prefill_supported(self.head_dim, self.chunk, self.half):
                conv = self.conv_weight if var.conv else None
                return aug_linear_prefill(q, k, v, self.chunk, self.global_factor, conv,
                                          global_=var.global_)  # fmt: skip
        return chunked_attention(qh, kh, v, self.chunk, self.global_factor, self.conv_weight, var)

    def _per_row(self, plan: Plan, attend, q, k, v):
        """Tree attention over this layer's state: one state (batch 1, or rows that share a
        length), or a list of per-row states (a ragged batch), attended row by row."""
        state = plan.states[self.layer]
        if not isinstance(state, list):
            return attend(q, k, v, state)
        return torch.cat(
            [attend(q[b : b + 1], k[b : b + 1], v[b : b + 1], s) for b, s in enumerate(state)]
        )

    def commit_rows(self, plan: Plan, nodes: list[torch.Tensor]) -> None:
        """Row b appends its own accepted nodes `nodes[b]` to its own state."""
        k, v = plan.pending[self.layer]
        chunk = None if self.variant.softmax else self.chunk
        for b, (state, idx) in enumerate(zip(plan.states[self.layer], nodes, strict=True)):
            state.append(k[b : b + 1, :, idx], v[b : b + 1, :, idx], chunk, self.half)

    def commit(self, plan: Plan, nodes: torch.Tensor) -> None:
        """Append the verified nodes' keys/values (in path order) to this layer's state."""
        k, v = plan.pending[self.layer]
        chunk = None if self.variant.softmax else self.chunk
        plan.states[self.layer].append(k[:, :, nodes], v[:, :, nodes], chunk, self.half)

    def new_state(self, batch: int, device, dtype) -> LinearState:
        return LinearState.empty(batch, self.heads, self.head_dim, self.head_dim, dtype, device)


def linearize(
    model,
    variant: str | Variant,
    chunk: int = 64,
    kernel: int = 63,
    alpha: float = 0.0,
):
    """Replace every layer's attention of a LlamaForCausalLM in place; returns the model."""
    if isinstance(variant, str):
        variant = VARIANTS[variant]
    for i, layer in enumerate(model.model.layers):
        attn = layer.self_attn
        if isinstance(attn, LinearizedAttention):
            raise ValueError("the model is already linearized")
        new = LinearizedAttention(attn, i, variant, chunk, kernel, alpha)
        layer.self_attn = new.to(attn.o_proj.weight.device)
    return model


def attention_modules(model) -> list[LinearizedAttention]:
    return [layer.self_attn for layer in model.model.layers]
