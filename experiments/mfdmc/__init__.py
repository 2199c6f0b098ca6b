"""mfdmc: matrix factorization with dynamic multi-view clustering (Gao, Liu, Fu et al.).

Each user and item is, in every view, a softmax-weighted projection onto that view's learnable
cluster representations; clusters that stop being used are discarded during training and stay
discarded. Baselines: biased MF, MF then k-means (two-stage), the global mean, and
scikit-surprise's SVD.
"""

from celine.api import MetricSpec, register_method, register_model, register_task

_ROOM = "celine.experiments.mfdmc"

register_task(
    "mfdmc",
    impl=f"{_ROOM}.task:RatingsTask",
    config=f"{_ROOM}.config:MfdmcTaskConfig",
    metrics=[
        MetricSpec("test/rmse", goal="min", description="held-out ratings"),
        MetricSpec("test/mae", goal="min", description="held-out ratings"),
        MetricSpec("val/rmse", goal="min", description="validation ratings"),
        MetricSpec(
            "test/recall_at_k", goal="max", description="relevant = test rating >= threshold"
        ),
        MetricSpec("test/ndcg_at_k", goal="max", description="binary relevance, same ranking"),
        MetricSpec(
            "nmi/users",
            goal="max",
            required=False,
            description="learned vs planted user clusters (planted data only)",
        ),
        MetricSpec(
            "nmi/items",
            goal="max",
            required=False,
            description="learned vs planted item clusters (planted data only)",
        ),
        MetricSpec(
            "clusters/alive", goal=None, required=False, description="live clusters at the end"
        ),
    ],
    methods=["mfdmc", "mf_biased", "mf_kmeans", "mf_global_mean", "mf_surprise_svd"],
    description="rating prediction and ranking on planted multi-view data or local ratings files",
    primary_metric="test/rmse",
)
register_model(
    "latent_factors",
    impl=f"{_ROOM}.config:latent_factors",
    config=f"{_ROOM}.config:LatentFactorsConfig",
    description="the latent size every factorization method gets (a fair comparison)",
)
register_method(
    "mfdmc",
    impl=f"{_ROOM}.method:MFDMC",
    config=f"{_ROOM}.config:MfdmcConfig",
    description="MF whose factors are softmax-weighted projections onto per-view clusters",
    models=["latent_factors"],
)
register_method(
    "mf_biased",
    impl=f"{_ROOM}.method:BiasedMF",
    config=f"{_ROOM}.config:BiasedMfConfig",
    description="baseline: biased matrix factorization trained with Adam or SGD",
    models=["latent_factors"],
)
register_method(
    "mf_kmeans",
    impl=f"{_ROOM}.method:TwoStage",
    config=f"{_ROOM}.config:TwoStageConfig",
    description="baseline: biased MF, then k-means on the learned factors (two-stage clustering)",
    models=["latent_factors"],
)
register_method(
    "mf_global_mean",
    impl=f"{_ROOM}.method:GlobalMean",
    config=f"{_ROOM}.config:GlobalMeanConfig",
    description="baseline: predict the training mean",
)
register_method(
    "mf_surprise_svd",
    impl=f"{_ROOM}.method:SurpriseSVD",
    config=f"{_ROOM}.config:SurpriseSvdConfig",
    description="library baseline: scikit-surprise's SVD (Funk MF with biases)",
    models=["latent_factors"],
)
