"""From audio to timed segments: 30 s windows, the encoder once per window, one decoding method per run.

Long audio is walked as openai/whisper does: decode a window with timestamps, cut it into segments at
timestamp pairs, and move the window to the last complete segment's end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .audio import SAMPLE_RATE
from .engine.decoder import Session
from .engine.speculative import DecodeTask, greedy_decode
from .engine.stats import DecodeStats
from .errors import SpecvoiceError
from .methods import SAMPLE_LEN, MethodOptions, build_drafter, same_vocabulary
from .models.loader import WhisperModel
from .whisper.decoder import WhisperDecoder
from .whisper.features import FRAMES_PER_SECOND, HOP, WINDOW_SAMPLES, log_mel
from .whisper.rules import WhisperRules
from .whisper.tokenizer import LANGUAGES

TIME_PER_TIMESTAMP = 0.02
FRAMES_PER_TIMESTAMP = 2


@dataclass
class Segment:
    start: float
    end: float
    text: str
    tokens: list[int]


@dataclass
class Transcript:
    text: str
    segments: list[Segment]
    language: str | None
    duration: float
    stats: DecodeStats
    encoder_seconds: float = 0.0
    decoder_seconds: float = 0.0
    tokens: list[int] = field(default_factory=list)  # every decoded token, windows concatenated


class Transcriber:
    def __init__(self, target: WhisperModel, draft: WhisperModel | None, options: MethodOptions,
                 language: str | None = None, task: str = "transcribe", timestamps: bool | None = None,
                 approximate_draft: bool = True):
        self.target = target
        self.draft = draft
        self.options = options
        self.language = language
        self.task = task
        self.timestamps = timestamps
        self.target_decoder = WhisperDecoder(target)
        self.draft_decoder = WhisperDecoder(draft, approximate=approximate_draft) if draft is not None else None
        self.shared_vocabulary = draft is not None and same_vocabulary(target, draft)
        if task not in ("transcribe", "translate"):
            raise SpecvoiceError(f"unknown task {task!r}: use transcribe or translate")
        target.tokenizer.prompt(language, task, False)  # rejects impossible language/task combinations early

    def _detect_language(self) -> str:
        tokenizer = self.target.tokenizer
        logits = Session(self.target_decoder).feed([tokenizer.sot])[-1]
        languages = LANGUAGES[: tokenizer.translate - tokenizer.sot - 1]  # the tokens this model has
        return languages[int(torch.argmax(logits[[tokenizer.language_token(code) for code in languages]]))]

    def _decode_window(self, window: np.ndarray, frames: int, timestamps: bool, language: str | None,
                       stats: DecodeStats, timing: dict) -> tuple[list[int], str | None]:
        began = time.perf_counter()
        features = log_mel(window, self.target.model.config.num_mel_bins)
        self.target_decoder.encode(features)
        if self.draft_decoder is not None:
            self.draft_decoder.encode(features if self.draft.model.config.num_mel_bins == features.shape[1]
                                      else log_mel(window, self.draft.model.config.num_mel_bins), frames)
        timing["encoder"] += time.perf_counter() - began
        began = time.perf_counter()
        if language is None and self.target.tokenizer.multilingual:
            with torch.inference_mode():
                language = self._detect_language()
        tokenizer = self.target.tokenizer
        rules = WhisperRules(tokenizer, self.target.suppress_tokens, self.target.begin_suppress_tokens, timestamps)
        task = DecodeTask(tokenizer.prompt(language, self.task, timestamps), rules, tokenizer.eot, SAMPLE_LEN)
        drafter = build_drafter(self.options, self.target, self.draft, self.draft_decoder, language, self.task,
                                timestamps, self.shared_vocabulary, audio_seconds=frames / FRAMES_PER_SECOND)
        tokens = greedy_decode(self.target_decoder, task, drafter, stats)
        timing["decoder"] += time.perf_counter() - began
        return tokens, language

    def transcribe(self, audio: np.ndarray, progress: Callable[[float], None] | None = None) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        timestamps = self.timestamps if self.timestamps is not None else duration > 30.0
        stats, timing = DecodeStats(), {"encoder": 0.0, "decoder": 0.0}
        tokenizer = self.target.tokenizer
        language = self.language
        segments: list[Segment] = []
        all_tokens: list[int] = []
        total_frames = len(audio) // HOP
        seek = 0
        while seek < total_frames:
            window = audio[seek * HOP: seek * HOP + WINDOW_SAMPLES]
            window_frames = min(WINDOW_SAMPLES // HOP, total_frames - seek)
            tokens, language = self._decode_window(window, window_frames, timestamps, language, stats, timing)
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
