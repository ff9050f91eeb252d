"""Whisper's timestamp rules (whisper/rules.py) give the logits openai-whisper's ApplyTimestampRules gives, row by
row, for any logits and any decoded history: every method's timestamps rest on them. Over a draft's own vocabulary
the rules give the columns the full rules give a draft's full row."""

from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st

from conftest import TOKENS, VOCAB
from specvoice.whisper.rules import TimestampRules, WhisperRules

MAX_INITIAL = 3


def openai_timestamp_rules(logits: torch.Tensor, histories: list[list[int]]) -> torch.Tensor:
    """openai/whisper decoding.py's ApplyTimestampRules.apply, as it is written there (with its log_softmax)."""
    logits = logits.clone()
    begin, eot = TOKENS.timestamp_begin, TOKENS.eot
    logits[:, TOKENS.no_timestamps] = -float("inf")
    for k, seq in enumerate(histories):
        last_was_timestamp = len(seq) >= 1 and seq[-1] >= begin
        penultimate_was_timestamp = len(seq) < 2 or seq[-2] >= begin
        if last_was_timestamp:
            if penultimate_was_timestamp:
                logits[k, begin:] = -float("inf")
            else:
                logits[k, :eot] = -float("inf")
        timestamps = [t for t in seq if t >= begin]
        if timestamps:
            last = timestamps[-1] if last_was_timestamp and not penultimate_was_timestamp else timestamps[-1] + 1
            logits[k, begin: last] = -float("inf")
        if not seq:
            logits[k, :begin] = -float("inf")
            logits[k, begin + MAX_INITIAL + 1:] = -float("inf")
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    for k in range(len(histories)):
        if logprobs[k, begin:].logsumexp(dim=-1) > logprobs[k, :begin].max():
            logits[k, :begin] = -float("inf")
    return logits


histories = st.lists(st.sampled_from([5, 17, 40, TOKENS.eot - 1, *range(TOKENS.timestamp_begin, VOCAB)]),
                     max_size=6)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(histories, min_size=1, max_size=5), seed=st.integers(0, 2 ** 31 - 1),
       timestamp_boost=st.floats(-4.0, 6.0))
def test_timestamp_rules_give_openai_whispers_logits(rows, seed, timestamp_boost):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(rows), VOCAB, generator=generator) * 3
    logits[:, TOKENS.timestamp_begin:] += timestamp_boost  # timestamps winning on mass, or not
    expected = openai_timestamp_rules(logits, rows)
    got = logits.clone()
    TimestampRules(TOKENS, MAX_INITIAL)(got, rows)
    assert torch.equal(got, expected)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(histories, min_size=1, max_size=5), seed=st.integers(0, 2 ** 31 - 1),
       timestamp_boost=st.floats(-4.0, 6.0), kept=st.sets(st.integers(0, TOKENS.eot - 1)), timestamps=st.booleans())
def test_the_rules_over_a_draft_vocabulary_give_the_full_rules_columns(rows, seed, timestamp_boost, kept, timestamps):
    """A shallow draft's full row is -1e4 outside its vocabulary (whisper/shallow.py): the rules over its vocabulary
    alone must give what the full rules give those columns, suppressed tokens inside and outside it alike."""
    columns = sorted(kept) + list(range(TOKENS.eot, VOCAB))
    generator = torch.Generator().manual_seed(seed)
    full = torch.full((len(rows), VOCAB), -1e4)
    full[:, columns] = torch.randn(len(rows), len(columns), generator=generator) * 3
    full[:, TOKENS.timestamp_begin:] += timestamp_boost
    rules = WhisperRules(TOKENS, (3, 7, 40, TOKENS.eot - 1), (TOKENS.eot, 5), timestamps)
    expected = rules(full.clone(), rows)[:, columns]
    assert torch.equal(rules.over(columns)(full[:, columns].clone(), rows), expected)
