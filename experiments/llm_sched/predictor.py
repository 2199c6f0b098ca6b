"""The length-rank predictor: a small transformer encoder over the prompt, trained with ListMLE
(one ranked list per minibatch) or, for the baseline, cross-entropy over length buckets."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from celine.experiments.llm_sched.ranking import (
    kendall_tau_fast,
    length_class,
    list_mle,
    num_classes,
    rank_label,
)


class PromptEncoder(nn.Module):
    """Token + position embeddings, a [CLS] token, pre-norm transformer layers, a linear head
    on the [CLS] state (out_dim 1: a rank score, higher = shorter; else class logits)."""

    def __init__(self, vocab: int, cfg, out_dim: int = 1, pad_id: int = 0, lm_embeddings=None):
        super().__init__()
        emb_dim = lm_embeddings.shape[1] if lm_embeddings is not None else cfg.d_model
        self.tok = nn.Embedding(vocab, emb_dim, padding_idx=pad_id)
        if lm_embeddings is not None:
            with torch.no_grad():
                self.tok.weight.copy_(lm_embeddings[:vocab])
        self.proj = nn.Linear(emb_dim, cfg.d_model) if emb_dim != cfg.d_model else nn.Identity()
        self.pos = nn.Embedding(cfg.max_length + 1, cfg.d_model)
        self.cls = nn.Parameter(torch.randn(cfg.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.heads, cfg.dim_feedforward, cfg.dropout,
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, out_dim)

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, n = ids.shape
        x = self.proj(self.tok(ids))
        x = torch.cat([self.cls.expand(b, 1, -1), x], dim=1)
        x = x + self.pos(torch.arange(n + 1, device=ids.device))[None]
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=ids.device), valid], dim=1)
        h = self.encoder(x, src_key_padding_mask=~keep)
        out = self.head(self.norm(h[:, 0]))
        return out[:, 0] if out.shape[1] == 1 else out


def pad_batch(seqs: list[list[int]], pad_id: int, max_length: int, side: str = "right"):
    """Truncate to max_length (side "right" keeps the head, as the reference tokenizer does;
    "left" keeps the tail) and right-pad."""
    seqs = [(s[:max_length] if side == "right" else s[-max_length:]) or [pad_id] for s in seqs]
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    valid = torch.zeros((len(seqs), n), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        valid[i, : len(s)] = True
    return ids, valid


@torch.no_grad()
def predict(model: PromptEncoder, seqs, pad_id: int, cfg, batch: int = 256):
    model.eval()
    outs = []
    for i in range(0, len(seqs), batch):
        ids, valid = pad_batch(seqs[i : i + batch], pad_id, cfg.max_length, cfg.truncation_side)
        outs.append(model(ids, valid).float())
    return torch.cat(outs).numpy()


def train_predictor(
    kind: str,
    cfg,
    train_seqs,
    train_lengths,
    test_seqs,
    test_lengths,
    *,
    vocab: int,
    pad_id: int,
    max_len: int,
    lm_embeddings=None,
    log=None,
    on_epoch=None,
):
    """Train a `listmle` ranker or a bucket `class`ifier; returns (model, history rows).

    ListMLE: labels = max_len//g - min(len, max_len)//g, each minibatch of `list_size`
    prompts one list. Classifier: cross-entropy over ceil(max_len/g) buckets. Both report
    Kendall's tau-b between the predicted order and the true lengths on the test prompts.
    """
    if kind not in ("listmle", "class"):
        raise ValueError(f"kind={kind!r}: expected listmle or class")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    g = cfg.label_group_size
    n_cls = num_classes(max_len, g)
    model = PromptEncoder(
        vocab, cfg, out_dim=1 if kind == "listmle" else n_cls, pad_id=pad_id,
        lm_embeddings=lm_embeddings if cfg.init_from_lm else None,
    )  # fmt: skip
    opt = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
    )
    train_lengths = np.asarray(train_lengths)
    targets = torch.tensor(
        rank_label(train_lengths, max_len, g) if kind == "listmle"
        else length_class(train_lengths, max_len, g)
    )  # fmt: skip
    rng = np.random.default_rng(cfg.seed)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = rng.permutation(len(train_seqs))
        losses = []
        for i in range(0, len(perm) - 1, cfg.list_size):
            idx = perm[i : i + cfg.list_size]
            if len(idx) < 2:
                continue
            ids, valid = pad_batch(
                [train_seqs[j] for j in idx], pad_id, cfg.max_length, cfg.truncation_side
            )
            out = model(ids, valid)
            y = targets[idx]
            loss = (
                list_mle(out, y, generator=gen)
                if kind == "listmle"
                else (nn.functional.cross_entropy(out, y))
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        tau = evaluate_tau(kind, model, test_seqs, test_lengths, pad_id, cfg)
        row = dict(epoch=epoch, loss=float(np.mean(losses)), test_tau=tau)
        history.append(row)
        if log:
            log.info("%s epoch %d/%d: loss %.4f, test tau %.3f", kind, epoch, cfg.epochs,
                     row["loss"], tau)  # fmt: skip
        if on_epoch:
            on_epoch(row)
    return model, history


def rank_keys(kind: str, model, seqs, pad_id: int, cfg):
    """Scheduling keys, lower = predicted shorter: -score for the ranker, argmax bucket for
    the classifier (ties kept: the scheduler breaks them by arrival)."""
    out = predict(model, seqs, pad_id, cfg)
    return -out if kind == "listmle" else out.argmax(-1).astype(float)


def evaluate_tau(kind, model, seqs, lengths, pad_id, cfg) -> float:
    return kendall_tau_fast(rank_keys(kind, model, seqs, pad_id, cfg), lengths)
