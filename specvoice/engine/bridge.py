"""Drafting across vocabularies: the draft works in its own tokens, the target sees its own.

The committed target tokens are translated into the draft's vocabulary, the draft proposes there, and
each candidate is translated back. The translation is whatever the model family needs (text for
Whisper); the engine only requires that it round-trips on the committed prefix most of the time.
A poor translation costs speed, never correctness: the target verifies every token.
"""

from __future__ import annotations

from typing import Callable

from .decoder import common_prefix
from .drafter import Drafter

Translate = Callable[[list[int]], list[int]]


class BridgedDrafter(Drafter):
    def __init__(self, inner: Drafter, draft_prompt: list[int], to_draft: Translate, to_target: Translate):
        self.inner = inner
        self.draft_prompt = draft_prompt
        self.to_draft = to_draft
        self.to_target = to_target

    def propose(self, sequence, sampled_from, budget, stats):
        sampled = sequence[sampled_from:]
        draft_sampled = self.to_draft(sampled)
        candidates = self.inner.propose(self.draft_prompt + draft_sampled, len(self.draft_prompt), budget, stats)
        proposals = []
        for candidate in candidates:
            translated = self.to_target(draft_sampled + candidate)
            if common_prefix(translated, sampled) == len(sampled):
                continuation = translated[len(sampled):]
            else:  # the committed text re-tokenises differently at the seam: translate the draft alone
                continuation = self.to_target(candidate)
            if continuation:
                proposals.append(continuation[:budget])
        return proposals
