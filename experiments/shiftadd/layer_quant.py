"""One weight matrix through one method: what every method does to a single nn.Linear."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from celine.experiments.shiftadd.bcq import quantize_bcq
from celine.experiments.shiftadd.gptq import gptq
from celine.experiments.shiftadd.incoherence import make_incoherence
from celine.experiments.shiftadd.quantizers import BlockwiseBCQ, ColumnwiseBCQ, UniformQuantizer
from celine.experiments.shiftadd.uniform import rtn


@dataclass
class LayerQuant:
    dequant: torch.Tensor  # [N, K] float32, what the model computes with
    loss: float  # the GPTQ loss (nan for methods without calibration)
    bits_per_weight: float  # bits of the stored format, scales included
    packed: dict | None = None  # planes / codes / col_group / row_group for ShiftAddLinear


def _scale_bits(n_scales: int, n: int, k: int, bits_per_scale: int = 16) -> float:
    return n_scales * bits_per_scale / (n * k)


def quantize_layer(method: str, cfg, w: torch.Tensor, h: torch.Tensor, bits: int, seed: int):
    """Dispatch on the method name; `h` is the layer's input Hessian sum x x^T / n."""
    w = w.detach().float().cpu()
    n, k = w.shape
    if method == "rtn":
        g = k if cfg.groupsize <= 0 else cfg.groupsize
        return LayerQuant(
            rtn(w, bits, cfg.groupsize, cfg.sym), math.nan, bits + _scale_bits(2 * n * k // g, n, k)
        )
    if method == "gptq":
        if cfg.groupsize > 0 and cfg.blocksize % cfg.groupsize:
            raise ValueError("gptq: blocksize must be a multiple of groupsize")
        quant = UniformQuantizer(w, bits, cfg.groupsize, cfg.sym)
        out = gptq(w, h, quant, cfg.blocksize, cfg.percdamp, cfg.act_order)
        g = k if cfg.groupsize <= 0 else cfg.groupsize
        return LayerQuant(out.dequant, out.loss, bits + _scale_bits(2 * n * k // g, n, k))
    if method == "bcq_rowwise":
        g = k if cfg.groupsize <= 0 else cfg.groupsize
        res = quantize_bcq(w.reshape(-1, g), bits, cfg.bcq_rounds, cfg.apot_terms)
        return LayerQuant(
            res.dequant.reshape(n, k), math.nan, bits + _scale_bits(bits * n * k // g, n, k)
        )
    if method == "shiftadd_lat":
        return _lat(cfg, w, h, bits)
    if method == "shiftadd_acc":
        return _acc(cfg, w, h, bits, seed)
    raise ValueError(f"unknown quantization method {method!r}")


def _lat(cfg, w, h, bits) -> LayerQuant:
    from celine.experiments.shiftadd.qlinear import pad_to_words
    from celine.kernels.shiftadd_format import encode_apot, pack_planes

    n, k = w.shape
    quant = BlockwiseBCQ(n, k, bits, cfg.groupsize, cfg.bcq_rounds, cfg.apot_terms)
    out = gptq(w, h, quant, cfg.blocksize, cfg.percdamp, cfg.act_order)
    # K not a multiple of 32 (tiny_llama smoke: down_proj K=176) is padded to whole words
    signs, codes = pad_to_words(quant.signs, encode_apot(quant.term_signs, quant.term_exps), 8)
    packed = {
        "planes": pack_planes(signs),
        "codes": codes,
        "col_group": 8,
        "row_group": quant.row_group,
        "in_features": k,
    }
    # the paper's count (one fp16 scale per group and bit); ShiftAddLinear keeps each scale as
    # an int32 APoT code (`packed_bytes`), which the GEMV bandwidth figures count
    return LayerQuant(out.dequant, out.loss, bits + _scale_bits(quant.alpha.numel(), n, k), packed)


def _acc(cfg, w, h, bits, seed) -> LayerQuant:
    n, k = w.shape
    rows = n if cfg.groupsize <= 0 else cfg.groupsize
    quant = ColumnwiseBCQ(n, bits, cfg.groupsize, cfg.bcq_rounds, cfg.apot_terms)
    if cfg.incoherence:
        inc = make_incoherence(w, h, seed)
        w_rot, h_rot = inc.to_rotated(w.double(), h.double())
        out = gptq(
            w_rot.float(), h_rot, quant, cfg.blocksize, cfg.percdamp, act_order=cfg.act_order
        )
        dequant = inc.from_rotated(out.dequant.double()).float()
    else:
        out = gptq(w, h, quant, cfg.blocksize, cfg.percdamp, act_order=cfg.act_order)
        dequant = out.dequant
    # the format the paper counts: q bits per weight + q scales per column group; with
    # incoherence the stored weight is dense (the reference saves FP16, and has no kernel)
    return LayerQuant(dequant, out.loss, bits + _scale_bits(bits * k * (n // rows), n, k))
