"""Corpus loading: deterministic, disjoint splits and clear errors on bad paths."""

import json
import random

import pytest

from celine.llm import corpora as C


def test_hash_split_independent_of_listing_order():
    keys = [f"pkg/mod_{i}.py" for i in range(300)]
    a = C.hash_split(list(keys), list(keys))
    shuffled = keys[:]
    random.Random(0).shuffle(shuffled)
    b = C.hash_split(list(shuffled), list(shuffled))
    assert a == b
    assert set(a["train"]).isdisjoint(a["validation"]) and set(a["train"]).isdisjoint(a["test"])
    assert set(a["validation"]).isdisjoint(a["test"])
    assert sum(map(len, a.values())) == 300
    assert 0.8 < len(a["train"]) / 300 < 0.97  # about 90/5/5


def test_code_corpus_split_deterministic_and_disjoint():
    a, b = C.load_corpus("code"), C.load_corpus("code")
    assert a.train == b.train and a.validation == b.validation and a.test == b.test
    assert len(a.train) > 300 and a.validation and a.test
    assert (
        set(a.train).isdisjoint(a.test) or len(set(a.train) & set(a.test)) <= 1
    )  # identical tiny files may repeat
    assert a.info["files"] == len(a.train) + len(a.validation) + len(a.test)
    assert all("site-packages" not in f for f in map(str, C.stdlib_files()))


def test_text_dir_split_stable_under_creation_order(tmp_path):
    names = [f"doc{i:03d}.txt" for i in range(60)]
    for root, order in ((tmp_path / "a", names), (tmp_path / "b", names[::-1])):
        root.mkdir()
        for n in order:
            (root / n).write_text(f"text of {n}")
    a, b = C.load_corpus("text_dir", tmp_path / "a"), C.load_corpus("text_dir", tmp_path / "b")
    assert (a.train, a.validation, a.test) == (b.train, b.validation, b.test)
    assert a.validation and a.test
    assert not set(a.train) & set(a.validation) and not set(a.train) & set(a.test)


def test_reasoning_splits_disjoint_and_seeded():
    a = C.load_corpus("reasoning", n_train=2000, n_val_per_steps=5, n_test_per_steps=10)
    b = C.load_corpus("reasoning", n_train=2000, n_val_per_steps=5, n_test_per_steps=10)
    assert a.train == b.train and a.test_problems == b.test_problems
    assert len(a.test_problems) == 80 and len(a.validation_problems) == 40

    def qs(ps):
        return {p.question for p in ps}

    assert qs(a.test_problems).isdisjoint(qs(a.validation_problems))
    assert not any(doc.split("\nA:")[0][3:] in qs(a.test_problems) for doc in a.train)
    c = C.load_corpus("reasoning", seed=1, n_train=2000, n_val_per_steps=5, n_test_per_steps=10)
    assert c.train != a.train


def test_jsonl_uses_own_split_files_and_field(tmp_path):
    for split, n in (("train", 40), ("test", 5)):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"body": f"{split} {i}"}) + "\n")
    c = C.load_corpus("jsonl", tmp_path, field="body")
    assert sorted(c.test) == sorted(f"test {i}" for i in range(5))
    assert all(t.startswith("train") for t in c.train + c.validation)
    assert len(c.train) + len(c.validation) == 40
    with pytest.raises(KeyError, match="'text'"):
        C.load_corpus("jsonl", tmp_path)


def test_gsm8k_and_math(tmp_path):
    g = tmp_path / "gsm"
    g.mkdir()
    row = {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=<<3+4=7>>7\n#### 7"}
    for split in ("train", "test"):
        (g / f"{split}.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    c = C.load_corpus("gsm8k", g)
    p = c.test_problems[0]
    assert p.answer == 7 and "<<" not in p.chain and p.steps == 1
    assert c.test[0].endswith("\\boxed{7}")
    m = tmp_path / "math.jsonl"
    rows = [
        {
            "problem": f"P{i}",
            "solution": f"so \\boxed{{{i}}}" if i % 2 else "so \\boxed{\\frac{1}{2}}",
            "level": "Level 3",
        }
        for i in range(100)
    ]
    m.write_text("\n".join(json.dumps(r) for r in rows))
    mc = C.load_corpus("math", m)
    probs = mc.test_problems + mc.validation_problems
    assert probs and all(p.steps == 3 for p in probs)
    assert {type(p.answer) for p in probs} <= {int, str}
    assert len(mc.train) + len(mc.validation) + len(mc.test) == 100


@pytest.mark.parametrize("name", ["text_dir", "jsonl", "gsm8k", "math"])
def test_bad_path_names_the_path(name, tmp_path):
    missing = tmp_path / "nope" / "data"
    with pytest.raises(FileNotFoundError, match="nope/data"):
        C.load_corpus(name, missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        C.load_corpus(name, empty)
    with pytest.raises(ValueError, match="needs a local path"):
        C.load_corpus(name)


def test_bad_json_line_names_file_and_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match=r"x.jsonl.*line 2"):
        C.load_corpus("jsonl", f)


def test_unknown_name_and_option():
    with pytest.raises(ValueError, match=r"'wiki'.*code, reasoning"):
        C.load_corpus("wiki")
    with pytest.raises(ValueError, match="n_trian"):
        C.load_corpus("reasoning", n_trian=5)
