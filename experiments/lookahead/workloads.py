"""Prompts for decoding benchmarks: code completion on held-out standard-library files, chat-like
word problems, or a local MT-Bench / HumanEval style JSONL file."""

from __future__ import annotations

import json
import random
from pathlib import Path

# JSONL fields that hold a prompt, in the order they are tried (HumanEval, MT-Bench, others)
_PROMPT_FIELDS = ("prompt", "turns", "question", "instruction", "text")


def code_prompts(tokenizer, n: int, prompt_tokens: int, seed: int) -> list[list[int]]:
    """Prefixes of held-out (test split) stdlib files, cut at a random line in the middle
    of the file and truncated to the last `prompt_tokens` tokens (the model's context)."""
    from celine.llm.corpora import load_corpus

    docs = [d for d in load_corpus("code").test if d.count("\n") >= 40]
    rng = random.Random(seed)
    rng.shuffle(docs)
    prompts = []
    for doc in docs:
        lines = doc.splitlines(keepends=True)
        cut = rng.randrange(len(lines) // 4, 3 * len(lines) // 4)
        ids = tokenizer("".join(lines[:cut]))["input_ids"]
        if len(ids) >= min(prompt_tokens, 32):
            prompts.append(ids[-prompt_tokens:])
        if len(prompts) == n:
            break
    return prompts


def reasoning_prompts(tokenizer, n: int, prompt_tokens: int, seed: int) -> list[list[int]]:
    """Chat-like prompts: generated word problems, formatted as the reasoner is asked them."""
    from celine.llm import reasoning

    problems = reasoning.generate_problems(n, seed=10_000 + seed)
    return [tokenizer(reasoning.format_prompt(p))["input_ids"][-prompt_tokens:] for p in problems]


def jsonl_texts(root: str) -> list[str]:
    """Prompt texts of a JSONL file (or every .jsonl under a folder)."""
    path = Path(root)
    files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
    texts = []
    for file in files:
        for line in file.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            field = next((f for f in _PROMPT_FIELDS if f in row), None)
            if field is None:
                raise ValueError(f"{file}: a line has none of the fields {_PROMPT_FIELDS}")
            value = row[field]
            texts.append(value[0] if isinstance(value, list) else str(value))
    return texts


def jsonl_prompts(tokenizer, root: str, n: int, prompt_tokens: int) -> list[list[int]]:
    return [tokenizer(t)["input_ids"][-prompt_tokens:] for t in jsonl_texts(root)[:n]]


_ID_FIELDS = ("input_ids", "ids", "token_ids")


def prompt_file(path: str) -> tuple[list[list[int]] | None, list[str] | None]:
    """(token-id prompts, None) or (None, text prompts) from a JSONL file: every line either
    a list of ints, an object with one of `_ID_FIELDS`, or an object with a text field
    (`_PROMPT_FIELDS`). A file mixing ids and text is refused, naming the line."""
    from celine.api import ConfigError

    ids, texts = [], []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if isinstance(row, dict):
            key = next((f for f in _ID_FIELDS if f in row), None)
            row = row[key] if key else row
        if isinstance(row, list):
            if not row or not all(isinstance(t, int) and t >= 0 for t in row):
                raise ConfigError(
                    "task.prompts", f"{path}:{n}", "a non-empty list of token ids (ints >= 0)"
                )
            ids.append(row)
            continue
        field = next((f for f in _PROMPT_FIELDS if f in row), None)
        if field is None:
            raise ConfigError(
                "task.prompts", f"{path}:{n}", f"a line with token ids {_ID_FIELDS} or text "
                f"{_PROMPT_FIELDS}",
            )  # fmt: skip
        value = row[field]
        texts.append(value[0] if isinstance(value, list) else str(value))
    if ids and texts:
        raise ConfigError("task.prompts", path, "lines of token ids or of text, not both")
    if not ids and not texts:
        raise ConfigError("task.prompts", path, "at least one prompt")
    return (ids, None) if ids else (None, texts)
