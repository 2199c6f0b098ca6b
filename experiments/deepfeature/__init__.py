"""deepfeature: feature-map-level testing of CNNs (DeepFeature, arXiv 2307.11563).

The maps of a layer most changed by benign mutations (the vulnerable set) guide test-case
selection from a mutated pool and a fuzzer; baselines: random, neuron coverage (NC, KMNC, NBC),
DeepGini, LSA selection, and a coverage-guided fuzzer.
"""

from celine.api import MetricSpec, register_method, register_task

_ROOM = "celine.experiments.deepfeature"

_opt = dict(required=False)
register_task(
    "deepfeature",
    impl=f"{_ROOM}.task:DeepFeatureTask",
    config=f"{_ROOM}.config:DeepFeatureTaskConfig",
    metrics=[
        MetricSpec("model/test_acc", goal="max", description="clean test accuracy of the model"),
        MetricSpec("pool/fault_rate", goal="max", description="misclassified share of the pool"),
        MetricSpec("fdr", goal="max", description="fault detection rate of the selection", **_opt),
        MetricSpec("fdd", goal="max", description="distinct (pred, true) faults selected", **_opt),
        MetricSpec("fdd_auc", goal="max", description="mean of the cumulative FDD curve", **_opt),
        MetricSpec("fuzz/fault_types_per_s", goal="max", description="fuzzing", **_opt),
        MetricSpec("fuzz/faults_per_s", goal="max", description="fuzzing", **_opt),
        MetricSpec("fuzz/fault_types", goal="max", description="fuzzing", **_opt),
        *[
            MetricSpec(f"vs_minus_{c}/fdr", goal="max", **_opt,
                       description=f"DeepFeature's FDR minus the {c} selection's on the same pool")
            for c in ("random_maps", "least_vulnerable", "origin_distance", "gini")
        ],  # fmt: skip
    ],
    methods=[
        "deepfeature",
        "df_random",
        "df_nc",
        "df_kmnc",
        "df_nbc",
        "df_gini",
        "df_lsa",
        "df_fuzz",
        "df_coverage_fuzz",
    ],  # fmt: skip
    description="feature-map testing: vulnerable maps guide test selection and fuzzing",
    primary_metric="fdr",
)
_METHODS = {
    "deepfeature": ("DeepFeature", "DeepFeatureConfig", "DeepFeature selection (+ baselines)"),
    "df_random": ("RandomSelection", "RandomSelectionConfig", "baseline: random selection"),
    "df_nc": ("NCSelection", "NCSelectionConfig", "baseline: neuron coverage, greedy"),
    "df_kmnc": ("KMNCSelection", "KMNCSelectionConfig", "baseline: k-multisection coverage"),
    "df_nbc": ("NBCSelection", "NBCSelectionConfig", "baseline: neuron boundary coverage"),
    "df_gini": ("GiniSelection", "GiniSelectionConfig", "baseline: DeepGini prioritisation"),
    "df_lsa": ("LSASelection", "LSASelectionConfig", "baseline: likelihood surprise adequacy"),
    "df_fuzz": ("DeepFeatureFuzz", "FuzzConfig", "DeepFeature's fuzzer (vulnerable maps)"),
    "df_coverage_fuzz": ("CoverageFuzz", "CoverageFuzzConfig", "baseline: coverage-guided fuzzer"),
}
for _name, (_impl, _cfg, _desc) in _METHODS.items():
    register_method(
        _name,
        impl=f"{_ROOM}.method:{_impl}",
        config=f"{_ROOM}.config:{_cfg}",
        description=_desc,
        models=["small_cnn"],
    )
