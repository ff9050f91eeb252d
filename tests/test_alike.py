"""Shared-key attention in one call whose rows each get the bits they get alone (engine/alike.py)."""

from __future__ import annotations

import pytest
import torch

from specvoice.engine import alike
from specvoice.engine.ops import attention


def _inputs(heads: int, frames: int, head_dim: int, rows: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    keys = alike.transposed_keys(torch.randn(heads, frames, head_dim, generator=generator))
    values = torch.randn(heads, frames, head_dim, generator=generator)
    # as a decoder holds its queries: a head-split view of [rows, heads * head_dim]
    q = torch.randn(rows, heads, head_dim, generator=generator).transpose(0, 1) * head_dim ** -0.5
    return q, keys, values


@pytest.mark.parametrize("shape", [(8, 1500, 64), (6, 1500, 64), (4, 37, 16)])
def test_every_row_of_a_batched_call_is_bit_for_bit_the_row_alone(shape):
    """Up to 40 rows (blocks of 16 and a remainder of 8) against each row attended on its own, as ar's one-row
    passes attend; and the same numbers, to rounding, as plain softmax attention."""
    q, keys, values = _inputs(*shape, rows=40)
    together = alike.attend_alike(q, keys, values)
    for n in (2, 3, 7, 16, 17):
        assert torch.equal(alike.attend_alike(q[:, :n], keys, values), together[:, :n])
    for i in range(40):
        assert torch.equal(alike.attend_alike(q[:, i: i + 1], keys, values), together[:, i: i + 1])
    torch.testing.assert_close(together, attention(q, keys, values, None), rtol=1e-5, atol=1e-5)


def test_a_machine_whose_rows_differ_batched_gets_blocks_of_one_row(monkeypatch):
    """The self-check finds a BLAS whose rows depend on the call's size (simulated: a size-dependent offset), and
    attend_alike then computes every row in a two-row call of its own: still each row's bits alone."""
    real = alike._attend_block

    def size_dependent(q, keys, values):
        return real(q, keys, values) + q.shape[1] * 1e-7 * (q.shape[1] > 1)

    alike._block.cache_clear()
    monkeypatch.setattr(alike, "_attend_block", size_dependent)
    try:
        assert alike._block(4, 37, 16, torch.float32, 1) == 1
        monkeypatch.setattr(alike, "_attend_block", real)
        q, keys, values = _inputs(4, 37, 16, rows=5)
        together = alike.attend_alike(q, keys, values)
        assert all(torch.equal(together[:, i: i + 1], alike.attend_alike(q[:, i: i + 1], keys, values))
                   for i in range(5))
    finally:
        alike._block.cache_clear()


def test_self_check_stops_at_the_first_call_size_that_differs(monkeypatch):
    real = alike._attend_block

    def differs_from_six_rows(q, keys, values):
        return real(q, keys, values) + 1e-6 * (q.shape[1] >= 6)

    alike._block.cache_clear()
    monkeypatch.setattr(alike, "_attend_block", differs_from_six_rows)
    try:
        assert alike._block(4, 37, 16, torch.float32, 1) == 5
    finally:
        alike._block.cache_clear()


@pytest.mark.parametrize("frames", [1500, alike.TRANSPOSE_BLOCK, alike.TRANSPOSE_BLOCK + 1, 7])
def test_transposed_keys_hold_the_same_values_with_frames_innermost(frames):
    """As a decoder makes its cross keys: a head-split view of a [frames, 2 * width] projection (keys | values)."""
    projection = torch.randn(frames, 2 * 4 * 16)
    keys = projection[:, : 4 * 16].view(frames, 4, 16).transpose(0, 1)
    got = alike.transposed_keys(keys)
    assert torch.equal(got, keys)
    assert got.stride() == (16 * frames, 1, frames)  # memory [heads, d, frames]
