"""A corpus's splits as token streams, cached on disk per (corpus, tokenizer).

Encoding the standard library's source takes ~10 s on two cores; every evaluation of a model
needs the training stream (for the unigram baseline) and the test stream, so the streams are
kept as one .npz per corpus and tokenizer under `<outputs>/cache/tokens/`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

SPLITS = ("train", "validation", "test")


def tokenizer_digest(tokenizer) -> str:
    """A hash of the tokenizer's full definition (vocabulary, merges, normalisation)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]


def stream_key(
    corpus: str, root: str | None, seed: int, tokenizer, options: dict | None = None
) -> str:
    from celine.llm.corpora import corpus_fingerprint

    blob = json.dumps(
        {
            "corpus": corpus,
            "root": str(Path(root).resolve()) if root else None,
            "seed": seed,
            "options": options or {},
            "fingerprint": corpus_fingerprint(corpus, root),
            "tokenizer": tokenizer_digest(tokenizer),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encoded_splits(
    corpus: str,
    root: str | None,
    seed: int,
    tokenizer,
    cache_dir: str | os.PathLike | None = None,
    options: dict | None = None,
):
    """(CorpusSplits, {split: int32 token stream}); streams come from the cache when present."""
    from celine.llm.corpora import load_corpus
    from celine.llm.tokenizer import encode_documents
    from celine.llm.train import token_stream

    splits = load_corpus(corpus, root, seed=seed, **(options or {}))
    path = None
    if cache_dir is not None:
        key = stream_key(corpus, root, seed, tokenizer, options)
        path = Path(cache_dir) / f"{corpus}-{key}.npz"
        if path.is_file():
            with np.load(path) as cached:
                return splits, {s: cached[s] for s in SPLITS}
    streams = {s: token_stream(encode_documents(tokenizer, getattr(splits, s))) for s in SPLITS}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, **streams)
        os.replace(tmp, path)  # atomic: concurrent sweep jobs never read half a file
    return splits, streams
