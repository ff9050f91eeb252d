"""Cache compaction: an accepted tree branch's key/value rows moved into chain order, every layer, one launch."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _move(keys_ptr, values_ptr, source_ptr, destination_ptr, count, head_dim, plane, slot,
          BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """One program per (layer, head) plane of the cache moves `count` rows of both keys and values."""
    base = tl.program_id(0).to(tl.int64) * plane
    rows, dims = tl.arange(0, BLOCK_M), tl.arange(0, BLOCK_D)
    row_ok = rows < count
    mask = row_ok[:, None] & (dims < head_dim)[None, :]
    source = tl.load(source_ptr + rows, mask=row_ok, other=0)
    destination = tl.load(destination_ptr + rows, mask=row_ok, other=0)
    k = tl.load(keys_ptr + base + source[:, None] * slot + dims[None, :], mask=mask)
    v = tl.load(values_ptr + base + source[:, None] * slot + dims[None, :], mask=mask)
    # Sources and destinations may overlap (a branch shifts down onto itself): all reads land before any write.
    tl.debug_barrier()
    tl.store(keys_ptr + base + destination[:, None] * slot + dims[None, :], k, mask=mask)
    tl.store(values_ptr + base + destination[:, None] * slot + dims[None, :], v, mask=mask)


def move_slots(keys: torch.Tensor, values: torch.Tensor, source: torch.Tensor, destination: torch.Tensor) -> None:
    """keys[..., destination, :] = keys[..., source, :] (same for values) for caches [..., slots, head_dim]:
    the gather completes before the scatter, as PyTorch's indexed copy does."""
    if keys.shape != values.shape or not (keys.is_contiguous() and values.is_contiguous()):
        raise ValueError("keys and values must be contiguous caches of one shape")
    count = len(source)
    if count == 0:
        return
    slots, head_dim = keys.shape[-2:]
    planes = keys.numel() // (slots * head_dim)
    _move[(planes,)](keys, values, source.contiguous(), destination.contiguous(), count, head_dim,
                     slots * head_dim, head_dim, BLOCK_M=max(16, triton.next_power_of_2(count)),
                     BLOCK_D=max(16, triton.next_power_of_2(head_dim)))
