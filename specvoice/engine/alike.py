"""Attention of several query rows over one shared set of keys in one call, each row getting the bits it gets alone.

An exact decoder must give a verified row exactly what a one-row pass gives the same token. Attending row by row
does that, but each row then streams every key and value of the window again: Whisper base's cross-attention reads
37 MB a row, so a verify pass of 8 rows cost ~3 single passes on the CPU. A BLAS product gives each row of a
batched call the bits the same row gets alone when the call's shapes keep the same kernel: on the CPUs measured,
`q @ keys^T` with the keys' memory transposed ([heads, d, frames]) and `weights @ values` with the values as they
are, for any 2 to 16 rows, but not for a single row (a matrix-vector kernel sums in another order). So every call
here has at least two rows (a lone row is paired with a copy of itself), and rows go in blocks that a self-check
on this machine found alike; where it finds them not alike, a block is one row, which is exact by construction
(every call the same two-row shape) and costs what attending row by row did.
"""

from __future__ import annotations

import functools

import torch

MOST_ROWS = 16  # the largest block the self-check tries (a larger verify pass goes in several blocks)
# Frames per block when keys are transposed in memory: one copy of a window's whole [frames, d] slab walks its
# source with a large stride (1.41 ms a layer of base); 256 frames at a time stay in cache (0.42 ms).
TRANSPOSE_BLOCK = 256


def transposed_keys(keys: torch.Tensor) -> torch.Tensor:
    """keys [heads, frames, d] as a view whose memory is [heads, d, frames]: the layout attend_alike reads."""
    heads, frames, head_dim = keys.shape
    memory = keys.new_empty(heads, head_dim, frames)
    for start in range(0, frames, TRANSPOSE_BLOCK):
        memory[:, :, start: start + TRANSPOSE_BLOCK].copy_(keys[:, start: start + TRANSPOSE_BLOCK].transpose(1, 2))
    return memory.transpose(1, 2)


def attend_alike(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """softmax(q @ keys^T) @ values for query rows q [heads, n, d] (already scaled) over every frame of keys and
    values [heads, frames, d] (keys from transposed_keys): each row bit for bit what it gets alone."""
    if q.shape[1] == 1:  # ar's every pass: no self-check needed
        return _attend_block(q, keys, values)
    block = _block(*keys.shape, keys.dtype, torch.get_num_threads())
    rows = [_attend_block(q[:, i: i + block], keys, values) for i in range(0, q.shape[1], block)]
    return rows[0] if len(rows) == 1 else torch.cat(rows, dim=1)


def _attend_block(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    n = q.shape[1]
    q = q.contiguous() if n > 1 else torch.cat([q, q], dim=1)  # contiguous either way: one layout, one kernel
    return (torch.softmax(q @ keys.transpose(1, 2), dim=-1) @ values)[:, :n]


@functools.cache
def _block(heads: int, frames: int, head_dim: int, dtype: torch.dtype, threads: int) -> int:
    """The most rows per call (up to MOST_ROWS) for which every row came out alike on random data of these
    shapes, in every call size from 2 rows up; 1 where a size did not. About 10 ms, once per shape."""
    generator = torch.Generator().manual_seed(0)
    keys, values, q = (torch.randn(shape, generator=generator).to(dtype)
                       for shape in ((heads, frames, head_dim), (heads, frames, head_dim),
                                     (MOST_ROWS, heads, head_dim)))
    keys, q = transposed_keys(keys), q.transpose(0, 1) * head_dim ** -0.5  # a decoder's view of its queries
    alone = [_attend_block(q[:, i: i + 1], keys, values) for i in range(MOST_ROWS)]
    for n in range(2, MOST_ROWS + 1):
        together = _attend_block(q[:, :n], keys, values)
        if not all(torch.equal(together[:, i: i + 1], alone[i]) for i in range(n)):
            return n - 1
    return MOST_ROWS
