"""The methods of the shiftadd task: one class quantizes a causal LM's decoder linears with
the method its config names (shiftadd_lat, shiftadd_acc, gptq, rtn, bcq_rowwise), plus `fp16`,
the unquantized reference."""

from __future__ import annotations

import math
import time
import warnings

import pandas as pd
import torch

from celine.api import ConfigError, Result, RunContext


class FullPrecision:
    """The model as trained (in the hardware group's dtype): the perplexity floor."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        from celine.experiments.shiftadd.calibrate import block_linears, decoder_blocks

        lm = ctx.build_model()
        lm.model.to(ctx.hardware.device).eval()
        metrics = ctx.task.evaluate(lm)
        n_weights = sum(
            lin.weight.numel()
            for block in decoder_blocks(lm.model)
            for lin in block_linears(block).values()
        )
        metrics["model/bits_per_weight"] = 16.0
        metrics["model/linear_mbytes"] = n_weights * 2 / 1e6
        return Result(metrics=metrics)


class Quantize:
    """Sequential post-training quantization of every decoder linear, then perplexity."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def run(self, ctx: RunContext) -> Result:
        from celine.experiments.shiftadd.calibrate import (
            block_linears,
            decoder_blocks,
            hessians,
            quantize_sequential,
        )

        cfg = self.cfg
        lm = ctx.build_model()
        model = lm.model.to(ctx.hardware.device).eval()
        # shapes first: a layer the method cannot tile fails now, not after calibration
        _check_shapes(
            cfg,
            [
                (name, tuple(lin.weight.shape))
                for block in decoder_blocks(model)
                for name, lin in block_linears(block).items()
            ],
            ctx.log,
        )
        calib = ctx.task.calibration(lm)
        ctx.log.info("calibration: %d windows of %d tokens", *calib.shape)
        n_blocks = len(decoder_blocks(model))
        fp_h = hessians(model, calib, list(range(n_blocks)), ctx.task.cfg.batch_size)
        layers = [
            (b, name, lin.weight.detach().float().cpu())
            for b, block in enumerate(decoder_blocks(model))
            for name, lin in block_linears(block).items()
        ]
        scores = _scores(layers, fp_h)
        bits = self._bit_widths(layers, scores)
        rows: list[dict] = []
        t0 = time.perf_counter()

        def quantize(b: int, name: str, lin, h):
            from celine.experiments.shiftadd.layer_quant import quantize_layer

            w = lin.weight.detach().float().cpu()
            width = bits[(b, name)]
            try:
                lq = quantize_layer(cfg.name, cfg, w, h, width, ctx.seed + len(rows))
            except ValueError as err:  # a shape the method's grouping cannot tile
                raise ConfigError("method.groupsize", cfg.groupsize, str(err)) from None
            rows.append(_layer_row(b, name, w, lq, h, width, scores[(b, name)]))
            ctx.log_metrics({"quant/output_rel_err": rows[-1]["output_rel_err"]}, step=len(rows))
            if lq.packed is not None and getattr(cfg, "pack", False):
                from celine.experiments.shiftadd.qlinear import ShiftAddLinear

                dev = lin.weight.device
                return ShiftAddLinear(
                    lq.packed["planes"].to(dev),
                    lq.packed["codes"].to(dev),
                    lq.packed["col_group"],
                    lq.packed["row_group"],
                    bias=lin.bias,
                    dtype=lin.weight.dtype,
                    kernel=getattr(cfg, "gemv_kernel", "triton"),
                    in_features=lq.packed["in_features"],
                )
            lin.weight.data.copy_(lq.dequant.to(lin.weight.dtype))
            return None

        quantize_sequential(model, calib, quantize, ctx.log, ctx.task.cfg.batch_size)
        quant_s = time.perf_counter() - t0
        table = pd.DataFrame(rows)
        metrics = ctx.task.evaluate(lm)
        metrics.update(_summary(table, quant_s))
        metrics.update(_gemv_timing(model, ctx))
        figures = {"layer_errors": _error_figure(table)}
        notes = {}
        if cfg.name == "shiftadd_acc" and cfg.incoherence:
            notes["format"] = "Acc. with incoherence stores dense weights (as the reference)"
        return Result(metrics=metrics, tables={"layers": table}, figures=figures, notes=notes)

    def _bit_widths(self, layers, scores) -> dict:
        from celine.experiments.shiftadd.allocate import (
            allocate_exact,
            allocate_quota,
            layer_bit_errors,
        )

        cfg = self.cfg
        keys = [(b, name) for b, name, _ in layers]
        if cfg.bit_alloc == "none":
            return {k: cfg.bits for k in keys}
        sizes = [w.numel() for _, _, w in layers]
        sc = [scores[k] for k in keys]
        if cfg.bit_alloc == "quota":
            widths = allocate_quota(sc, sizes, cfg.mix_bits)
        else:
            budget = cfg.avg_bits if cfg.avg_bits is not None else float(cfg.bits)
            terms = getattr(cfg, "apot_terms", 3)
            costs = [
                [s * e for e in layer_bit_errors(w, terms)]
                for s, (_, _, w) in zip(sc, layers, strict=True)
            ]
            try:
                widths = allocate_exact(costs, sizes, budget)
            except ValueError as err:
                raise ConfigError("method.avg_bits", budget, str(err)) from None
        return dict(zip(keys, widths, strict=True))


def _check_shapes(cfg, shapes, log) -> None:
    """Refuse (ConfigError) what the method cannot tile; warn about layers that take a
    fallback: Lat. in-features not a multiple of 32 are packed padded to whole 32-bit words,
    and shapes outside the CUDA kernel's reach decode with the Triton kernel."""
    g = cfg.groupsize
    padded = []
    for name, (n, k) in shapes:
        if cfg.name == "shiftadd_lat":
            if k % 8 or n % 8:
                raise ConfigError(
                    "method", cfg.name, f"{name} is {n}x{k}: Lat. needs K % 8 == 0, N % 8 == 0"
                )
            if k % 32:
                padded.append(f"{name} {n}x{k}")
            row_group = n // 8 if g <= 0 else g // 8
            if getattr(cfg, "gemv_kernel", "triton") == "cuda" and (n % 4 or row_group % 4):
                log.warning(
                    "%s is %dx%d (row group %d): outside the CUDA GEMV (N and row group "
                    "multiples of 4); it decodes with the Triton kernel",
                    name,
                    n,
                    k,
                    row_group,
                )
        if g > 0 and cfg.name in ("rtn", "gptq", "bcq_rowwise") and k % g:
            raise ConfigError("method.groupsize", g, f"must divide in_features {k} of {name}")
        if g > 0 and cfg.name == "gptq" and cfg.blocksize % g:
            raise ConfigError("method.blocksize", cfg.blocksize, f"a multiple of groupsize {g}")
        if (
            g > 0
            and cfg.name in ("shiftadd_acc", "shiftadd_lat")
            and n % (g if cfg.name == "shiftadd_acc" else g // 8)
        ):
            raise ConfigError("method.groupsize", g, f"must tile out_features {n} of {name}")
    if padded and getattr(cfg, "pack", False):
        msg = (
            f"in_features not a multiple of 32, packed padded to whole 32-bit words "
            f"(zero scales on the padding): {', '.join(sorted(set(padded)))}"
        )
        log.warning(msg)
        warnings.warn(msg, stacklevel=2)


def _scores(layers, fp_h) -> dict:
    from celine.experiments.shiftadd.allocate import sensitivity

    return {(b, name): sensitivity(w, fp_h[(b, name)]) for b, name, w in layers}


def _layer_row(b, name, w, lq, h, width, score) -> dict:
    d = (w - lq.dequant).double()
    h = h.double()
    out_err = float(torch.einsum("nk,kl,nl->", d, h, d))
    out_ref = float(torch.einsum("nk,kl,nl->", w.double(), h, w.double()))
    return {
        "block": b,
        "layer": name,
        "out_features": w.shape[0],
        "in_features": w.shape[1],
        "bits": width,
        "bits_per_weight": lq.bits_per_weight,
        "weight_rel_err": float((d**2).sum() / (w.double() ** 2).sum()),
        "output_err": out_err,
        "output_rel_err": out_err / out_ref,
        "gptq_loss": lq.loss,
        "score": score,
        "packed": lq.packed is not None,
    }


def _summary(table: pd.DataFrame, quant_s: float) -> dict[str, float]:
    from scipy.stats import kendalltau

    n = table["out_features"] * table["in_features"]
    bpw = float((table["bits_per_weight"] * n).sum() / n.sum())
    tau = kendalltau(table["score"], table["output_err"]).statistic
    return {
        "model/bits_per_weight": bpw,
        "model/avg_bits": float((table["bits"] * n).sum() / n.sum()),
        "model/linear_mbytes": float(bpw * n.sum() / 8 / 1e6),
        "model/fp16_linear_mbytes": float(2 * n.sum() / 1e6),
        "quant/mean_output_rel_err": float(table["output_rel_err"].mean()),
        "quant/mean_weight_rel_err": float(table["weight_rel_err"].mean()),
        "quant/seconds": quant_s,
        "alloc/kendall_tau": float(tau) if math.isfinite(tau) else 0.0,
    }


@torch.no_grad()
def _gemv_timing(model, ctx) -> dict[str, float]:
    """Batch-1 time of the largest ShiftAddLinear through its LUT path (Triton on CUDA, the
    PyTorch reference on the CPU) and of a dense matmul with its dequantized weight."""
    from celine.experiments.shiftadd.qlinear import ShiftAddLinear

    iters = ctx.task.cfg.gemv_iters
    mods = [m for m in model.modules() if isinstance(m, ShiftAddLinear)]
    if not mods or iters == 0:
        return {}
    mod = max(mods, key=lambda m: m.in_features * m.out_features)
    x = torch.randn(1, mod.in_features, device=mod.planes.device, dtype=mod.dtype)
    dense = mod.dequantized()

    def clock(fn) -> float:
        fn()
        if x.is_cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        if x.is_cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / iters * 1e6

    lut_us = clock(lambda: mod.lut_forward(x))
    dense_us = clock(lambda: torch.nn.functional.linear(x, dense))
    return {
        "gemv/lut_us": lut_us,
        "gemv/dense_us": dense_us,
        "gemv/lut_gbps": mod.packed_bytes() / lut_us / 1e3,
    }


def _error_figure(table: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
    labels = [
        f"{b}.{n.split('.')[-1]}" for b, n in zip(table["block"], table["layer"], strict=True)
    ]
    left.bar(range(len(table)), table["output_rel_err"], color=[f"C{b}" for b in table["bits"]])
    left.set_xticks(range(len(table)), labels, rotation=90, fontsize=6)
    left.set_ylabel("relative output error")
    left.set_title("per-layer reconstruction error (colour = bits)")
    right.scatter(table["score"], table["output_err"])
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("sensitivity score")
    right.set_ylabel("output error tr(dW H dW^T)")
    right.set_title("score vs measured error")
    fig.tight_layout()
    return fig
