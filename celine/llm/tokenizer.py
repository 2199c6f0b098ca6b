"""Byte-level BPE tokenizers trained with the `tokenizers` library.

Byte-level means every string round-trips (decode(encode(x)) == x), unicode included:
the 256 byte symbols are always in the vocabulary. For arithmetic corpora digits are
split one per token (`individual_digits`), so "31" is "3","1" and addition is learnable
digit by digit rather than one memorised token per number.

The result is a `transformers.PreTrainedTokenizerFast` with <bos>/<eos>/<pad>; it
prepends <bos> when encoding with special tokens, pads on the left (what batched
generation needs), and is saved with `save_pretrained` so that
`AutoTokenizer.from_pretrained(dir)` loads it offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
SPECIAL_TOKENS = (PAD, BOS, EOS)  # ids 0, 1, 2


@dataclass(frozen=True)
class TokenizerSettings:
    vocab_size: int = 4096
    individual_digits: bool = False
    min_frequency: int = 2
    # Train the BPE on at most this many characters of the training documents (in their
    # split order); bounded so tokenizer training stays a few seconds on a big corpus.
    sample_chars: int | None = 4_000_000

    def to_dict(self) -> dict:
        return asdict(self)


def default_settings(corpus: str, vocab_size: int) -> TokenizerSettings:
    """Per-corpus defaults: arithmetic corpora split digits and need few merges (their
    text is a handful of template words), so their vocabulary is capped at 512."""
    if corpus in ("reasoning", "gsm8k", "math"):
        return TokenizerSettings(vocab_size=min(vocab_size, 512), individual_digits=True)
    return TokenizerSettings(vocab_size=vocab_size)


def _sample(texts: Iterable[str], max_chars: int | None) -> list[str]:
    out, total = [], 0
    for t in texts:
        if max_chars is not None and total >= max_chars:
            break
        out.append(t)
        total += len(t)
    return out


def train_tokenizer(texts: Iterable[str], settings: TokenizerSettings = TokenizerSettings()):
    """Train a byte-level BPE on `texts`; returns a PreTrainedTokenizerFast.

    Deterministic for the same texts and settings: the BPE trainer breaks frequency ties
    by pair order, and we feed the texts in a fixed order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if settings.individual_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=settings.vocab_size,
        min_frequency=settings.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_sample(texts, settings.sample_chars), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # Prepend <bos> like Llama tokenizers do; generation prompts then start the way every
    # training document starts.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return wrap(tok)


def wrap(tok):
    """Wrap a `tokenizers.Tokenizer` as a PreTrainedTokenizerFast with our conventions."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        # Keep decode exact: no "clean up" of spaces before punctuation.
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 30,
    )


def encode_documents(tokenizer, docs: list[str], batch: int = 1024) -> list[list[int]]:
    """Token ids of each document: <bos> text <eos> (the training document format)."""
    eos = tokenizer.eos_token_id
    out: list[list[int]] = []
    for i in range(0, len(docs), batch):
        enc = tokenizer(docs[i : i + batch], add_special_tokens=True)["input_ids"]
        out.extend(ids + [eos] for ids in enc)
    return out


def save_tokenizer(tokenizer, path) -> None:
    tokenizer.save_pretrained(str(path))


def load_tokenizer(path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tok.padding_side = "left"
    return tok
