"""Loaders, splits, implicit conversion and the metric helpers."""

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from celine.api import ConfigError
from celine.experiments.mfdmc import data as D
from celine.experiments.mfdmc.metrics import mae, planted_nmi, ranking_at_k, rmse


def test_rmse_and_mae_match_scikit_learn():
    rng = np.random.default_rng(1)
    pred, true = rng.uniform(1, 5, 200), rng.integers(1, 6, 200).astype(float)
    assert rmse(pred, true) == pytest.approx(np.sqrt(mean_squared_error(true, pred)))
    assert mae(pred, true) == pytest.approx(mean_absolute_error(true, pred))


@pytest.mark.parametrize(
    ("dataset", "name", "text"),
    [
        ("ml-100k", "u.data", "196\t242\t3\t881250949\n186\t242\t3\t891717742\n196\t302\t5\t1\n"),
        ("ml-1m", "ratings.dat", "1::1193::5::978300760\n2::1193::4::978298413\n1::3408::4::9\n"),
        (
            "ml-latest",
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
            "5,1,3.5,964981247\n1,50,5.0,964982931\n",
        ),
        ("csv", "amazon.csv", "A1,B001,5.0,1\nA2,B001,3.0,2\nA1,B002,4.0,3\n"),
        ("csv", "plain.csv", "user,item,rating\nu1,i1,1\nu2,i1,2\nu1,i2,3\n"),
    ],
)
def test_loaders_read_each_format(tmp_path, dataset, name, text):
    (tmp_path / name).write_text(text)
    got = D.load_ratings(dataset, str(tmp_path))
    assert len(got) == 3 and got.n_users == 2 and got.n_items == 2
    assert got.user[0] == got.user[2] and got.item[0] == got.item[1]
    assert (got.time is None) == (name == "plain.csv")


@pytest.mark.parametrize(
    ("text", "bad_line"),
    [("1,2,5\n1,3,x\n", 2), ("user,item,rating\n1,2,5\n3,4\n", 3), ("1,2,5,7,8\n", 1)],
)
def test_malformed_rows_are_rejected_with_their_line_number(tmp_path, text, bad_line):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"line {bad_line} "):
        D.load_ratings("csv", str(path))


def test_missing_movielens_file_names_the_key_and_the_file(tmp_path):
    with pytest.raises(ConfigError, match="task.data_root.*u.data"):
        D.load_ratings("ml-100k", str(tmp_path))


def _toy() -> D.Ratings:
    rng = np.random.default_rng(0)
    n = 300
    return D.Ratings(
        rng.integers(0, 20, n),
        rng.integers(0, 30, n),
        rng.integers(1, 6, n).astype(np.float32),
        20,
        30,
        time=rng.random(n),
    )


def test_random_split_is_a_deterministic_partition():
    data = _toy()
    a, b = D.split_random(data, 0.1, 0.2, seed=3), D.split_random(data, 0.1, 0.2, seed=3)
    assert (a.test.user == b.test.user).all()
    assert len(a.train) + len(a.val) + len(a.test) == len(data)
    assert len(a.test) == 60 and len(a.val) == 30


def test_leave_out_puts_each_users_latest_ratings_in_test():
    data = _toy()
    s = D.split_leave_out(data, n=1, seed=0)
    for u in np.unique(s.test.user):
        assert s.test.time[s.test.user == u].max() >= s.train.time[s.train.user == u].max()
        assert s.val.time[s.val.user == u].max() >= s.train.time[s.train.user == u].max()
    assert len(s.train) + len(s.val) + len(s.test) == len(data)


def test_implicit_conversion_samples_only_unobserved_negatives():
    data = _toy()
    imp = D.to_implicit(data, threshold=4, negatives=3, seed=0)
    observed = set(zip(data.user.tolist(), data.item.tolist(), strict=True))
    pos = imp.rating == 1
    assert pos.sum() == (data.rating >= 4).sum()
    assert not any((u, i) in observed for u, i in zip(imp.user[~pos], imp.item[~pos], strict=True))


def test_ranking_metrics_on_a_hand_computed_case():
    # 1 user, 5 items; item 0 seen in training; relevant held-out items 1 and 3
    seen = D.Ratings(np.array([0]), np.array([0]), np.array([5.0], np.float32), 1, 5)
    test = D.Ratings(
        np.array([0, 0, 0]), np.array([1, 3, 4]), np.array([5.0, 4.0, 1.0], np.float32), 1, 5
    )
    scores = np.array([[9.0, 1.0, 3.0, 2.0, 0.5]])  # ranking without item 0: 2, 3, 1, 4
    recall, ndcg = ranking_at_k(lambda users: scores, seen, test, k=2, relevant=4.0)
    assert recall == pytest.approx(0.5)
    assert ndcg == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def test_planted_nmi_matches_views_in_any_order():
    a, b = np.repeat(np.arange(4), 24), np.tile(np.arange(4), 24)  # independent labelings
    assert planted_nmi([b, a], [a, b]) == pytest.approx(1.0)
    assert planted_nmi([a, a], [a, b]) == pytest.approx(0.5)


def test_planted_generator_is_deterministic_and_on_the_rating_scale():
    kw = dict(
        users=50,
        items=40,
        views=2,
        groups=4,
        group_dim=4,
        density=0.2,
        noise=0.5,
        bias_std=0.3,
        seed=5,
    )
    a, b = D.planted(**kw), D.planted(**kw)
    assert (a.rating == b.rating).all() and len(a) == 400
    assert set(np.unique(a.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(a.user_groups) == 2 and a.user_groups[0].shape == (50,)
