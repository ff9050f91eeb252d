"""Draft proposals: a small model guesses what the target will say next.

One class covers vanilla and SpecASR drafting, switched by DraftPolicy:
- adaptive length: keep drafting while the draft's confidence stays above a threshold (max 24 tokens);
- recycling: after the target rejects a draft, the rejected tail is offered back to the draft as a guess
  and checked in one parallel pass (speculation for the draft itself), instead of regenerated token by
  token; after a mismatch it is realigned a few tokens later;
- two-pass sparse tree: pass 1 is the greedy chain with per-token confidence; pass 2 adds the draft's
  next-best tokens (plus one greedy continuation each, all in one draft pass) at the least confident
  positions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import ops
from .decoder import CachedDecoder, LogitRules, Session, common_prefix
from .stats import DecodeStats
from .tree import TokenTree


class Drafter:
    """Proposes what the target may say next; this base proposes nothing (plain autoregressive decoding)."""

    def propose(self, sequence: list[int], sampled_from: int, budget: int, stats: DecodeStats) -> list[list[int]]:
        """Candidate continuations of `sequence` (each at most `budget` tokens); the first is the main chain.

        `sequence[sampled_from:]` are the tokens decoded so far (the rest is the prompt).
        """
        return []

    def observe(self, tree: TokenTree, predictions: list[int], accepted: list[int]) -> None:
        """What the target predicted below every node from the root on (`predictions[i]` for node root + i),
        and which nodes it accepted. Only drafters that learn from it (Jacobi-style refinement) look."""


NoDrafter = Drafter


@dataclass(frozen=True)
class DraftPolicy:
    """How a model drafts; the values users choose come from specvoice.options, the one place of defaults."""

    max_tokens: int  # the longest chain
    confidence: float  # the chain ends at the first token whose probability is below this
    recycle: bool  # offer a rejected tail back to the draft as a guess
    tree_positions: int  # pass 2 branches at this many of the least confident positions
    tree_alternatives: int  # next-best tokens added at each such position
    tree_below: float  # only positions less confident than this branch
    branch_successor: bool  # one extra draft pass gives every alternative its greedy successor
    realign_window: int  # how far ahead in the old tail a freshly drafted token may re-align
    adaptive_cap: bool  # after a round that accepted a tokens, draft at most 2a + 4 next time


@dataclass
class _Step:
    token: int
    confidence: float
    alternatives: list[int]
    alternative_probs: list[float]


class ModelDrafter(Drafter):
    """Drafts with a model that shares the target's vocabulary (see bridge.py for other pairs).

    A decoder with `columns` (token ids) gives rows over those tokens only (a draft's own small vocabulary):
    `rules` are then the rules for those columns, and what it picks is mapped back to token ids."""

    def __init__(self, decoder: CachedDecoder, rules: LogitRules, stop_token: int, policy: DraftPolicy):
        self.columns: list[int] | None = getattr(decoder, "columns", None)
        self.session = Session(ops.active().static_shapes(decoder))
        self.rules = rules
        self.stop_token = stop_token
        self.policy = policy
        self._previous: list[int] = []  # last proposal: sequence + main chain
        self._previous_start = 0  # where that proposal's chain began
        self._tail: list[int] = []

    def propose(self, sequence, sampled_from, budget, stats):
        budget = min(budget, self.policy.max_tokens)
        if self.policy.adaptive_cap and self._previous:
            # A confident draft that keeps being wrong (a hallucination loop) should stop costing passes.
            accepted = common_prefix(self._previous, sequence) - self._previous_start
            budget = min(budget, 2 * max(accepted, 0) + 4)
        if budget <= 0:
            return []
        if self.policy.recycle:
            self._tail = self._rejected_tail(sequence)
        keep = self.session.rewind_to(sequence)
        history = sequence[sampled_from:]
        steps = self._draft_chain(sequence[keep:], history, budget, stats)
        chain = [step.token for step in steps]
        # Slots now hold sequence + chain[:-1] (guessed tokens past that are stale and forgotten).
        self.session.truncate(len(sequence) + len(chain) - 1)
        self._previous, self._previous_start = sequence + chain, len(sequence)
        return [chain] + self._branches(sequence, history, steps, budget, stats)

    def _rejected_tail(self, sequence: list[int]) -> list[int]:
        """The old draft past the token the target replaced, if the target diverged inside it."""
        diverged = common_prefix(self._previous, sequence)
        if diverged < len(sequence) and diverged < len(self._previous):
            return self._previous[diverged + 1:]
        return []

    def _guess_after(self, token: int | None) -> list[int]:
        """Tokens the old tail says follow `token` (None: the tail as it stands, right after a rejection)."""
        tail, self._tail = self._tail, []
        if token is None:
            return tail
        window = tail[: self.policy.realign_window]
        return tail[window.index(token) + 1:] if token in window else []

    def _pick(self, row: torch.Tensor, history: list[int]) -> _Step:
        logits = self.rules(row.unsqueeze(0).clone(), [history])[0]
        if not self.policy.tree_positions:  # no branches, no alternatives: a top-k over the vocabulary is slow
            column = ops.row_argmax(logits[None])[0]
            # softmax, not exp(logit - logsumexp): the same probability, but a shallow draft's row is mostly very
            # negative logits, whose underflowing exps took logsumexp ~290 us a token (softmax: 27 us; Xeon)
            return _Step(self._token(column), float(torch.softmax(logits, dim=-1)[column]), [], [])
        top = torch.softmax(logits, dim=-1).topk(1 + self.policy.tree_alternatives)
        probs, tokens = top.values.tolist(), [self._token(column) for column in top.indices.tolist()]
        return _Step(tokens[0], probs[0], tokens[1:], probs[1:])

    def _token(self, column: int) -> int:
        return column if self.columns is None else self.columns[column]

    def _done(self, step: _Step, drafted: int, budget: int) -> bool:
        return step.token == self.stop_token or drafted >= budget or step.confidence < self.policy.confidence

    def _draft_chain(self, unfed: list[int], history: list[int], budget: int, stats: DecodeStats) -> list[_Step]:
        steps: list[_Step] = []
        guess = self._guess_after(None)[: budget] if self.policy.recycle else []
        feed = unfed + guess
        while True:
            rows = self.session.feed(feed)
            stats.draft_passes += 1
            first_guess_row = len(feed) - len(guess) - 1
            # Walk the guess while the draft agrees with it: those tokens cost no sequential pass.
            for k in range(len(guess) + 1):
                step = self._pick(rows[first_guess_row + k], history + [s.token for s in steps])
                steps.append(step)
                if self._done(step, len(steps), budget):
                    return steps
                if k == len(guess) or step.token != guess[k]:
                    break
            if k < len(guess):
                self._tail = guess[k:]
                self.session.truncate(len(self.session) - (len(guess) - k))
            guess = self._guess_after(steps[-1].token)[: budget - len(steps)] if self.policy.recycle else []
            feed = [steps[-1].token] + guess

    def _branches(self, sequence: list[int], history: list[int], steps: list[_Step], budget: int,
                  stats: DecodeStats) -> list[list[int]]:
        """Pass 2: next-best tokens at the least confident chain positions, each with one greedy successor
        where the budget leaves room for it."""
        if not self.policy.tree_positions:
            return []
        weak = sorted((s.confidence, j) for j, s in enumerate(steps) if s.confidence < self.policy.tree_below)
        chain = [s.token for s in steps]
        branches = [chain[:j] + [alt] for _, j in weak[: self.policy.tree_positions]
                    for alt, p in zip(steps[j].alternatives, steps[j].alternative_probs)
                    if p > 0.0 and alt != self.stop_token]
        if not self.policy.branch_successor:
            return branches
        decoder = self.session.decoder
        base = len(self.session)  # first free slot: alternatives go past the cached chain
        fits = decoder.max_slots - base  # near the cache's end, only so many successor rows have a slot
        full = [b for i, b in enumerate(branches) if len(b) >= budget or i >= fits]
        branches = [b for i, b in enumerate(branches) if len(b) < budget and i < fits]
        if not branches:
            return full
        device = decoder.device
        n = len(branches)
        depths = [len(b) - 1 for b in branches]
        positions = torch.tensor([len(sequence) + d for d in depths], device=device)
        visible = torch.zeros(n, base + n, dtype=torch.bool)
        for i, d in enumerate(depths):
            visible[i, : len(sequence) + d] = True
            visible[i, base + i] = True
        rows = decoder.forward(torch.tensor([b[-1] for b in branches], device=device), positions,
                               torch.arange(base, base + n, device=device), visible.to(device))
        stats.draft_passes += 1
        return [b + [self._pick(rows[i], history + b).token] for i, b in enumerate(branches)] + full
