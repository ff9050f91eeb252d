"""Attention of a few query rows (a chain or a token tree) over a long key/value span, flash-decoding style.

The span is cut into fixed splits of SPLIT slots, one program per (head, block of queries, split); each
keeps a running max and sum of exponentials (online softmax), and a second kernel merges the splits with
their log-sum-exp weights. Splits sit at fixed slot offsets and a fully masked block adds exactly zero, so
a row's result does not depend on how many other rows or stale slots came along: a verified tree row gets
the same arithmetic as a single-token pass over the same slots. Serves the self-attention over the static
KV cache (with the tree's visibility mask) and the cross-attention over the encoder frames (no mask).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_QUERIES = 16  # tl.dot needs at least 16 rows; padding rows are masked out
BLOCK_SLOTS = 64
SPLIT = 256  # slots per program: 1,500 encoder frames make 6 splits, a 448-slot cache 2


@triton.jit
def _partial(q_ptr, k_ptr, v_ptr, visible_ptr, out_ptr, max_ptr, sum_ptr,
             n, span, head_dim, scale,
             q_head, q_row, k_head, k_slot, v_head, v_slot, visible_row,
             out_head, out_split, out_row, stat_head, stat_split,
             MASKED: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
             SPLIT_SLOTS: tl.constexpr):
    head, block, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rows = block * BLOCK_N + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, BLOCK_D)
    row_ok, dim_ok = rows < n, dims < head_dim
    q = tl.load(q_ptr + head * q_head + rows[:, None] * q_row + dims[None, :],
                mask=row_ok[:, None] & dim_ok[None, :], other=0.0).to(tl.float32) * scale
    best = tl.full([BLOCK_N], float("-inf"), tl.float32)
    total = tl.zeros([BLOCK_N], tl.float32)
    acc = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    first = split * SPLIT_SLOTS
    for start in range(first, tl.minimum(first + SPLIT_SLOTS, span), BLOCK_S):  # blocks past the span: skipped
        slots = start + tl.arange(0, BLOCK_S)
        slot_ok = slots < span
        kv_mask = slot_ok[:, None] & dim_ok[None, :]
        k = tl.load(k_ptr + head * k_head + slots[:, None] * k_slot + dims[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_ptr + head * v_head + slots[:, None] * v_slot + dims[None, :], mask=kv_mask, other=0.0)
        scores = tl.dot(q, tl.trans(k.to(tl.float32)), input_precision="ieee")
        seen = row_ok[:, None] & slot_ok[None, :]
        if MASKED:
            seen = seen & (tl.load(visible_ptr + rows[:, None] * visible_row + slots[None, :], mask=seen,
                                   other=0) != 0)
        scores = tl.where(seen, scores, float("-inf"))
        new_best = tl.maximum(best, tl.max(scores, axis=1))
        # A row that has seen nothing yet keeps max -inf; shift by 0 then so exp gives 0, not nan.
        shift = tl.where(new_best == float("-inf"), 0.0, new_best)
        weights = tl.exp(scores - shift[:, None])
        rescale = tl.exp(best - shift)
        total = total * rescale + tl.sum(weights, axis=1)
        acc = acc * rescale[:, None] + tl.dot(weights, v.to(tl.float32), input_precision="ieee")
        best = new_best
    tl.store(out_ptr + head * out_head + split * out_split + rows[:, None] * out_row + dims[None, :], acc,
             mask=row_ok[:, None] & dim_ok[None, :])
    stat = head * stat_head + split * stat_split + rows
    tl.store(max_ptr + stat, best, mask=row_ok)
    tl.store(sum_ptr + stat, total, mask=row_ok)


@triton.jit
def _combine(part_ptr, max_ptr, sum_ptr, out_ptr, n, splits, head_dim,
             part_head, part_split, part_row, stat_head, stat_split, out_head, out_row,
             BLOCK_SPLITS: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """One program per (head, block of query rows) merges the splits' partial results by their max."""
    head, block = tl.program_id(0), tl.program_id(1)
    parts = tl.arange(0, BLOCK_SPLITS)[:, None]
    rows = block * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
    stat_ok = (parts < splits) & (rows < n)
    stat = head * stat_head + parts * stat_split + rows
    best = tl.load(max_ptr + stat, mask=stat_ok, other=float("-inf"))  # [splits, rows]
    total = tl.load(sum_ptr + stat, mask=stat_ok, other=0.0)
    top = tl.max(best, axis=0)
    # A split a row saw nothing of weighs 0 (its max is -inf); so do padding rows.
    weight = tl.where(best == float("-inf"), 0.0, tl.exp(best - tl.where(top == float("-inf"), 0.0, top)[None, :]))
    dims = tl.arange(0, BLOCK_D)[None, None, :]
    acc = tl.load(part_ptr + head * part_head + parts[:, :, None] * part_split + rows[:, :, None] * part_row + dims,
                  mask=stat_ok[:, :, None] & (dims < head_dim), other=0.0)  # [splits, rows, d]
    out_rows = block * BLOCK_N + tl.arange(0, BLOCK_N)[:, None]
    norm = tl.where(out_rows < n, tl.sum(total * weight, axis=0)[:, None], 1.0)  # padding rows: no 0 / 0
    out = tl.sum(acc * weight[:, :, None], axis=0) / norm
    tl.store(out_ptr + head * out_head + out_rows * out_row + tl.arange(0, BLOCK_D)[None, :], out,
             mask=(out_rows < n) & (tl.arange(0, BLOCK_D)[None, :] < head_dim))


def _unit_last_stride(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, visible: torch.Tensor | None,
              scale: float = 1.0) -> torch.Tensor:
    """softmax(scale * q @ keys^T, masked by visible) @ values for q [heads, n, d], keys/values [heads, s, d],
    visible [n, s] (True: row sees slot) or None (every slot); [heads, n, d] in q's dtype.

    Rows that see no slot come out as nan, as the PyTorch twin's do.
    """
    heads, n, head_dim = q.shape
    span = keys.shape[1]
    out = torch.empty_like(q)
    if n == 0:
        return out
    splits = max(1, triton.cdiv(span, SPLIT))
    partial = torch.empty(heads, splits, n, head_dim, device=q.device, dtype=torch.float32)
    best = torch.empty(heads, splits, n, device=q.device, dtype=torch.float32)
    total = torch.empty_like(best)
    block_d = max(16, triton.next_power_of_2(head_dim))
    masked = visible is not None
    visible_u8 = visible.to(torch.uint8).contiguous() if masked else q  # any pointer: never read unmasked
    q, keys, values = _unit_last_stride(q), _unit_last_stride(keys), _unit_last_stride(values)
    _partial[(heads, triton.cdiv(n, BLOCK_QUERIES), splits)](
        q, keys, values, visible_u8, partial, best, total, n, span, head_dim, scale,
        q.stride(0), q.stride(1), keys.stride(0), keys.stride(1), values.stride(0), values.stride(1),
        visible_u8.stride(0) if masked else 0,
        partial.stride(0), partial.stride(1), partial.stride(2), best.stride(0), best.stride(1),
        MASKED=masked, BLOCK_N=BLOCK_QUERIES, BLOCK_S=BLOCK_SLOTS, BLOCK_D=block_d, SPLIT_SLOTS=SPLIT)
    _combine[(heads, triton.cdiv(n, BLOCK_QUERIES))](
        partial, best, total, out, n, splits, head_dim,
        partial.stride(0), partial.stride(1), partial.stride(2), best.stride(0), best.stride(1),
        out.stride(0), out.stride(1),
        BLOCK_SPLITS=max(2, triton.next_power_of_2(splits)), BLOCK_N=BLOCK_QUERIES, BLOCK_D=block_d)
    return out
