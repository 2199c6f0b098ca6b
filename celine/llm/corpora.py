"""Text corpora for language-model training and evaluation, each with a deterministic
train/validation/test split.

Built in (no download, on every machine):
  code       the running interpreter's own standard-library .py files, split by file
  reasoning  generated arithmetic word problems (reasoning.py), disjoint seeds per split
From a local path (`root`):
  text_dir   a folder of .txt files (searched recursively), split by file
  jsonl      a .jsonl file or a folder of them, one JSON object per line, text in `field`
  gsm8k      GSM8K JSONL (question / answer with ``#### N``)
  math       MATH JSONL (problem / solution with ``\\boxed{}``), or the original folder
             of per-problem .json files

Split rule for files and lines: a stable hash of the relative path (or of the line)
puts an item into one of 100 buckets: 0-89 train, 90-94 validation, 95-99 test. This
does not depend on listing order, and adding an item never moves another. A local JSONL
root with its own split files (train*.jsonl, test*.jsonl, optionally val*/dev*.jsonl)
keeps that split; a missing validation file is carved out of train by the same hash.
File splits ignore `seed` on purpose: a dataset's split is a property of the data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from celine.errors import DataError, DataFieldMissing, DataNotADirectory, DataNotFound
from celine.llm import reasoning
from celine.llm.reasoning import Problem

CORPORA = ("code", "reasoning", "text_dir", "jsonl", "gsm8k", "math")
LOCAL_CORPORA = ("text_dir", "jsonl", "gsm8k", "math")
QA_CORPORA = ("reasoning", "gsm8k", "math")

# Directories of the standard library that are not the library itself.
_STDLIB_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}


@dataclass
class CorpusSplits:
    """Documents (str) per split; QA corpora also carry their `Problem`s for eval."""

    name: str
    train: list[str]
    validation: list[str]
    test: list[str]
    validation_problems: list[Problem] = field(default_factory=list)
    test_problems: list[Problem] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # provenance: root, counts, split rule

    def __repr__(self) -> str:
        return (
            f"CorpusSplits({self.name!r}, train={len(self.train)}, validation={len(self.validation)}, "
            f"test={len(self.test)}, test_problems={len(self.test_problems)})"
        )


# ----------------------------------------------------------------------------- splitting


def hash_bucket(key: str) -> int:
    """Stable bucket 0..99 of a string (sha256, so it is the same on every machine)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100


def split_of(key: str, val_pct: int = 5, test_pct: int = 5) -> str:
    b = hash_bucket(key)
    if b >= 100 - test_pct:
        return "test"
    if b >= 100 - test_pct - val_pct:
        return "validation"
    return "train"


def hash_split(items: list, keys: list[str]) -> dict[str, list]:
    """Split `items` by the hash of their `keys` (~90/5/5).

    Output order within a split follows the sorted keys, so it does not depend on the
    input order. Tiny collections (>= 3 items) whose validation or test bucket came out
    empty get the train item with the largest hash moved there, so no split is empty.
    """
    order = sorted(range(len(items)), key=lambda i: keys[i])
    out: dict[str, list] = {"train": [], "validation": [], "test": []}
    out_keys: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for i in order:
        s = split_of(keys[i])
        out[s].append(items[i])
        out_keys[s].append(keys[i])
    for s in ("validation", "test"):
        if not out[s] and len(out["train"]) >= 2:
            j = max(
                range(len(out_keys["train"])),
                key=lambda k: hashlib.sha256(out_keys["train"][k].encode()).hexdigest(),
            )
            out[s].append(out["train"].pop(j))
            out_keys[s].append(out_keys["train"].pop(j))
    return out


# ----------------------------------------------------------------------------- errors


def _require_root(name: str, root: str | os.PathLike | None, expected: str) -> Path:
    if root is None or str(root) == "":
        raise DataNotFound(f"corpus {name!r} needs a local path (root=...): expected {expected}")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataNotFound(
            f"corpus {name!r}: path {str(path)!r} does not exist; expected {expected}"
        )
    return path


# ----------------------------------------------------------------------------- built-in corpora


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path | None = None) -> list[Path]:
    """The standard library's .py files (not site-packages, not test suites)."""
    root = root or stdlib_root()
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _STDLIB_SKIP_DIRS]
        files.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    return files


def _read_text(path: Path) -> str:
    # A few stdlib files are not UTF-8 (latin-1 test data); keep them readable, not fatal.
    return path.read_bytes().decode("utf-8", errors="replace")


def load_code(root: str | None = None, max_files: int | None = None) -> CorpusSplits:
    """Python source files, split by file. `root` defaults to this interpreter's stdlib;
    `max_files` keeps the first files in hash order (for quick smoke runs)."""
    base = stdlib_root() if root is None else _require_root("code", root, "a folder of .py files")
    files = stdlib_files(base) if root is None else sorted(base.rglob("*.py"))
    if not files:
        raise DataNotFound(f"corpus 'code': no .py files under {str(base)!r}")
    rel = [f.relative_to(base).as_posix() for f in files]
    if max_files is not None:
        keep = sorted(range(len(rel)), key=lambda i: hashlib.sha256(rel[i].encode()).hexdigest())[
            :max_files
        ]
        files, rel = [files[i] for i in keep], [rel[i] for i in keep]
    parts = hash_split(files, rel)
    docs = {k: [_read_text(p) for p in v] for k, v in parts.items()}
    info = {
        "root": str(base),
        "files": len(files),
        "python": sys.version.split()[0],
        "split": "hash of relative path",
    }
    return CorpusSplits("code", docs["train"], docs["validation"], docs["test"], info=info)


def _balanced_unseen(
    n_per_steps: int, seed: int, steps: range, seen: set[str], restate: bool = True
) -> list[Problem]:
    """`n_per_steps` problems per difficulty whose questions are not in `seen` and not
    repeated (drawn from one seeded stream, redrawing repeats, so counts stay balanced)."""
    import random

    rng = random.Random(seed)
    taken = set(seen)
    out = []
    for s in steps:
        got, tries = 0, 0
        while got < n_per_steps:
            p = reasoning.make_problem(rng, s, restate)
            tries += 1
            if p.question in taken:
                if tries > 100 * n_per_steps:
                    raise RuntimeError(
                        f"cannot draw {n_per_steps} unseen {s}-step problems; lower n_train"
                    )
                continue
            taken.add(p.question)
            out.append(p)
            got += 1
    return out


def load_reasoning(
    seed: int = 0,
    n_train: int = 100_000,
    n_val_per_steps: int = 50,
    n_test_per_steps: int = 100,
    max_steps: int = reasoning.MAX_STEPS,
    restate: bool = True,
    verify: bool = False,
    slip_prob: float = 0.0,
) -> CorpusSplits:
    """Generated word problems. Train is uniform over 1..max_steps; validation and test
    are balanced per difficulty. The three splits use disjoint seeds, and validation and
    test questions that also occur in train are dropped (short problems can repeat).

    `verify` writes long chains (`reasoning.format_long_solution`: a check that re-derives
    every step after the first answer); `slip_prob` of them get a slip in the first pass that
    the check corrects. The problems themselves (and the eval problems) do not change: the
    slips are drawn from their own seeded stream."""
    steps = range(1, max_steps + 1)
    # Disjoint seed streams: split index in the low bits, user seed above.
    train_p = reasoning.generate_problems(n_train, seed * 3 + 0, steps, restate)
    seen = {p.question for p in train_p}
    val_p = _balanced_unseen(n_val_per_steps, seed * 3 + 1, steps, seen, restate)
    test_p = _balanced_unseen(
        n_test_per_steps, seed * 3 + 2, steps, seen | {p.question for p in val_p}, restate
    )
    fmt = reasoning.format_solution
    info = {
        "seed": seed,
        "n_train": n_train,
        "max_steps": max_steps,
        "restate": restate,
        "split": "disjoint generator seeds",
    }
    if verify or slip_prob:
        fmt = _long_formatter(seed, slip_prob)
        info.update(verify=True, slip_prob=slip_prob)
    return CorpusSplits(
        "reasoning",
        [fmt(p) for p in train_p],
        [fmt(p) for p in val_p],
        [fmt(p) for p in test_p],
        validation_problems=val_p,
        test_problems=test_p,
        info=info,
    )


def _long_formatter(seed: int, slip_prob: float):
    """`format_long_solution` with a slip in a `slip_prob` fraction of the chains, drawn from
    a stream of its own (the problem draws stay those of the plain corpus)."""
    import random

    if not 0.0 <= slip_prob <= 1.0:
        raise ValueError(f"slip_prob={slip_prob!r}: allowed 0..1")
    rng = random.Random(f"reasoning-verify-{seed}")

    def fmt(p: Problem) -> str:
        slip = rng.random() < slip_prob
        return reasoning.format_long_solution(p, rng if slip else None)

    return fmt


# ----------------------------------------------------------------------------- local corpora


def load_text_dir(root: str) -> CorpusSplits:
    base = _require_root("text_dir", root, "a folder of .txt files")
    if not base.is_dir():
        raise DataNotADirectory(
            f"corpus 'text_dir': path {str(base)!r} is not a folder; expected a folder of .txt files"
        )
    files = sorted(base.rglob("*.txt"))
    if not files:
        raise DataNotFound(f"corpus 'text_dir': no .txt files under {str(base)!r}")
    parts = hash_split(files, [f.relative_to(base).as_posix() for f in files])
    docs = {k: [_read_text(p) for p in v] for k, v in parts.items()}
    return CorpusSplits(
        "text_dir",
        docs["train"],
        docs["validation"],
        docs["test"],
        info={"root": str(base), "files": len(files), "split": "hash of relative path"},
    )


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{str(path)!r} line {lineno}: not valid JSON ({e.msg}); expected one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    f"{str(path)!r} line {lineno}: expected a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
    return rows


_SPLIT_PATTERNS = {
    "train": re.compile(r"^train", re.I),
    "validation": re.compile(r"^(val|valid|validation|dev)", re.I),
    "test": re.compile(r"^test", re.I),
}


def _jsonl_rows_by_split(name: str, root: str, expected: str) -> tuple[dict[str, list[dict]], dict]:
    """Rows per split from a .jsonl file or folder: the folder's own split files if it
    has train and test files, else a hash split of the lines."""
    base = _require_root(name, root, expected)
    if base.is_file():
        files = [base]
    else:
        files = sorted(base.glob("*.jsonl"))
        if not files:
            # MATH's original layout: train/<subject>/<n>.json, test/<subject>/<n>.json
            if name == "math" and (base / "train").is_dir() and (base / "test").is_dir():
                return _math_json_dirs(base)
            raise DataNotFound(
                f"corpus {name!r}: no .jsonl files in {str(base)!r}; expected {expected}"
            )
    by_split: dict[str, list[Path]] = {"train": [], "validation": [], "test": []}
    for f in files:
        for s, pat in _SPLIT_PATTERNS.items():
            if pat.match(f.name):
                by_split[s].append(f)
                break
    if by_split["train"] and by_split["test"]:
        rows = {s: [r for f in fs for r in _read_jsonl(f)] for s, fs in by_split.items()}
        rule = "the folder's own split files"
        if not rows["validation"]:
            parts = hash_split(
                rows["train"], [json.dumps(r, sort_keys=True) for r in rows["train"]]
            )
            rows["train"] = parts["train"] + parts["test"]  # keep train's test bucket in train
            rows["validation"] = parts["validation"]
            rule += "; validation = hash bucket of train"
    else:
        all_rows = [r for f in files for r in _read_jsonl(f)]
        rows = hash_split(all_rows, [json.dumps(r, sort_keys=True) for r in all_rows])
        rule = "hash of each line"
    if not rows["train"]:
        raise DataError(f"corpus {name!r}: no rows in the train split of {str(base)!r}")
    return rows, {"root": str(base), "files": [f.name for f in files], "split": rule}


def _math_json_dirs(base: Path) -> tuple[dict[str, list[dict]], dict]:
    rows: dict[str, list[dict]] = {}
    for s in ("train", "test"):
        files = sorted((base / s).rglob("*.json"))
        rows[s] = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    parts = hash_split(rows["train"], [json.dumps(r, sort_keys=True) for r in rows["train"]])
    rows["train"], rows["validation"] = parts["train"] + parts["test"], parts["validation"]
    return rows, {
        "root": str(base),
        "split": "train/ and test/ folders; validation = hash bucket of train",
    }


def _field(row: dict, key: str, name: str, root: str) -> str:
    if key not in row:
        raise DataFieldMissing(
            f"corpus {name!r} at {root!r}: a row has no field {key!r} (fields: {sorted(row)})"
        )
    return str(row[key])


def load_jsonl(root: str, field: str = "text") -> CorpusSplits:
    rows, info = _jsonl_rows_by_split(
        "jsonl", root, f"a .jsonl file or folder with a {field!r} field per line"
    )
    docs = {s: [_field(r, field, "jsonl", root) for r in rs] for s, rs in rows.items()}
    return CorpusSplits("jsonl", docs["train"], docs["validation"], docs["test"], info=info)


def gsm8k_problem(row: dict, root: str = "?") -> Problem | None:
    """A GSM8K row as a Problem: the rationale (calculator annotations <<...>> removed)
    is the chain, the ``#### N`` integer the answer, its number of lines the steps."""
    question, answer = _field(row, "question", "gsm8k", root), _field(row, "answer", "gsm8k", root)
    value = reasoning.parse_gsm8k_answer(answer)
    if value is None:
        return None
    chain = re.sub(r"<<[^>]*>>", "", answer.split("####")[0]).strip()
    steps = len([line for line in chain.splitlines() if line.strip()])
    return Problem(question.strip(), chain, value, steps)


def math_problem(row: dict, root: str = "?") -> Problem | None:
    """A MATH row as a Problem: the solution is the chain (it holds the box); the boxed
    answer is an int when it is one, else its normalised string; steps = the level."""
    problem, solution = _field(row, "problem", "math", root), _field(row, "solution", "math", root)
    raw = reasoning.parse_boxed_str(solution)
    if raw is None:
        return None
    value = reasoning.parse_boxed(solution)
    level = re.search(r"(\d+)", str(row.get("level", "")))
    return Problem(
        problem.strip(),
        solution.strip(),
        value if value is not None else raw,
        int(level.group(1)) if level else 0,
    )


def _load_qa(name: str, root: str, expected: str, to_problem) -> CorpusSplits:
    rows, info = _jsonl_rows_by_split(name, root, expected)
    problems = {
        s: [p for p in (to_problem(r, str(root)) for r in rs) if p is not None]
        for s, rs in rows.items()
    }
    info["dropped_without_answer"] = sum(len(rows[s]) - len(problems[s]) for s in rows)
    docs = {s: [reasoning.format_solution(p) for p in ps] for s, ps in problems.items()}
    return CorpusSplits(
        name,
        docs["train"],
        docs["validation"],
        docs["test"],
        validation_problems=problems["validation"],
        test_problems=problems["test"],
        info=info,
    )


# ----------------------------------------------------------------------------- entry point

_OPTIONS = {
    "code": ("max_files",),
    "reasoning": (
        "n_train",
        "n_val_per_steps",
        "n_test_per_steps",
        "max_steps",
        "restate",
        "verify",
        "slip_prob",
    ),
    "text_dir": (),
    "jsonl": ("field",),
    "gsm8k": (),
    "math": (),
}


def load_corpus(name: str, root: str | None = None, seed: int = 0, **opts) -> CorpusSplits:
    """Load corpus `name` (one of CORPORA) with its train/validation/test split.

    `root` is the local path for local corpora (and may point `code` at another folder
    of .py files); `seed` only affects generated corpora; `opts` go to the loader
    (reasoning: n_train, n_val_per_steps, n_test_per_steps, max_steps; jsonl: field;
    code: max_files).
    """
    if name not in CORPORA:
        raise ValueError(f"corpus name {name!r} is unknown; allowed: {', '.join(CORPORA)}")
    unknown = set(opts) - set(_OPTIONS[name])
    if unknown:
        raise ValueError(
            f"corpus {name!r} has no option(s) {sorted(unknown)}; allowed: {list(_OPTIONS[name]) or 'none'}"
        )
    if name == "code":
        return load_code(root, **opts)
    if name == "reasoning":
        if root is not None:
            raise ValueError(f"corpus 'reasoning' is generated and takes no root (got {root!r})")
        return load_reasoning(seed=seed, **opts)
    if name == "text_dir":
        return load_text_dir(root, **opts)
    if name == "jsonl":
        return load_jsonl(root, **opts)
    if name == "gsm8k":
        return _load_qa(
            "gsm8k",
            root,
            "GSM8K JSONL (train.jsonl/test.jsonl) with 'question' and 'answer' ('#### N')",
            gsm8k_problem,
        )
    return _load_qa(
        "math", root, "MATH JSONL with 'problem' and 'solution' (\\boxed{...})", math_problem
    )


def corpus_fingerprint(name: str, root: str | None = None) -> str:
    """A cheap fingerprint of a file-based corpus (relative paths and sizes), so a cached
    model trained on other files is not reused. Generated corpora return ''."""
    if name == "reasoning":
        return ""
    if name == "code" and root is None:
        base = stdlib_root()
        files = stdlib_files(base)
    else:
        base = _require_root(name, root, "a local corpus path")
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(
            f"{f.relative_to(base).as_posix() if f != base else f.name}:{f.stat().st_size}\n".encode()
        )
    return h.hexdigest()[:16]
