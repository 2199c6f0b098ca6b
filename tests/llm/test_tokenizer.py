"""Byte-level BPE: exact round trips, determinism, offline save/load."""

import pytest

from celine.llm import corpora, reasoning
from celine.llm.tokenizer import (
    TokenizerSettings,
    default_settings,
    encode_documents,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def code_tok():
    docs = corpora.load_corpus("code", max_files=40).train
    return train_tokenizer(docs, TokenizerSettings(vocab_size=600, sample_chars=300_000))


UNICODE_CODE = 'def grüße(naïve: str) -> str:\n\t"""→ 中文 ✓ émoji 🐍"""\n    return naïve  #  trailing  \r\n\n'


def test_round_trip_code_with_unicode(code_tok):
    for text in (
        UNICODE_CODE,
        "x=1\n\n\n    y = [a,b]  ",
        " leading space",
        corpora.load_corpus("code", max_files=5).test[0],
    ):
        ids = code_tok(text)["input_ids"]
        assert ids[0] == code_tok.bos_token_id
        assert code_tok.decode(ids, skip_special_tokens=True) == text
    # merges actually compress code
    sample = corpora.load_corpus("code", max_files=5).test[0]
    assert len(code_tok(sample)["input_ids"]) < 0.6 * len(sample.encode())


def test_round_trip_reasoning_and_individual_digits():
    probs = reasoning.generate_problems(300, seed=0)
    docs = [reasoning.format_solution(p) for p in probs]
    tok = train_tokenizer(docs, default_settings("reasoning", 4096))
    for d in docs[:50]:
        assert tok.decode(tok(d)["input_ids"], skip_special_tokens=True) == d
    tokens = tok.convert_ids_to_tokens(tok("17+14=31")["input_ids"][1:])
    assert tokens == ["1", "7", "+", "1", "4", "=", "3", "1"]
    ids = encode_documents(tok, docs[:2])
    assert ids[0][0] == tok.bos_token_id and ids[0][-1] == tok.eos_token_id


def test_deterministic_and_saves_for_auto_tokenizer(tmp_path, code_tok):
    docs = corpora.load_corpus("code", max_files=40).train
    again = train_tokenizer(docs, TokenizerSettings(vocab_size=600, sample_chars=300_000))
    assert again.get_vocab() == code_tok.get_vocab()
    code_tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert loaded(UNICODE_CODE)["input_ids"] == code_tok(UNICODE_CODE)["input_ids"]
    assert (
        loaded.decode(loaded(UNICODE_CODE)["input_ids"], skip_special_tokens=True) == UNICODE_CODE
    )
    assert (loaded.bos_token, loaded.eos_token, loaded.pad_token) == ("<bos>", "<eos>", "<pad>")
    assert loaded.padding_side == "left"
