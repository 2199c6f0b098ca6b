"""The n-gram pool of lookahead decoding: first token -> at most G continuations of N-1 tokens."""

from __future__ import annotations

from collections import OrderedDict


class NGramPool:
    """Keys are single tokens; each holds an LRU-ordered set of (N-1)-token tuples.

    A duplicate insert moves the tuple to the most-recent end; a full key evicts its oldest
    tuple, so every key keeps the `capacity` most recently seen continuations.
    """

    def __init__(self, capacity: int, ngram: int) -> None:
        self.capacity = capacity
        self.tuple_len = ngram - 1
        self._map: dict[int, OrderedDict[tuple[int, ...], None]] = {}

    def add(self, key: int, continuation: tuple[int, ...]) -> None:
        if self.capacity <= 0:
            return
        if len(continuation) != self.tuple_len:
            raise ValueError(f"continuation {continuation} must have {self.tuple_len} tokens")
        entries = self._map.setdefault(key, OrderedDict())
        if continuation in entries:
            entries.move_to_end(continuation)
            return
        entries[continuation] = None
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def add_sequence(self, tokens: list[int]) -> None:
        """Every N-gram of `tokens` (prompt-as-reference: the paper's 'prompt pool')."""
        n = self.tuple_len + 1
        for i in range(len(tokens) - n + 1):
            self.add(tokens[i], tuple(tokens[i + 1 : i + n]))

    def candidates(self, key: int) -> list[tuple[int, ...]]:
        """The continuations stored for `key`, oldest first."""
        return list(self._map.get(key, ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self._map.values())

    def __contains__(self, key: int) -> bool:
        return key in self._map
