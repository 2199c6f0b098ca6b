"""Ratings: the planted multi-view generator, loaders for local files, splits, implicit feedback.

Every loader returns a `Ratings` with users and items re-indexed to 0..n-1 (sorted raw ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from celine.api import ConfigError


@dataclass
class Ratings:
    user: np.ndarray  # int64 indices
    item: np.ndarray
    rating: np.ndarray  # float32
    n_users: int
    n_items: int
    time: np.ndarray | None = None
    # planted ground truth: one label array per planted view, for users and for items
    user_groups: list[np.ndarray] = field(default_factory=list)
    item_groups: list[np.ndarray] = field(default_factory=list)
    scale: tuple[float, float] = (1.0, 5.0)

    def __len__(self) -> int:
        return len(self.rating)

    def take(self, idx: np.ndarray) -> Ratings:
        return replace(
            self,
            user=self.user[idx],
            item=self.item[idx],
            rating=self.rating[idx],
            time=None if self.time is None else self.time[idx],
        )


@dataclass
class Splits:
    train: Ratings
    val: Ratings
    test: Ratings


def planted(
    *,
    users: int,
    items: int,
    views: int,
    groups: int,
    group_dim: int,
    density: float,
    noise: float,
    bias_std: float,
    seed: int,
    spread: float = 0.0,
) -> Ratings:
    """Ratings whose users and items belong to `groups` planted clusters in each of `views`
    views: in view v a user's factor is its group's centroid, the rating is
    3.5 + b_u + b_i + sum_v <g_v(user), h_v(item)> + noise, rounded and clipped to 1..5.

    `spread` moves the factors from clustered to continuous at equal variance: each entity's
    factor in a view is sqrt(1 - spread) * its group's centroid + sqrt(spread) * its own draw
    from the same distribution. 0 is MFDMC's own model (the method wins by construction there);
    1 is plain low-rank data whose group labels carry no information about the ratings."""
    rng = np.random.default_rng(seed)
    user_groups = [rng.integers(groups, size=users) for _ in range(views)]
    item_groups = [rng.integers(groups, size=items) for _ in range(views)]
    # scaled so each view's interaction has unit variance (one view cannot drown the others)
    scale = group_dim**-0.25
    g = [rng.standard_normal((groups, group_dim)) * scale for _ in range(views)]
    h = [rng.standard_normal((groups, group_dim)) * scale for _ in range(views)]
    n = int(round(density * users * items))
    cells = rng.choice(users * items, size=n, replace=False)
    u, i = cells // items, cells % items
    score = 3.5 + rng.normal(0, bias_std, users)[u] + rng.normal(0, bias_std, items)[i]
    # the entities' own draws come from a second stream, so spread=0 gives exactly the data
    # of the clustered generator (and every spread shares its groups, cells and noise)
    own = np.random.default_rng([seed, 1])
    keep, mix = (1.0 - spread) ** 0.5, spread**0.5
    for v in range(views):
        user_f = keep * g[v][user_groups[v]] + mix * own.standard_normal((users, group_dim)) * scale
        item_f = keep * h[v][item_groups[v]] + mix * own.standard_normal((items, group_dim)) * scale
        score += np.einsum("nd,nd->n", user_f[u], item_f[i])
    score += rng.normal(0, noise, n)
    rating = np.clip(np.round(score), 1, 5).astype(np.float32)
    return Ratings(
        u.astype(np.int64),
        i.astype(np.int64),
        rating,
        users,
        items,
        user_groups=user_groups,
        item_groups=item_groups,
    )


# ---------------------------------------------------------------------------------- local files

# name -> (file inside data_root, separator, has header, column names)
LAYOUTS = {
    "ml-100k": ("u.data", "\t", False),
    "ml-1m": ("ratings.dat", "::", False),
    "ml-latest": ("ratings.csv", ",", True),
}


def load_ratings(dataset: str, root: str, *, csv_sep: str = ",") -> Ratings:
    """MovieLens 100K/1M/latest from their folders, or any user,item,rating[,time] file."""
    path = Path(root).expanduser()
    if dataset in LAYOUTS:
        name, sep, header = LAYOUTS[dataset]
        if path.is_dir():
            path = path / name
        if not path.is_file():
            raise ConfigError(
                "task.data_root", root, f"a folder holding {name} (or the file itself)"
            )
    else:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in {".csv", ".tsv", ".txt"})
            if len(files) != 1:
                raise ConfigError(
                    "task.data_root",
                    root,
                    "one ratings file, or a folder with exactly one .csv/.tsv/.txt",
                )
            path = files[0]
        if not path.is_file():
            raise ConfigError("task.data_root", root, "an existing ratings file")
        sep, header = csv_sep, None
    return parse_ratings(path, sep=sep, header=header)


def parse_ratings(path: Path, *, sep: str, header: bool | None) -> Ratings:
    """Read user, item, rating[, time] rows; a malformed row is an error naming its line."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    first = 0
    if header is None:  # sniff: a header's third field is not a number
        fields = lines[0].split(sep) if lines else []
        header = len(fields) >= 3 and not _is_number(fields[2])
    if header:
        first = 1
    rows, numbers = [], []
    for lineno, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(sep)]
        if (
            len(fields) not in (3, 4)
            or not _is_number(fields[2])
            or (len(fields) == 4 and not _is_number(fields[3]))
        ):
            raise ConfigError(
                "task.data_root",
                str(path),
                f"rows of user{sep}item{sep}rating[{sep}time]; line {lineno} is {line[:80]!r}",
            )
        rows.append(fields[:2])
        numbers.append((float(fields[2]), float(fields[3]) if len(fields) == 4 else np.nan))
    if not rows:
        raise ConfigError("task.data_root", str(path), "at least one rating row")
    ids = np.asarray(rows)
    users, user_idx = np.unique(ids[:, 0], return_inverse=True)
    items, item_idx = np.unique(ids[:, 1], return_inverse=True)
    values = np.asarray(numbers, dtype=np.float64)
    time = None if np.isnan(values[:, 1]).any() else values[:, 1]
    rating = values[:, 0].astype(np.float32)
    return Ratings(
        user_idx.astype(np.int64),
        item_idx.astype(np.int64),
        rating,
        len(users),
        len(items),
        time=time,
        scale=(float(rating.min()), float(rating.max())),
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------- splits


def split_random(data: Ratings, val: float, test: float, seed: int) -> Splits:
    order = np.random.default_rng(seed).permutation(len(data))
    n_test, n_val = int(round(test * len(data))), int(round(val * len(data)))
    return Splits(
        train=data.take(order[n_test + n_val :]),
        val=data.take(order[n_test : n_test + n_val]),
        test=data.take(order[:n_test]),
    )


def split_leave_out(data: Ratings, n: int, seed: int) -> Splits:
    """Per user: the last n ratings (by time; random order without times) go to test, the n
    before them to validation. Users with fewer than 2n+1 ratings stay whole in train."""
    rng = np.random.default_rng(seed)
    key = data.time if data.time is not None else rng.random(len(data))
    order = np.lexsort((key, data.user))  # by user, then time
    users = data.user[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    ends = np.r_[starts[1:], len(order)]
    train, val, test = [], [], []
    for s, e in zip(starts, ends, strict=True):
        rows = order[s:e]
        if len(rows) < 2 * n + 1:
            train.append(rows)
            continue
        train.append(rows[: -2 * n])
        val.append(rows[-2 * n : -n])
        test.append(rows[-n:])
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
    return Splits(data.take(cat(train)), data.take(cat(val)), data.take(cat(test)))


def to_implicit(data: Ratings, threshold: float, negatives: int, seed: int) -> Ratings:
    """Ratings >= threshold become positives (1); each positive brings `negatives` sampled
    unobserved (user, item) pairs as 0s, the usual pointwise set-up for implicit feedback."""
    keep = data.rating >= threshold
    u, i = data.user[keep], data.item[keep]
    rng = np.random.default_rng(seed)
    observed = set((data.user * data.n_items + data.item).tolist())
    neg_u = np.repeat(u, negatives)
    neg_i = rng.integers(data.n_items, size=len(neg_u))
    fresh = np.array(
        [a * data.n_items + b not in observed for a, b in zip(neg_u, neg_i, strict=True)],
        dtype=bool,
    )
    neg_u, neg_i = neg_u[fresh], neg_i[fresh]
    return replace(
        data,
        user=np.r_[u, neg_u],
        item=np.r_[i, neg_i],
        rating=np.r_[np.ones(len(u)), np.zeros(len(neg_u))].astype(np.float32),
        time=None,
        scale=(0.0, 1.0),
    )


def to_frame(data: Ratings) -> pd.DataFrame:
    return pd.DataFrame({"user": data.user, "item": data.item, "rating": data.rating})
