"""The masked-denoiser path of --method dllm, on tiny bidirectional models built here."""

from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st

from specvoice.engine.denoise import masked_denoise
from specvoice.engine.stats import DecodeStats

VOCAB, MASK, STOP = 24, 23, 22


class TinyBidirectional(torch.nn.Module):
    """A random transformer encoder over tokens: every position sees every other (no causal mask)."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(VOCAB, 32)
        self.positions = torch.nn.Parameter(torch.randn(64, 32))
        layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(32, VOCAB)
        self.eval()

    @torch.no_grad()
    def forward(self, tokens):
        x = self.embed(tokens) + self.positions[: len(tokens)]
        return self.head(self.encoder(x.unsqueeze(0)))[0] * 4.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 5), length=st.integers(1, 20), threshold=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
       margin=st.integers(0, 4), data=st.data())
def test_every_mask_is_filled_and_confident_prior_kept(seed, length, threshold, margin, data):
    prior = data.draw(st.lists(st.integers(0, STOP - 1), min_size=length, max_size=length))
    confidence = data.draw(st.lists(st.floats(0, 1), min_size=length, max_size=length))
    stats = DecodeStats()
    out = masked_denoise(TinyBidirectional(seed), prior, confidence, MASK, STOP, threshold=threshold,
                         margin=margin, stats=stats)
    masks = sum(c < 0.9 for c in confidence) + margin
    assert MASK not in out
    assert stats.target_passes <= max(masks, 0)
    assert stats.accepted >= stats.target_passes  # at least one commit per round
    if STOP in out:
        assert out.index(STOP) == len(out) - 1  # nothing survives after the end
    kept = [i for i, c in enumerate(confidence) if c >= 0.9 and i < len(out)]
    assert all(out[i] == prior[i] for i in kept)
    if threshold == 0.0 and masks:
        assert stats.target_passes == 1


def test_oracle_denoiser_recovers_text_and_prunes_after_stop():
    answer = [3, 7, 7, 1, STOP]

    def oracle(tokens):
        logits = torch.full((len(tokens), VOCAB), -10.0)
        for i in range(len(tokens)):
            logits[i, answer[i] if i < len(answer) else STOP] = 10.0
        return logits

    out = masked_denoise(oracle, [0] * 3, [0.0] * 3, MASK, STOP, margin=6)
    assert out == answer


def test_one_commit_per_round_when_unsure():
    flat = lambda tokens: torch.zeros(len(tokens), VOCAB)  # noqa: E731 - a denoiser that is never sure
    stats = DecodeStats()
    out = masked_denoise(flat, [1, 2, 3], [0.0, 0.0, 0.0], MASK, STOP, margin=0, stats=stats)
    assert len(out) == 3 and stats.target_passes == 3 and stats.accepted == 3


def test_max_rounds_commits_the_rest():
    flat = lambda tokens: torch.zeros(len(tokens), VOCAB)  # noqa: E731
    stats = DecodeStats()
    masked_denoise(flat, [1, 2, 3, 4], [0.0] * 4, MASK, STOP, margin=0, max_rounds=2, stats=stats)
    assert stats.target_passes == 2
