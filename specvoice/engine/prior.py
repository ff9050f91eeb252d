"""dLLM-ASR-style decoding for an autoregressive target: refine a whole prior hypothesis in parallel.

The prior (a cheap model's full transcript) sets the initial sequence and its length. Each round the
target scores every remaining position in one pass; the longest agreeing prefix is committed together
with the target's own token at the first disagreement (converged tokens leave the loop; their keys and
values stay in the cache). For the next round every uncommitted position is re-proposed two ways at once,
as branches of one token tree:
- Jacobi update: position i takes the target's prediction made at position i-1 in the last round;
- prior re-alignment: the prior's remaining tokens, aligned after the committed text as a substitution,
  an insertion or a deletion (difflib alignment), so one wrong word does not shift the whole tail.
Tokens after a predicted end of text are pruned. Because the engine only ever emits the target's argmax,
this converges to exactly the greedy output, at least one token per round.

When the prior is far off (rounds keep committing almost nothing) or rounds hit their cap, decoding falls
back to a model drafter (SpecASR-style continuation) for the rest of the utterance.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Callable

from .drafter import Drafter
from .stats import DecodeStats
from .tree import TokenTree


class PriorRefiner(Drafter):
    def __init__(self, make_prior: Callable[[DecodeStats], list[int]], stop_token: int, fallback: Drafter,
                 margin: int = 8, weak_rounds: int = 2, max_rounds: int = 32, weak_commit: int = 2):
        self.make_prior = make_prior  # run once, on the first proposal, so its cost lands in the stats
        self.prior: list[int] | None = None
        self.stop_token = stop_token
        self.fallback = fallback
        self.margin = margin  # Jacobi positions allowed past the prior's length (insertions)
        self.weak_rounds = weak_rounds
        self.weak_commit = weak_commit
        self.max_rounds = max_rounds
        self.rounds = 0
        self.weak_streak = 0
        self.fell_back = False
        self._jacobi: list[int] = []

    def propose(self, sequence, sampled_from, budget, stats: DecodeStats):
        if self.fell_back:
            return self.fallback.propose(sequence, sampled_from, budget, stats)
        if self.prior is None:
            self.prior = self.make_prior(stats)
        committed = sequence[sampled_from:]
        limit = min(budget, len(self.prior) + self.margin - len(committed))
        candidates = [self._jacobi] + self._aligned_tails(committed)
        unique = []
        for candidate in candidates:
            candidate = self._prune(candidate)[: max(limit, 0)]
            if candidate and candidate not in unique:
                unique.append(candidate)
        return unique

    def _aligned_tails(self, committed: list[int]) -> list[list[int]]:
        """The prior's continuation after the committed text, under three alignments of the last token."""
        blocks = [b for b in SequenceMatcher(None, committed, self.prior, autojunk=False).get_matching_blocks() if b.size]
        if not blocks:
            return [self.prior[len(committed):]]
        last = blocks[-1]
        unmatched = len(committed) - (last.a + last.size)  # committed tokens past the last agreement
        resume = last.b + last.size + unmatched  # where the prior goes on if they were substitutions
        return [self.prior[start:] for start in (resume, resume - 1, resume + 1) if 0 <= start <= len(self.prior)]

    def _prune(self, candidate: list[int]) -> list[int]:
        return candidate[: candidate.index(self.stop_token) + 1] if self.stop_token in candidate else candidate

    def observe(self, tree: TokenTree, predictions: list[int], accepted: list[int]) -> None:
        if self.fell_back:
            self.fallback.observe(tree, predictions, accepted)
            return
        self.rounds += 1
        self.weak_streak = self.weak_streak + 1 if len(accepted) < self.weak_commit else 0
        if self.weak_streak >= self.weak_rounds or self.rounds >= self.max_rounds:
            self.fell_back = True
        self._jacobi = self._jacobi_tail(tree, predictions, accepted)

    @staticmethod
    def _jacobi_tail(tree: TokenTree, predictions: list[int], accepted: list[int]) -> list[int]:
        """Target predictions along the first rejected branch: each is its guess for the next position."""
        node = accepted[-1] if accepted else tree.root
        emitted = predictions[node - tree.root]
        rejected = [child for token, child in tree.children[node].items() if token != emitted]
        if not rejected:
            return []
        tail, node = [], min(rejected)
        while True:
            tail.append(predictions[node - tree.root])
            if not tree.children[node]:
                return tail
            node = min(tree.children[node].values())
