"""Whisper behind the streaming policy: each update decodes the whole buffer with timestamps through the
transcribe pipeline's window decoder, so every method (and the free draft) gives exactly `ar`'s tokens."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from ..audio import SAMPLE_RATE
from ..engine.stats import DecodeStats
from ..transcribe import Transcriber
from ..whisper.features import HOP
from .hypothesis import TIME_PER_TIMESTAMP, Hypothesis, SegmentEnd, timed_words

# Whisper's language detection on a second of audio is a guess (the start of "We must find..." came out as
# Japanese and stayed so): the language is detected again at every update until the buffer holds this much.
LANGUAGE_SETTLES_AFTER = 5.0  # seconds


class WhisperRecognizer:
    def __init__(self, transcriber: Transcriber, previous_draft: bool = True):
        """previous_draft: propose the previous update's hypothesis as a free draft (it costs no model pass)."""
        self.transcriber = transcriber
        self.tokenizer = transcriber.target.tokenizer
        self.previous_draft = previous_draft
        self.language = transcriber.options.language
        self._language_settled = self.language is not None
        self.previous: list[int] = []  # the last hypothesis' tokens, its timestamps relative to the buffer start
        self.stats = DecodeStats()

    def recognize(self, audio: np.ndarray, prompt: list[int]) -> Hypothesis:
        stats, timing = DecodeStats(), {"encoder": 0.0, "decoder": 0.0}
        drafts = [self.previous] if self.previous_draft and self.previous else None
        language = self.language if self._language_settled else None
        tokens, language = self.transcriber.decode_window(audio, len(audio) // HOP, True, language, stats,
                                                          timing, previous=prompt, free_drafts=drafts)
        if self.tokenizer.multilingual and not self._language_settled:
            self.language = language
            self._language_settled = len(audio) >= LANGUAGE_SETTLES_AFTER * SAMPLE_RATE
        self.previous = tokens
        for counter in fields(DecodeStats):
            setattr(self.stats, counter.name, getattr(self.stats, counter.name) + getattr(stats, counter.name))
        words, ends = timed_words(self.tokenizer, tokens, len(audio) / SAMPLE_RATE)
        return Hypothesis(words, ends, tokens, stats.target_passes, timing["encoder"], timing["decoder"])

    def cut(self, end: SegmentEnd) -> None:
        """The buffer lost its audio before `end`: keep the draft's tokens after it, timestamps moved back."""
        begin = self.tokenizer.timestamp_begin
        shift = round(end.time / TIME_PER_TIMESTAMP)
        self.previous = [t - shift if t >= begin else t for t in self.previous[end.tokens:]
                         if t < begin or t - shift >= begin]

    def reset(self) -> None:
        self.previous = []
