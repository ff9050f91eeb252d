"""Drafts that cost no model pass: look the tokens just decoded up in token sequences already known.

Speech decoding re-derives text it has seen before: a live transcriber re-decodes a buffer that grew by a
second (its previous hypothesis is nearly the answer), long audio repeats names and phrases from earlier
windows, and a window repeats itself (prompt lookup decoding). The longest suffix of the decoded tokens
that occurs in a reference is followed there, and what comes next is proposed. Wrong guesses cost a few
tree nodes in a pass the target makes anyway, never correctness.
"""

from __future__ import annotations

from .drafter import Drafter
from .stats import DecodeStats


class LookupDrafter(Drafter):
    def __init__(self, references: list[list[int]], anchored: bool = False, longest_match: int = 4,
                 candidates: int = 2):
        """`references`: token sequences to look in (the decoded tokens themselves are always searched too).
        anchored=True: each reference is an earlier hypothesis of the same audio, so before anything matches
        (at the very start) it is proposed from its beginning."""
        self.references = references
        self.anchored = anchored
        self.longest_match = longest_match
        self.candidates = candidates

    def propose(self, sequence: list[int], sampled_from: int, budget: int, stats: DecodeStats) -> list[list[int]]:
        decoded = sequence[sampled_from:]
        if budget <= 0:
            return []
        if not decoded and self.anchored:
            return [reference[:budget] for reference in self.references if reference][: self.candidates]
        proposals: list[list[int]] = []
        for n in range(min(self.longest_match, len(decoded)), 0, -1):
            needle = decoded[-n:]
            # The decoded tokens are a reference too, but for matches before their own last n tokens.
            places = [(haystack, _occurrences(haystack, needle, len(haystack))) for haystack in self.references]
            places.append((decoded, _occurrences(decoded, needle, len(decoded) - n)))
            for haystack, starts in places:
                for start in starts:
                    continuation = haystack[start + n: start + n + budget]
                    if continuation and continuation not in proposals:
                        proposals.append(continuation)
                        if len(proposals) == self.candidates:
                            return proposals
            if proposals:  # a longer match is better evidence than any shorter one
                return proposals
        return proposals


def _occurrences(haystack: list[int], needle: list[int], before: int) -> list[int]:
    """Start positions (< `before`) of `needle` in `haystack`, the latest first (recent text is the likeliest
    repeat)."""
    n, first = len(needle), needle[0]
    return [i for i in range(min(before, len(haystack) - n + 1) - 1, -1, -1)
            if haystack[i] == first and haystack[i: i + n] == needle]


class MergedDrafter(Drafter):
    """Several drafters' candidates verified in one tree, e.g. a free lookup draft beside a model draft."""

    def __init__(self, *drafters: Drafter, enough: int | None = None):
        """enough: once the drafters asked so far offer a candidate this long, the later (costlier) ones are
        not asked this round (a free draft that knows the next words makes the model's draft passes waste)."""
        self.drafters = drafters
        self.enough = enough

    def propose(self, sequence: list[int], sampled_from: int, budget: int, stats: DecodeStats) -> list[list[int]]:
        proposals: list[list[int]] = []
        for drafter in self.drafters:
            if self.enough and any(len(c) >= min(self.enough, budget) for c in proposals):
                break
            proposals += [c for c in drafter.propose(sequence, sampled_from, budget, stats) if c not in proposals]
        return proposals

    def observe(self, tree, predictions, accepted) -> None:
        for drafter in self.drafters:
            drafter.observe(tree, predictions, accepted)
