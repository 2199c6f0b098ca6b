"""Traces: prompts with the output length a real model produced for them.

Built in: arithmetic word problems (difficulty = steps) sampled from the tiny reasoner at
T=1.0, half of them with 1..max_shots solved examples prepended (few-shot prompts), so
that prompt length alone is a weak predictor of output length (as in ShareGPT/LMSYS) while
the question itself still decides it. From disk: ShareGPT/LMSYS-style JSON(L) with recorded
lengths. Generated traces are cached under `<outputs>/cache/llm_sched/`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd

from celine.api import ConfigError

TRACE_VERSION = 1


def build_prompts(cfg, tokenizer) -> pd.DataFrame:
    """The built-in prompts: zero-shot or few-shot reasoning questions (no lengths yet)."""
    from celine.llm.reasoning import format_prompt, format_solution, generate_problems

    rng = random.Random(cfg.trace_seed)
    problems = generate_problems(cfg.num_prompts, seed=cfg.trace_seed)
    pool = generate_problems(500, seed=cfg.trace_seed + 1)
    rows = []
    for p in problems:
        question = format_prompt(p)
        shots = 0
        if cfg.max_shots and rng.random() < cfg.few_shot_fraction:
            shots = rng.randint(1, cfg.max_shots)
        examples = [format_solution(s) for s in rng.sample(pool, shots)]
        while True:  # drop examples until the prompt fits
            prompt = "\n".join([*examples, question])
            n = len(tokenizer(prompt)["input_ids"])
            if n <= cfg.max_prompt_tokens or not examples:
                break
            examples.pop(0)
        if n > cfg.max_prompt_tokens:
            continue
        rows.append(dict(prompt=prompt, prompt_len=n, steps=p.steps, shots=len(examples)))
    return pd.DataFrame(rows)


def trace_key(cfg, lm) -> str:
    fields = dict(
        v=TRACE_VERSION, model=str(Path(lm.path).name), n=cfg.num_prompts,
        fs=cfg.few_shot_fraction, shots=cfg.max_shots, mp=cfg.max_prompt_tokens,
        mx=cfg.max_new_tokens, t=cfg.temperature, seed=cfg.trace_seed,
    )  # fmt: skip
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def generate_trace(cfg, lm, log, chunk: int = 256) -> pd.DataFrame:
    """Sample every prompt's completion (T=cfg.temperature) and record its length in tokens,
    counting the EOS the engine emits (a completion cut at max_new_tokens has exactly that)."""
    from celine.llm.evaluate import generate

    df = build_prompts(cfg, lm.tokenizer)
    order = np.argsort(df["prompt_len"].to_numpy(), kind="stable")  # less padding per batch
    lengths = np.zeros(len(df), dtype=int)
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        gens = generate(
            lm.model, lm.tokenizer, df["prompt"].iloc[idx].tolist(),
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
            seed=cfg.trace_seed + start, batch_size=cfg.gen_batch_size,
        )  # fmt: skip
        lengths[idx] = [min(len(g.token_ids) + int(g.stopped), cfg.max_new_tokens) for g in gens]
        log.info("trace: generated %d/%d completions", min(start + chunk, len(df)), len(df))
    df["output_len"] = np.maximum(lengths, 1)
    return df


def load_or_generate(cfg, lm, cache_dir: Path, log) -> pd.DataFrame:
    path = Path(cache_dir) / f"trace-{trace_key(cfg, lm)}.json"
    if path.is_file():
        log.info("trace: using the cached %s", path)
        return pd.read_json(path, orient="records")
    log.info("trace: sampling %d completions from %s (cached afterwards)", cfg.num_prompts, lm.path)
    df = generate_trace(cfg, lm, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    df.to_json(tmp, orient="records")
    tmp.replace(path)
    return df


# -- traces from disk --------------------------------------------------------------------------

_LEN_KEYS = ("output_len", "output_length", "output_tokens", "len", "num_tokens")


def _record(row: dict, tokenizer, source: str):
    """(prompt, output_len) of one ShareGPT / LMSYS / flat record, or None if it has no
    first user turn followed by an answer."""
    if "prompt" in row:
        prompt = row["prompt"]
        for k in _LEN_KEYS:
            if k in row:
                return prompt, int(row[k])
        if "output" in row:
            return prompt, len(tokenizer(row["output"])["input_ids"]) + 1
        raise ConfigError("task.data_root", source, f"record with 'prompt' but none of {_LEN_KEYS}")
    turns = row.get("conversations") or row.get("conversation") or row.get("messages")
    if not turns:
        return None
    texts = [
        (t.get("from") or t.get("role"), t.get("value") if "value" in t else t.get("content"))
        for t in turns
    ]
    for (who, text), (who2, reply) in zip(texts, texts[1:], strict=False):
        if who in ("human", "user") and who2 in ("gpt", "assistant", "chatgpt", "bard"):
            if text and reply:
                return text, len(tokenizer(reply)["input_ids"]) + 1
            return None
    return None


def load_json_trace(root: str, cfg, tokenizer) -> pd.DataFrame:
    """Prompts and recorded output lengths from *.json / *.jsonl under `root` (or that file):
    ShareGPT (`conversations` with from/value), LMSYS-Chat (`conversation` with role/content)
    or flat records (`prompt` + `output_len` or `output`). Lengths are in the served model's
    tokens when counted here; capped at max_new_tokens, prompts truncated to max_prompt_tokens.
    """
    base = Path(root).expanduser()
    files = [base] if base.is_file() else sorted([*base.rglob("*.json"), *base.rglob("*.jsonl")])

    def records():
        for f in files:
            text = f.read_text()
            rows = (
                [json.loads(line) for line in text.splitlines() if line.strip()]
                if f.suffix == ".jsonl"
                else json.loads(text)
            )
            if isinstance(rows, dict):
                rows = rows.get("data") or list(rows.values())
            for row in rows:
                yield row, str(f)

    return trace_from_records(records(), cfg, tokenizer, root)


def gold_trace(cfg, tokenizer) -> pd.DataFrame:
    """The built-in prompts with their gold chain of thought as the recorded answer
    (`task.trace=gold`): what a well-trained reasoner answers, without sampling a model."""
    from celine.experiments.llm_sched.gold_trace import gold_records

    recs = gold_records(cfg.num_prompts, cfg.trace_seed, cfg.few_shot_fraction, cfg.max_shots)
    return trace_from_records(((r, "task.trace=gold") for r in recs), cfg, tokenizer, "gold")


def trace_from_records(records, cfg, tokenizer, source: str) -> pd.DataFrame:
    rows = []
    for row, where in records:
        rec = _record(row, tokenizer, where)
        if rec is None:
            continue
        prompt, out_len = rec
        ids = tokenizer(prompt)["input_ids"][: cfg.max_prompt_tokens]
        rows.append(dict(prompt=prompt, prompt_len=max(len(ids), 1),
                         output_len=int(np.clip(out_len, 1, cfg.max_new_tokens)),
                         steps=int(row.get("steps", 0)), shots=0))  # fmt: skip
        if len(rows) >= cfg.num_prompts:
            break
    if len(rows) < 20:
        raise ConfigError("task.data_root", source, f"found {len(rows)} usable records; need >= 20")
    return pd.DataFrame(rows)


def split(df: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    """A seeded shuffle, then the last `test_fraction` are held out."""
    perm = np.random.default_rng(seed).permutation(len(df))
    n_test = max(2, int(round(test_fraction * len(df))))
    out = df.iloc[perm].reset_index(drop=True)
    out["split"] = ["train"] * (len(df) - n_test) + ["test"] * n_test
    return out
