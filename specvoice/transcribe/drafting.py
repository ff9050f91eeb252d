"""How each --method drafts for the shared engine: what holds for every window is decided once per
draft/target pair, and each window gets a fresh drafter (drafters keep per-window state)."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch

from ..engine.bridge import BridgedDrafter
from ..engine.decoder import LogitRules
from ..engine.drafter import Drafter, ModelDrafter
from ..engine.lookup import LookupDrafter
from ..engine.prior import PriorRefiner
from ..engine.speculative import greedy_decode
from ..engine.stats import DecodeStats
from ..options import DecodingOptions
from ..whisper.decoder import WhisperDecoder
from ..whisper.model import WhisperModel, recent
from ..whisper.rules import WhisperRules
from ..whisper.shallow import OwnVocabulary, ShallowDecoder, ShallowDraft
from ..whisper.tokenizer import token_translator

PRIOR_TOKENS_PER_SECOND = 8  # fast read speech is ~4 words (~6 tokens with punctuation) a second


def _unchanged(tokens: list[int]) -> list[int]:
    return tokens


class Drafting:
    """A draft model working for a target under one method."""

    def __init__(self, options: DecodingOptions, target: WhisperModel, draft: WhisperModel | ShallowDraft,
                 target_decoder: WhisperDecoder, approximate: bool = True):
        """approximate=True: int8 weights on the CPU and an encoder that sees only the audio (see WhisperDecoder).
        A shallow draft reads what `target_decoder` computed of each window, and speaks as the target does."""
        self.options = options
        self.target_stop = target.tokenizer.eot
        if isinstance(draft, ShallowDraft):
            self.draft, self.decoder = target, ShallowDecoder(draft, target_decoder)
            self.picks_from = OwnVocabulary(self.decoder)  # the drafter picks among the draft's own tokens
        else:
            self.draft, self.decoder = draft, WhisperDecoder(draft, approximate=approximate)
            self.picks_from = self.decoder
        self._rules_over: dict[LogitRules, LogitRules] = {}  # a setup's rules for the columns picked from
        # Comparing two ~51k-entry vocabularies costs ~0.1 s: decided here, once per pair.
        self.shared = self.draft is target or target.shares_vocabulary(self.draft)
        self.to_target = _unchanged if self.shared else token_translator(draft.tokenizer, target.tokenizer)
        self.to_draft = _unchanged if self.shared else token_translator(target.tokenizer, draft.tokenizer)

    def encode(self, features: torch.Tensor, frames: int) -> None:
        """The draft's view of a window: its features (`frames` mel frames of real audio)."""
        self.decoder.encode(features, frames)

    def _rules(self, rules: WhisperRules) -> LogitRules:
        """`rules` (a decoding setup's, made once per setup) for the columns the drafter picks from."""
        columns = getattr(self.picks_from, "columns", None)
        if columns is None:
            return rules
        if rules not in self._rules_over:
            self._rules_over[rules] = rules.over(columns)
        return self._rules_over[rules]

    def can_draft(self, language: str | None) -> bool:
        """Whether the draft model can speak for the target in `language` under this task (an English-only
        draft with another vocabulary cannot draft other languages or translations)."""
        return self.shared or self.draft.tokenizer.multilingual or (language == "en" and self.options.task != "translate")

    def drafter(self, language: str | None, timestamps: bool, audio_seconds: float,
                previous: Sequence[int] = (), earlier: Sequence[int] = (), sampling: bool = False) -> Drafter:
        """A fresh drafter for one window in `language`, conditioned like the target on `previous` (target tokens).
        sampling=True: for a sampled (temperature fallback) try, where only greedy guesses make sense (no prior).

        Where the draft model cannot speak the language (see can_draft) the window is drafted by prompt lookup
        in `earlier` (the target's tokens of earlier windows) and in the window itself: slower, never wrong.
        """
        if not self.can_draft(language):
            return LookupDrafter([list(earlier)] if earlier else [])
        tokenizer, task = self.draft.tokenizer, self.options.task
        seen = recent(previous, self.options.draft_previous)
        setup = self.draft.decode_task(language if tokenizer.multilingual else None, task, timestamps,
                                       self.to_draft(seen))
        model_drafter = ModelDrafter(self.picks_from, self._rules(setup.rules), setup.stop_token,
                                     self.options.draft_policy())
        # a draft prompted otherwise than the target (its own vocabulary, less earlier text) drafts through a bridge
        own_prompt = not self.shared or len(seen) < len(previous)
        drafter = BridgedDrafter(model_drafter, setup.prompt, self.to_draft, self.to_target) if own_prompt \
            else model_drafter
        if self.options.method != "dllm" or sampling:
            return drafter
        # A prior longer than any plausible speech rate is a hallucination loop: stop it early.
        prior_setup = replace(setup, max_new_tokens=min(setup.max_new_tokens,
                                                        int(PRIOR_TOKENS_PER_SECOND * audio_seconds) + 8))

        def draft_transcript(stats: DecodeStats) -> list[int]:
            """The prior: the draft's own greedy transcript, in the target's tokens."""
            prior_stats = DecodeStats()
            tokens = greedy_decode(self.decoder, prior_setup, stats=prior_stats).tokens
            stats.draft_passes += prior_stats.target_passes
            return self.to_target(tokens)

        return PriorRefiner(draft_transcript, self.target_stop, fallback=drafter)
