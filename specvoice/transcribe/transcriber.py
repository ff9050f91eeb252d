"""From audio to timed segments: 30 s windows, the encoder once per window, one decoding method per run.

Long audio is walked as openai/whisper does: decode a window with timestamps, cut it into segments at
timestamp pairs, and move the window to the last complete segment's end.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from ..engine.decoder import Session
from ..engine.drafter import NoDrafter
from ..engine.lookup import LookupDrafter, MergedDrafter
from ..engine.speculative import greedy_decode
from ..engine.stats import DecodeStats
from ..options import DecodingOptions
from ..transcript import Segment, Transcript
from ..whisper.decoder import WhisperDecoder
from ..whisper.features import FRAMES_PER_SECOND, HOP, WINDOW_SAMPLES, log_mel
from ..whisper.model import WhisperModel
from ..whisper.tokenizer import LANGUAGES
from .drafting import Drafting

TIME_PER_TIMESTAMP = 0.02
FRAMES_PER_TIMESTAMP = 2


class Transcriber:
    def __init__(self, target: WhisperModel, draft: WhisperModel | None, options: DecodingOptions,
                 approximate_draft: bool = True):
        """`draft` is required by every method but ar, and ignored by ar."""
        self.target = target
        self.options = options
        self.target_decoder = WhisperDecoder(target)
        # An English-only target refuses another language or translation here, before any audio is decoded.
        target.tokenizer.require(options.language, options.task)
        self.drafting = Drafting(options, target, draft, approximate_draft) if options.needs_draft else None

    def _detect_language(self) -> str:
        tokenizer = self.target.tokenizer
        logits = Session(self.target_decoder).feed([tokenizer.sot])[-1]
        languages = LANGUAGES[: tokenizer.translate - tokenizer.sot - 1]  # the tokens this model has
        return languages[int(torch.argmax(logits[[tokenizer.language_token(code) for code in languages]]))]

    def decode_window(self, window: np.ndarray, frames: int, timestamps: bool, language: str | None,
                      stats: DecodeStats, timing: dict, previous: Sequence[int] = (),
                      free_drafts: list[list[int]] | None = None) -> tuple[list[int], str | None]:
        """One window's tokens (and its language, detected where not given), conditioned on `previous` text
        tokens; `free_drafts` are earlier hypotheses of the same audio, proposed beside the model draft at no
        model cost (engine/lookup.py)."""
        began = time.perf_counter()
        features = log_mel(window, self.target.model.config.num_mel_bins)
        self.target_decoder.encode(features)
        if self.drafting:
            self.drafting.encode(window, features, frames)
        timing["encoder"] += time.perf_counter() - began
        began = time.perf_counter()
        if language is None and self.target.tokenizer.multilingual:
            with torch.inference_mode():
                language = self._detect_language()
        task = self.target.decode_task(language, self.options.task, timestamps, previous)
        drafter = self.drafting.drafter(language, timestamps, frames / FRAMES_PER_SECOND, previous) \
            if self.drafting else NoDrafter()
        if free_drafts:
            lookup = LookupDrafter(free_drafts, anchored=True)
            drafter = MergedDrafter(lookup, drafter) if self.drafting else lookup
        tokens = greedy_decode(self.target_decoder, task, drafter, stats).tokens
        timing["decoder"] += time.perf_counter() - began
        return tokens, language

    def transcribe(self, audio: np.ndarray, progress: Callable[[float], None] | None = None) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        timestamps = self.options.timestamps if self.options.timestamps is not None else duration > 30.0
        stats, timing = DecodeStats(), {"encoder": 0.0, "decoder": 0.0}
        tokenizer = self.target.tokenizer
        language = self.options.language
        segments: list[Segment] = []
        all_tokens: list[int] = []
        total_frames = len(audio) // HOP
        seek = 0
        while seek < total_frames:
            window = audio[seek * HOP: seek * HOP + WINDOW_SAMPLES]
            window_frames = min(WINDOW_SAMPLES // HOP, total_frames - seek)
            tokens, language = self.decode_window(window, window_frames, timestamps, language, stats, timing)
            if tokens and tokens[-1] == tokenizer.eot:
                tokens = tokens[:-1]
            all_tokens += tokens
            offset = seek / FRAMES_PER_SECOND
            new_segments, advance = self._segments(tokens, offset, window_frames, timestamps)
            segments += [s for s in new_segments if s.text.strip()]
            seek += advance
            if progress:
                progress(min(seek, total_frames) / FRAMES_PER_SECOND)
        text = "".join(s.text for s in segments).strip()
        return Transcript(text, segments, language if tokenizer.multilingual else "en", duration, stats,
                          timing["encoder"], timing["decoder"], all_tokens)

    def _segments(self, tokens: list[int], offset: float, window_frames: int,
                  timestamps: bool) -> tuple[list[Segment], int]:
        """Cut a window's tokens into segments; also returns how many frames to move the window."""
        tokenizer = self.target.tokenizer
        begin = tokenizer.timestamp_begin
        window_seconds = window_frames / FRAMES_PER_SECOND

        def segment(piece: list[int], start: float, end: float) -> Segment:
            return Segment(round(start, 3), round(end, 3), tokenizer.decode(piece), piece)

        if not timestamps:
            return [segment(tokens, offset, offset + window_seconds)], window_frames
        is_timestamp = [t >= begin for t in tokens]
        single_ending = is_timestamp[-2:] == [False, True]
        cuts = [i + 1 for i in range(len(tokens) - 1) if is_timestamp[i] and is_timestamp[i + 1]]
        if not cuts:
            stamps = [t for t in tokens if t >= begin]
            end = (stamps[-1] - begin) * TIME_PER_TIMESTAMP if stamps and stamps[-1] != begin else window_seconds
            return [segment(tokens, offset, offset + end)], window_frames
        if single_ending:
            cuts.append(len(tokens))
        result, last = [], 0
        for cut in cuts:
            piece = tokens[last:cut]
            result.append(segment(piece, offset + (piece[0] - begin) * TIME_PER_TIMESTAMP,
                                  offset + (piece[-1] - begin) * TIME_PER_TIMESTAMP))
            last = cut
        if single_ending:
            return result, window_frames
        return result, max(1, (tokens[last - 1] - begin) * FRAMES_PER_TIMESTAMP)
