"""Whisper behind the streaming policy: each update decodes the whole buffer with timestamps through the
transcribe pipeline's window decoder, so every method (and the free draft) gives exactly `ar`'s tokens.

Whisper sometimes ends a decode (end-of-text) after a segment with seconds of the buffer's speech left
undecoded. LocalAgreement takes each hypothesis as the whole buffer's and replaces the tentative words by
its own, so such a decode would drop the words after its end (and at the end of input, lose them). As
offline Whisper's seek loop moves its window to the last segment end, the rest of the buffer is then decoded
again from there, prompted with the tokens decoded so far, and the update's hypothesis is the decodes joined.
"""

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
# A decode whose last segment closes more than this before the end of the buffer's speech is continued from
# there: a second holds two or three words, which an early end would drop from the hypothesis. The speech
# ends where the VAD's trailing silence begins (with no VAD, at the buffer's end): continuations on that
# silence made Whisper write " you" (leopard_diarization_test), and an utterance's last decode carries up to
# 0.5 s plus a step of it. Less than this past the last segment end is within Whisper's end timestamps'
# error (they fell up to ~0.3 s before the last word's end on that clip) and the VAD's frames.
CONTINUE_IF_LEFT = 1.0  # seconds
MAX_CONTINUATIONS = 3  # per update: a decode that keeps stopping early must not loop


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

    def recognize(self, audio: np.ndarray, prompt: list[int], silence: float = 0.0) -> Hypothesis:
        """`silence`: seconds at the buffer's end that hold no speech (the VAD's judgement)."""
        stats, timing = DecodeStats(), {"encoder": 0.0, "decoder": 0.0}
        language = self.language if self._language_settled else None
        tokens, language = self._decode(audio, prompt, language, stats, timing)
        if self.tokenizer.multilingual and not self._language_settled:
            self.language = language
            self._language_settled = len(audio) >= LANGUAGE_SETTLES_AFTER * SAMPLE_RATE
        tokens = self._continued(audio, len(audio) / SAMPLE_RATE - silence, prompt, tokens, language, stats,
                                 timing)
        self.previous = tokens
        for counter in fields(DecodeStats):
            setattr(self.stats, counter.name, getattr(self.stats, counter.name) + getattr(stats, counter.name))
        words, ends = timed_words(self.tokenizer, tokens, len(audio) / SAMPLE_RATE)
        return Hypothesis(words, ends, tokens, stats.target_passes, timing["encoder"], timing["decoder"])

    def spell(self, audio: np.ndarray, prompt: list[int]) -> Hypothesis:
        """The buffer decoded once as `transcribe` decodes a clip of up to 30 s (no timestamps): the text whose
        punctuation and capitals the committed words take when they leave the buffer (the timestamped decodes
        punctuate otherwise: "Americans ask not" for offline "Americans, ask not")."""
        stats, timing = DecodeStats(), {"encoder": 0.0, "decoder": 0.0}
        language = self.language if self._language_settled else None
        tokens, _ = self._decode(audio, prompt, language, stats, timing, timestamps=False)
        words, _ = timed_words(self.tokenizer, tokens, len(audio) / SAMPLE_RATE)
        return Hypothesis(words, [], tokens, stats.target_passes, timing["encoder"], timing["decoder"])

    def _decode(self, audio: np.ndarray, prompt: list[int], language: str | None, stats: DecodeStats,
                timing: dict, timestamps: bool = True) -> tuple[list[int], str | None]:
        # The previous hypothesis is timed from the buffer start: for a continuation, whose clock starts later
        # (or a decode without timestamps), only its text is found by the lookup, which is what matters.
        drafts = [self.previous] if self.previous_draft and self.previous else None
        return self.transcriber.decode_window(audio, len(audio) // HOP, timestamps, language, stats, timing,
                                              previous=prompt, free_drafts=drafts)

    def _continued(self, audio: np.ndarray, speech_seconds: float, prompt: list[int], tokens: list[int],
                   language: str | None, stats: DecodeStats, timing: dict) -> list[int]:
        """The buffer's tokens, timestamps from its start: `tokens` (a decode of all of it), continued from
        where it ended early before the speech's end (`speech_seconds` into the buffer), as long as
        continuations yield text and end early again."""
        joined: list[int] = []
        history = list(prompt)  # what openai-whisper's next window is prompted with: everything decoded so far
        start = 0  # timestamp units: where the audio of `tokens` begins in the buffer
        for _ in range(MAX_CONTINUATIONS):
            end = self._early_end(tokens, speech_seconds - start * TIME_PER_TIMESTAMP)
            if end is None:
                break
            rest = start + round(end.time / TIME_PER_TIMESTAMP)
            more, _ = self._decode(audio[round(rest * TIME_PER_TIMESTAMP * SAMPLE_RATE):],
                                   history + tokens[: end.tokens], language, stats, timing)
            if not any(t < self.tokenizer.eot for t in more):
                break  # nothing more was heard
            joined += self._shifted(tokens[: end.tokens], start)
            history += tokens[: end.tokens]
            tokens, start = more, rest
        return joined + self._shifted(tokens, start)

    def _early_end(self, tokens: list[int], seconds: float) -> SegmentEnd | None:
        """The decode's last segment end when the decode stopped there more than CONTINUE_IF_LEFT before the
        end of the speech, `seconds` into its audio (an end at 0 would not advance: no continuation)."""
        _, ends = timed_words(self.tokenizer, tokens, seconds)
        if not ends or any(t < self.tokenizer.eot for t in tokens[ends[-1].tokens:]):
            return None  # no closed segment, or text after the last one: it went on to the end
        end = ends[-1]
        return end if 0 < end.time < seconds - CONTINUE_IF_LEFT else None

    def _shifted(self, tokens: list[int], units: int) -> list[int]:
        """Timestamps moved `units` later: from a continuation's clock to the buffer's."""
        begin = self.tokenizer.timestamp_begin
        return [t + units if t >= begin else t for t in tokens]

    def cut(self, end: SegmentEnd) -> None:
        """The buffer lost its audio before `end`: keep the draft's tokens after it, timestamps moved back."""
        begin = self.tokenizer.timestamp_begin
        shift = round(end.time / TIME_PER_TIMESTAMP)
        self.previous = [t - shift if t >= begin else t for t in self.previous[end.tokens:]
                         if t < begin or t - shift >= begin]

    def reset(self) -> None:
        self.previous = []
