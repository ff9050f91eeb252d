"""Verification on the device: greedy acceptance of a token tree, and speculative sampling's accept/reject.

Both end in one small buffer the host reads once per pass, instead of one read per decision.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_VOCAB = 1024


@triton.jit
def _row_argmax(logits_ptr, best_ptr, logprob_ptr, vocab, row_stride, BLOCK_V: tl.constexpr):
    """Per row of ruled logits (forbidden tokens at -inf): the first argmax and its log-probability."""
    row = tl.program_id(0)
    columns = tl.arange(0, BLOCK_V)
    top = tl.full([BLOCK_V], float("-inf"), tl.float32)
    at = tl.zeros([BLOCK_V], tl.int32)
    for start in range(0, vocab, BLOCK_V):
        x = tl.load(logits_ptr + row * row_stride + start + columns, mask=start + columns < vocab,
                    other=float("-inf")).to(tl.float32)
        better = x > top  # strict: an earlier block keeps a tie, as argmax keeps the first index
        at = tl.where(better, start + columns, at)
        top = tl.where(better, x, top)
    best = tl.max(top, axis=0)
    index = tl.min(tl.where(top == best, at, vocab), axis=0)
    total = tl.zeros([BLOCK_V], tl.float32)
    for start in range(0, vocab, BLOCK_V):
        x = tl.load(logits_ptr + row * row_stride + start + columns, mask=start + columns < vocab,
                    other=float("-inf")).to(tl.float32)
        total += tl.exp(x - best)
    tl.store(best_ptr + row, index)
    tl.store(logprob_ptr + row, -tl.log(tl.sum(total, axis=0)))  # best - logsumexp


@triton.jit
def _walk(best_ptr, logprob_ptr, parents_ptr, tokens_ptr, out_ptr, logprob_out_ptr, n, stop,
          BLOCK_N: tl.constexpr):
    """Follow the target's argmax from the root (row 0) while a child carries it; out = [count, nodes...]."""
    nodes = tl.arange(0, BLOCK_N)
    ok = nodes < n
    best = tl.load(best_ptr + nodes, mask=ok, other=-1)
    logprob = tl.load(logprob_ptr + nodes, mask=ok, other=0.0)
    parents = tl.load(parents_ptr + nodes, mask=ok, other=-2)
    tokens = tl.load(tokens_ptr + nodes, mask=ok, other=-1)
    node = 0
    count = 0
    going = 1
    path_logprob = tl.sum(tl.where(nodes == 0, logprob, 0.0), axis=0)
    for _ in range(BLOCK_N):
        predicted = tl.sum(tl.where(nodes == node, best, 0), axis=0)
        child = tl.max(tl.where((parents == node) & (tokens == predicted) & ok, nodes, -1), axis=0)
        step = going * (child >= 0).to(tl.int32) * (predicted != stop).to(tl.int32)
        tl.store(out_ptr + 1 + count, child, mask=step > 0)
        path_logprob += tl.sum(tl.where((nodes == child) & (step > 0), logprob, 0.0), axis=0)
        count += step
        node = tl.where(step > 0, child, node)
        going = step
    tl.store(out_ptr, count)
    tl.store(logprob_out_ptr, path_logprob)


def greedy_verify(ruled: torch.Tensor, parents: torch.Tensor, tokens: torch.Tensor, stop: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy acceptance of a token tree from ruled logits [n, vocab] (row 0: the root).

    parents[i] is row i's parent row (-1 for the root), tokens[i] its token. Returns, on the device,
    int32 [1 + n + n]: the number of accepted nodes, the accepted rows (padded), every row's argmax;
    and float32 [1]: the summed log-probability of the emitted tokens (accepted ones plus the last argmax).
    """
    n, vocab = ruled.shape
    ruled = ruled if ruled.stride(-1) == 1 else ruled.contiguous()
    out = torch.full((1 + 2 * n,), -1, dtype=torch.int32, device=ruled.device)
    best = out[1 + n:]
    row_logprob = torch.empty(n, dtype=torch.float32, device=ruled.device)
    path_logprob = torch.empty(1, dtype=torch.float32, device=ruled.device)
    _row_argmax[(n,)](ruled, best, row_logprob, vocab, ruled.stride(0), BLOCK_V=BLOCK_VOCAB)
    _walk[(1,)](best, row_logprob, parents.to(torch.int32), tokens.to(torch.int32), out, path_logprob, n, stop,
                BLOCK_N=max(16, triton.next_power_of_2(n)))
    return out, path_logprob


@triton.jit
def _speculative(target_ptr, draft_ptr, drafted_ptr, uniform_ptr, noise_ptr, out_ptr, count, vocab, beta,
                 target_row, draft_row, BLOCK_K: tl.constexpr, BLOCK_V: tl.constexpr):
    """out = [drafts accepted, the target's own token]; see engine/ops.py TorchOps.speculative_verify."""
    drafts = tl.arange(0, BLOCK_K)
    ok = drafts < count
    drafted = tl.load(drafted_ptr + drafts, mask=ok, other=0)
    p = tl.load(target_ptr + drafts * target_row + drafted, mask=ok, other=1.0)
    q = tl.load(draft_ptr + drafts * draft_row + drafted, mask=ok, other=1.0)
    uniform = tl.load(uniform_ptr + drafts, mask=ok, other=2.0)
    accept = uniform < tl.minimum(p / q, 1.0) + beta
    accepted = tl.min(tl.where(ok & ~accept, drafts, count), axis=0)
    # After the last draft the draft row is zero: the residual is p itself (the bonus token).
    draft_columns = tl.where(accepted < count, vocab, 0)
    columns = tl.arange(0, BLOCK_V)
    mass = tl.zeros([BLOCK_V], tl.float32)
    top_residual = tl.full([BLOCK_V], -1.0, tl.float32)
    at_residual = tl.zeros([BLOCK_V], tl.int32)
    top_target = tl.full([BLOCK_V], -1.0, tl.float32)
    at_target = tl.zeros([BLOCK_V], tl.int32)
    for start in range(0, vocab, BLOCK_V):
        index = start + columns
        inside = index < vocab
        p_row = tl.load(target_ptr + accepted * target_row + index, mask=inside, other=0.0)
        q_row = tl.load(draft_ptr + accepted * draft_row + index, mask=index < draft_columns, other=0.0)
        noise = tl.load(noise_ptr + index, mask=inside, other=1.0)
        residual = tl.maximum(p_row - q_row, 0.0)
        mass += residual
        score = tl.where(inside, residual / noise, -1.0)
        better = score > top_residual
        at_residual = tl.where(better, index, at_residual)
        top_residual = tl.where(better, score, top_residual)
        score = tl.where(inside, p_row / noise, -1.0)
        better = score > top_target
        at_target = tl.where(better, index, at_target)
        top_target = tl.where(better, score, top_target)
    # Rounding can leave no residual mass when q is within float error of p; p is then the distribution.
    use_residual = tl.sum(mass, axis=0) > 0
    top = tl.where(use_residual, top_residual, top_target)
    at = tl.where(use_residual, at_residual, at_target)
    best = tl.max(top, axis=0)
    tl.store(out_ptr, accepted)
    tl.store(out_ptr + 1, tl.min(tl.where(top == best, at, vocab), axis=0))


def speculative_verify(target_probs: torch.Tensor, draft_probs: torch.Tensor, drafted: torch.Tensor,
                       uniform: torch.Tensor, noise: torch.Tensor, beta: float) -> torch.Tensor:
    """[accepted drafts, next token] (int32, on the device) from target_probs [k + 1, vocab], draft_probs
    [k, vocab], the drafted tokens [k], uniform draws [k] and exponential noise [vocab] (clamped above 0)."""
    count, vocab = len(drafted), target_probs.shape[1]
    target_probs, draft_probs = target_probs.contiguous(), draft_probs.contiguous()
    out = torch.empty(2, dtype=torch.int32, device=target_probs.device)
    _speculative[(1,)](target_probs, draft_probs if count else target_probs, drafted.contiguous(), uniform,
                       noise.contiguous(), out, count, vocab, beta, target_probs.stride(0),
                       draft_probs.stride(0) if count else 0,
                       BLOCK_K=max(16, triton.next_power_of_2(count)), BLOCK_V=BLOCK_VOCAB)
    return out
