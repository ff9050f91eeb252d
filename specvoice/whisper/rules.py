"""Whisper's logit rules (after openai/whisper's LogitFilters), applied to many positions at once.

Each row of logits comes with the tokens sampled before it, so the same rules serve one greedy step,
a verified draft chain and every node of a token tree, and speculative output stays identical to greedy.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .tokenizer import WhisperTokenizer

NEG_INF = float("-inf")


class SuppressTokens:
    def __init__(self, tokens: tuple[int, ...]):
        self.tokens = torch.tensor(tokens, dtype=torch.long)  # built once: a list index costs ~10 us a pass

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> None:
        if len(self.tokens):
            logits.index_fill_(1, self.tokens.to(logits.device), NEG_INF)


class SuppressAtBegin:
    """No blank or end-of-text as the first sampled token."""

    def __init__(self, tokens: tuple[int, ...]):
        self.tokens = list(tokens)

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> None:
        rows = [i for i, history in enumerate(histories) if not history]
        if rows and self.tokens:
            logits[torch.tensor(rows).unsqueeze(1), torch.tensor(self.tokens).unsqueeze(0)] = NEG_INF


class TimestampRules:
    """Timestamps come in pairs, never decrease, start the output, and win when their total mass does."""

    def __init__(self, tokenizer: WhisperTokenizer, max_initial_timestamp_index: int = 50,
                 column: Callable[[int], int] = int):
        """column: a token's column in the logits (the histories hold token ids)."""
        self.begin = tokenizer.timestamp_begin
        self.eot_column, self.no_timestamps_column = column(tokenizer.eot), column(tokenizer.no_timestamps)
        self.begin_column = column(self.begin)
        self.max_initial = max_initial_timestamp_index

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> None:
        begin = self.begin
        logits[:, self.no_timestamps_column] = NEG_INF
        closed, unclosed, empty, floors = [], [], [], []  # per row: what its own history allows next
        for row, seq in enumerate(histories):
            last_was_timestamp = len(seq) >= 1 and seq[-1] >= begin
            penultimate_was_timestamp = len(seq) < 2 or seq[-2] >= begin
            if last_was_timestamp:
                (closed if penultimate_was_timestamp else unclosed).append(row)
            last_timestamp = next((t for t in reversed(seq) if t >= begin), None)
            # A segment may not end where it starts, else decoding could loop forever.
            ending = last_was_timestamp and not penultimate_was_timestamp
            floors.append(0 if last_timestamp is None else last_timestamp - begin + (0 if ending else 1))
            if not seq:
                empty.append(row)
        stamps = logits[:, self.begin_column:]  # a view: writes go to logits
        if closed:  # a pair just ended: text (or the end) next
            stamps[closed] = NEG_INF
        if unclosed:  # a segment is open: its closing timestamp (or the end) next
            logits[unclosed, : self.eot_column] = NEG_INF
        floor = torch.tensor(floors, device=logits.device).unsqueeze(1)
        stamps.masked_fill_(torch.arange(stamps.shape[1], device=logits.device) < floor, NEG_INF)
        text = logits[:, : self.begin_column]
        if empty:  # the output starts with a timestamp, an early one
            text[empty] = NEG_INF
            stamps[empty, self.max_initial + 1:] = NEG_INF
        # Timestamps win when their total probability beats the likeliest text token (log-softmax's shared
        # normaliser cancels out of the comparison).
        timestamp_mass = stamps.float().logsumexp(dim=-1)
        best_text = text.float().amax(dim=-1)  # amax: ~4x faster than max(dim) on the CPU
        # Adding -inf or 0 a row: the same logits as masked_fill_ with the row's flag broadcast, which took 37 us a
        # row (51,865 wide) against 10 us, at every decoding step of every row (one thread, Xeon).
        text.add_(torch.where(timestamp_mass > best_text, NEG_INF, 0.0).unsqueeze(1))


class WhisperRules:
    """All rules for one model and one decoding setup; callable as engine logit rules."""

    def __init__(self, tokenizer: WhisperTokenizer, suppress: tuple[int, ...], begin_suppress: tuple[int, ...],
                 timestamps: bool, columns: Sequence[int] | None = None):
        """columns: the token ids of the logits' columns where they are a draft's own vocabulary (sorted, every id
        from end-of-text on among them, so the special and timestamp tokens keep their order at the end); default
        every token, column i being token i."""
        self.setup = tokenizer, suppress, begin_suppress, timestamps
        where = None if columns is None else _places(tokenizer, columns)
        column = int if where is None else where.__getitem__

        def placed(tokens: tuple[int, ...]) -> tuple[int, ...]:
            return tokens if where is None else tuple(where[t] for t in tokens if t in where)

        self.filters = [SuppressAtBegin(placed(begin_suppress)), SuppressTokens(placed(suppress))]
        if timestamps:
            self.filters.append(TimestampRules(tokenizer, column=column))

    def over(self, columns: Sequence[int]) -> "WhisperRules":
        """The same rules for logits over the tokens `columns` only."""
        return WhisperRules(*self.setup, columns)

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> torch.Tensor:
        for apply in self.filters:
            apply(logits, histories)
        return logits


def _places(tokenizer: WhisperTokenizer, columns: Sequence[int]) -> dict[int, int]:
    """Each token's column among `columns`, checked to end with every id from end-of-text on."""
    tail = list(range(tokenizer.eot, columns[-1] + 1))
    if list(columns[len(columns) - len(tail):]) != tail:
        raise ValueError("a draft vocabulary must end with every token id from end-of-text on, in order")
    return {token: column for column, token in enumerate(columns)}
