"""The room's headline: at 2 bits the ShiftAddLLM formats (Acc. and Lat.) reconstruct every
layer's output better than GPTQ, the key baseline (and RTN), whatever the calibration sample.

The claim is pinned on what the methods optimise, the relative output error
`tr(dW H dW^T) / tr(W H W^T)` of each decoder linear (averaged over layers), measured on the
calibration Hessians, with a margin, for three calibration-data seeds (the model fixed). The
README's perplexity table and `conf/experiment/shiftadd_headline.yaml` (5 calibration seeds on
tiny_llama) give the end-to-end numbers; at this scale the perplexity gaps between Acc., Lat. and
GPTQ at 3 bits are within noise, which is why the CI claim is about 2 bits.
"""

import pytest
import torch

from celine.experiments.shiftadd.calibrate import quantize_sequential
from celine.experiments.shiftadd.config import (
    GPTQConfig,
    RTNConfig,
    ShiftAddAccConfig,
    ShiftAddLatConfig,
)
from celine.experiments.shiftadd.layer_quant import quantize_layer
from celine.llm.tiny_llama import tiny_test_model

MARGIN = 0.8  # each ShiftAdd format's error at most 80% of GPTQ's


def mean_output_error(cfg, calib_seed: int, rounds: int | None = None) -> float:
    model, _ = tiny_test_model(seed=0)
    calib = torch.randint(0, 300, (8, 64), generator=torch.Generator().manual_seed(calib_seed))
    errs = []

    def quantize(b, name, lin, h):
        w = lin.weight.detach().float()
        lq = quantize_layer(cfg.name, cfg, w, h, cfg.bits, calib_seed)
        d, w64, h64 = (w - lq.dequant).double(), w.double(), h.double()
        errs.append(float(torch.einsum("nk,kl,nl->", d, h64, d) /
                          torch.einsum("nk,kl,nl->", w64, h64, w64)))  # fmt: skip
        lin.weight.data.copy_(lq.dequant)

    with torch.no_grad():
        quantize_sequential(model, calib, quantize)
    return sum(errs) / len(errs)


def configs(rounds):
    return {
        "shiftadd_acc": ShiftAddAccConfig(bits=2, bcq_rounds=rounds),
        "shiftadd_lat": ShiftAddLatConfig(bits=2, bcq_rounds=rounds),
        "gptq": GPTQConfig(bits=2),
        "rtn": RTNConfig(bits=2),
    }


def check_claim(seeds, rounds):
    table = {s: {m: mean_output_error(c, s) for m, c in configs(rounds).items()} for s in seeds}
    for seed, errs in table.items():
        for ours in ("shiftadd_acc", "shiftadd_lat"):
            assert errs[ours] < MARGIN * errs["gptq"], (seed, errs)
        assert errs["gptq"] < errs["rtn"], (seed, errs)


def test_headline_two_bit_shiftadd_formats_beat_gptq_on_every_calibration_seed():
    # smoke scale: a random-init 2-block Llama (hidden 64), 8 x 64 calibration tokens,
    # two seeds and 5 BCQ rounds instead of 50 to stay in CI time (the slow twin: 5 seeds, 50)
    check_claim(seeds=(0, 1), rounds=5)


@pytest.mark.slow
def test_headline_two_bit_shiftadd_formats_beat_gptq_on_every_calibration_seed_50_rounds():
    check_claim(seeds=(0, 1, 2, 3, 4), rounds=50)
