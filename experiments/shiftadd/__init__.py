"""shiftadd: ShiftAddLLM post-training quantization (NeurIPS 2024) and its baselines.

Weights become binary planes with power-of-two-sum scales, so a layer is table lookups, adds and
shifts; run through a Triton LUT-GEMV on the GPU. See README.md.
"""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.shiftadd"

register_task(
    "shiftadd",
    impl=f"{_ROOM}.task:ShiftAddTask",
    config=f"{_ROOM}.config:ShiftAddTaskConfig",
    metrics=[
        MetricSpec("test/perplexity", goal="min", description="held-out split, non-overlapping"),
        MetricSpec("val/perplexity", goal="min", description="validation split"),
        MetricSpec("model/bits_per_weight", goal="min", description="stored bits, scales included"),
        MetricSpec("model/linear_mbytes", goal="min", description="decoder linears, stored"),
        MetricSpec(
            "quant/mean_output_rel_err",
            goal="min",
            required=False,
            description="mean over layers of tr(dW H dW^T) / tr(W H W^T)",
        ),
        MetricSpec("quant/mean_weight_rel_err", goal="min", required=False),
        MetricSpec(
            "alloc/kendall_tau",
            goal="max",
            required=False,
            description="sensitivity score vs measured per-layer output error",
        ),
        MetricSpec(
            "gemv/lut_us",
            goal="min",
            required=False,
            description="batch-1 LUT GEMV of the largest layer",
        ),
        MetricSpec("gemv/lut_gbps", goal="max", required=False),
    ],  # fmt: skip
    methods=["shiftadd_lat", "shiftadd_acc", "gptq", "rtn", "bcq_rowwise", "fp16"],
    description="post-training weight quantization of a causal LM: perplexity vs bits",
    primary_metric="test/perplexity",
)
for _name, _cfg, _desc in (
    ("shiftadd_lat", "ShiftAddLatConfig", "ShiftAddLLM Lat.: block-wise APoT-BCQ + GPTQ, packed"),
    ("shiftadd_acc", "ShiftAddAccConfig", "ShiftAddLLM Acc.: column-wise APoT-BCQ + GPTQ"),
    ("gptq", "GPTQConfig", "baseline: OPTQ/GPTQ with a uniform min-max grid per row"),
    ("rtn", "RTNConfig", "baseline: round-to-nearest, uniform min-max grid per row"),
    ("bcq_rowwise", "BCQRowwiseConfig", "baseline: LUT-GEMM row-wise BCQ, weights only"),
):
    register_method(_name, impl=f"{_ROOM}.method:Quantize", config=f"{_ROOM}.config:{_cfg}",
                    description=_desc)  # fmt: skip
register_method(
    "fp16",
    impl=f"{_ROOM}.method:FullPrecision",
    config=f"{_ROOM}.config:Fp16Config",
    description="the unquantized model (reference for every quantizer)",
)
