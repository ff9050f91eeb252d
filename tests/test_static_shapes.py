"""Bucketed static shapes (kernels/graphs.py), the shapes CUDA graphs are captured at, checked on the CPU.

The capture itself needs a GPU; everything it replays (bucketing, padding, the widened mask, the spare
slots) runs here eagerly, through the whole decoding loop.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from conftest import TOKENS, bundle, draft_policy, features, perturbed
from specvoice.engine import ops
from specvoice.engine.decoder import chain_visibility
from specvoice.engine.ops import TorchOps
from specvoice.engine.tree import TokenTree
from specvoice.whisper.decoder import WhisperDecoder
from specvoice_kernels.graphs import BUCKETS, StaticShapeDecoder, bucket, pad
from specvoice.options import DecodingOptions
from test_dllm import corrupt, refine
from test_engine_identity import TARGETS, decode, policies


@settings(deadline=None)
@given(rows=st.integers(0, 300))
def test_bucket_is_the_smallest_that_holds_the_rows(rows):
    size = bucket(rows)
    if rows > max(BUCKETS):
        assert size is None
    else:
        assert size in BUCKETS and size >= rows
        assert all(b < rows for b in BUCKETS if b < size)


@settings(max_examples=50, deadline=None)
@given(stem=st.integers(1, 4), prefix=st.integers(0, 20),
       sequences=st.lists(st.lists(st.integers(0, 5), max_size=4), max_size=4))
def test_padding_rows_see_only_themselves_and_real_rows_keep_their_mask(stem, prefix, sequences):
    tree = TokenTree.build(list(range(10, 10 + stem)), sequences, max_nodes=30)
    n, max_slots = len(tree), 64
    visible = tree.visibility(prefix, torch.device("cpu"))
    slots = torch.arange(prefix, prefix + n)
    size = bucket(n)
    tokens, positions, padded_slots, wide = pad(torch.tensor(tree.tokens), torch.tensor(tree.depths) + prefix,
                                                slots, visible, size, max_slots)
    assert len(tokens) == len(positions) == len(padded_slots) == size and wide.shape == (size, max_slots)
    assert torch.equal(wide[:n, : prefix + n], visible) and not wide[:n, prefix + n:].any()
    assert padded_slots[n:].tolist() == list(range(prefix + n, prefix + size))
    for row in range(n, size):
        assert wide[row].nonzero().flatten().tolist() == [padded_slots[row].item()]


def test_a_padded_forward_gives_the_unpadded_logits():
    decoder = WhisperDecoder(bundle(TARGETS[0]))
    decoder.encode(features(3))
    tokens = torch.tensor([TOKENS.sot, TOKENS.no_timestamps, 5, 6, 7])
    slots = torch.arange(5)
    plain = decoder.forward(tokens, slots, slots, chain_visibility(0, 5, decoder.device))
    padded = StaticShapeDecoder(decoder, capture=False)
    again = padded.forward(tokens, slots, slots, chain_visibility(0, 5, decoder.device))
    assert padded.padded_passes == 1 and again.shape == plain.shape
    torch.testing.assert_close(again, plain, atol=1e-5, rtol=1e-5)


class PaddedOps(TorchOps):
    """The PyTorch operators, with every decoding loop running at bucketed shapes (uncaptured)."""

    def __init__(self):
        self.wrapped: list[StaticShapeDecoder] = []

    def static_shapes(self, decoder):
        self.wrapped.append(StaticShapeDecoder(decoder, capture=False))
        return self.wrapped[-1]


def decode_by(method: str, target, policy, timestamps: bool, max_new: int, audio_seed: int, edits: int) -> list[int]:
    """One method's tokens on a tiny target: spec's chain and specasr's tree drafted by a noisy copy of the
    target, dllm refining a corrupted greedy transcript (falling back on the drawn tree policy)."""
    if method == "ar":
        return decode(target, None, None, timestamps, 0.3, max_new, audio_seed)[0]
    if method == "dllm":
        greedy, _ = decode(target, None, None, timestamps, 0.3, max_new, audio_seed)
        prior = corrupt(greedy, edits, audio_seed)
        return refine(target, prior, timestamps, 0.3, max_new, audio_seed, fallback_policy=policy, weak_rounds=2)[0]
    if method == "spec":
        policy = DecodingOptions("spec").draft_policy()
    noisy = bundle(perturbed(target.model, audio_seed, 0.3))
    return decode(target, noisy, policy, timestamps, 0.3, max_new, audio_seed)[0]


@pytest.mark.parametrize("method", ["ar", "spec", "specasr", "dllm"])
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2), policy=policies, timestamps=st.booleans(), audio_seed=st.integers(0, 100),
       max_new=st.integers(1, 24), edits=st.integers(0, 6))
def test_every_method_equals_ar_at_bucketed_shapes(method, seed, policy, timestamps, audio_seed, max_new, edits):
    """Every method (specasr and dllm's fallback under any drawn tree policy), each decoding loop at bucketed
    shapes, gives the tokens of plain ar at the model's own shapes."""
    target = bundle(TARGETS[seed])
    expected, _ = decode(target, None, None, timestamps, 0.3, max_new, audio_seed)
    with ops.using(PaddedOps()) as padded:
        got = decode_by(method, target, policy, timestamps, max_new, audio_seed, edits)
    assert got == expected
    assert padded.wrapped and padded.wrapped[-1].padded_passes > 0  # the target's loop (built last) ran padded
