"""Whisper's logit rules (after openai/whisper's LogitFilters), applied to many positions at once.

Each row of logits comes with the tokens sampled before it, so the same rules serve one greedy step,
a verified draft chain and every node of a token tree, and speculative output stays identical to greedy.
"""

from __future__ import annotations

import torch

from .tokenizer import WhisperTokenizer

NEG_INF = float("-inf")


class SuppressTokens:
    def __init__(self, tokens: tuple[int, ...]):
        self.tokens = list(tokens)

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> None:
        if self.tokens:
            logits[:, self.tokens] = NEG_INF


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

    def __init__(self, tokenizer: WhisperTokenizer, max_initial_timestamp_index: int = 50):
        self.eot = tokenizer.eot
        self.no_timestamps = tokenizer.no_timestamps
        self.begin = tokenizer.timestamp_begin
        self.max_initial = max_initial_timestamp_index

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> None:
        logits[:, self.no_timestamps] = NEG_INF
        for row, seq in enumerate(histories):
            last_was_timestamp = len(seq) >= 1 and seq[-1] >= self.begin
            penultimate_was_timestamp = len(seq) < 2 or seq[-2] >= self.begin
            if last_was_timestamp:
                if penultimate_was_timestamp:
                    logits[row, self.begin:] = NEG_INF
                else:
                    logits[row, : self.eot] = NEG_INF
            last_timestamp = next((t for t in reversed(seq) if t >= self.begin), None)
            if last_timestamp is not None:
                # A segment may not end where it starts, else decoding could loop forever.
                floor = last_timestamp if last_was_timestamp and not penultimate_was_timestamp else last_timestamp + 1
                logits[row, self.begin: floor] = NEG_INF
            if not seq:
                logits[row, : self.begin] = NEG_INF
                logits[row, self.begin + self.max_initial + 1:] = NEG_INF
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        timestamp_mass = logprobs[:, self.begin:].logsumexp(dim=-1)
        best_text = logprobs[:, : self.begin].max(dim=-1).values
        logits[:, : self.begin].masked_fill_((timestamp_mass > best_text).unsqueeze(1), NEG_INF)


class WhisperRules:
    """All rules for one model and one decoding setup; callable as engine logit rules."""

    def __init__(self, tokenizer: WhisperTokenizer, suppress: tuple[int, ...], begin_suppress: tuple[int, ...],
                 timestamps: bool):
        self.filters = [SuppressAtBegin(begin_suppress), SuppressTokens(suppress)]
        if timestamps:
            self.filters.append(TimestampRules(tokenizer))

    def __call__(self, logits: torch.Tensor, histories: list[list[int]]) -> torch.Tensor:
        for apply in self.filters:
            apply(logits, histories)
        return logits
