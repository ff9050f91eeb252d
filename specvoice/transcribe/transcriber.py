"""From audio to timed segments: 30 s windows, the encoder once per window, one decoding method per run.

Long audio is walked as openai-whisper's transcribe() does: decode a window with timestamps, cut it into
segments at timestamp pairs, move the window to the last complete segment's end, prompt the next window with
the text so far. A window that fails Whisper's quality tests (repetitive or unlikely text) is tried again at
rising temperatures, by exact speculative sampling; a window that looks silent is skipped. With VAD only the
speech is walked, in chunks cut in pauses.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from ..engine.decoder import Session
from ..engine.drafter import Drafter, NoDrafter
from ..engine.lookup import LookupDrafter, MergedDrafter
from ..engine.sampling import sample_decode
from ..engine.speculative import DecodeTask, Decoded, greedy_decode
from ..engine.stats import DecodeStats
from ..options import DecodingOptions
from ..transcript import Segment, Transcript
from ..whisper.alignment import find_alignment
from ..whisper.decoder import WhisperDecoder
from ..whisper.features import FRAMES_PER_SECOND, HOP, WINDOW_FRAMES, WINDOW_SAMPLES, LogMel
from ..whisper.model import WhisperModel
from ..whisper.shallow import ShallowDraft
from ..whisper.tokenizer import LANGUAGES
from .drafting import Drafting
from .words import add_word_timestamps, last_word_end

TIME_PER_TIMESTAMP = 0.02
FRAMES_PER_TIMESTAMP = 2
FREE_DRAFT_ENOUGH = 4  # a free draft this long makes the model draft's passes waste (see decode_window)
SEED = 0  # sampled retries draw from a generator seeded per transcript: the same file gives the same text
RESET_ABOVE = 0.5  # openai-whisper: text sampled hotter than this does not prompt the next window
# A window with no sample louder than -80 dBFS holds no sound at all: silent without decoding. (Whisper itself
# hears "you" in digital silence: its no-speech rule spares text it is sure of. Recorded silence needs --vad.)
INAUDIBLE = 1e-4


def compression_ratio(text: str) -> float:
    """How well the text compresses (openai-whisper's repetition test): high for looping text."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass
class _Walk:
    """What one transcript accumulates window by window."""

    language: str | None
    generator: torch.Generator
    history: list[int]  # the text tokens so far (after any initial prompt): what later windows are prompted with
    reset_since: int = 0  # history before this index no longer prompts
    segments: list[Segment] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # every decoded token of the non-silent windows
    stats: DecodeStats = field(default_factory=DecodeStats)
    timing: dict = field(default_factory=lambda: {"encoder": 0.0, "decoder": 0.0})
    windows: int = 0
    retries: int = 0  # tries at a higher temperature
    silent: int = 0  # windows skipped by the no-speech rule
    last_speech: float = 0.0  # where the last word timed so far ends (word timestamps)

    @property
    def prompt(self) -> list[int]:
        return self.history[self.reset_since:]


@dataclass
class _Try:
    decoded: Decoded
    temperature: float
    text_tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class Transcriber:
    def __init__(self, target: WhisperModel, draft: WhisperModel | ShallowDraft | None, options: DecodingOptions,
                 approximate_draft: bool = True, notify: Callable[[str], None] | None = None):
        """`draft` is required by every method but ar, and ignored by ar (--method auto takes a given draft).
        `notify` hears notes for the user (e.g. that a language is drafted by lookup), each said once."""
        self.target = target
        self.options = options = options.on(target.device.type, None if draft is None else draft.name)
        self.target_decoder = WhisperDecoder(target)
        # An English-only target refuses another language or translation here, before any audio is decoded.
        target.tokenizer.require(options.language, options.task)
        self.drafting = Drafting(options, target, draft, self.target_decoder, approximate_draft) \
            if options.needs_draft else None
        self.notify = notify or (lambda message: None)
        self._noted: set[str] = set()

    def _note(self, message: str) -> None:
        if message not in self._noted:
            self._noted.add(message)
            self.notify(message)

    def _detect_language(self) -> str:
        tokenizer = self.target.tokenizer
        logits = Session(self.target_decoder).feed([tokenizer.sot])[-1]
        languages = LANGUAGES[: tokenizer.translate - tokenizer.sot - 1]  # the tokens this model has
        return languages[int(torch.argmax(logits[[tokenizer.language_token(code) for code in languages]]))]

    def decode_window(self, window: np.ndarray, frames: int, timestamps: bool, language: str | None,
                      stats: DecodeStats, timing: dict, previous: Sequence[int] = (),
                      free_drafts: list[list[int]] | None = None) -> tuple[list[int], str | None]:
        """One window's greedy tokens (and its language, detected where not given), conditioned on `previous`
        text tokens; `free_drafts` are earlier hypotheses of the same audio, proposed beside the model draft at
        no model cost (engine/lookup.py). For live transcription: no fallback, no no-speech rule."""
        began = time.perf_counter()
        language = self._encode(LogMel(window), 0, frames, language)
        timing["encoder"] += time.perf_counter() - began
        began = time.perf_counter()
        task = self.target.decode_task(language, self.options.task, timestamps, previous)
        drafter = self.drafting.drafter(language, timestamps, frames / FRAMES_PER_SECOND, previous) \
            if self.drafting else NoDrafter()
        if free_drafts:
            lookup = LookupDrafter(free_drafts, anchored=True)
            drafter = MergedDrafter(lookup, drafter, enough=FREE_DRAFT_ENOUGH) if self.drafting else lookup
        tokens = greedy_decode(self.target_decoder, task, drafter, stats).tokens
        timing["decoder"] += time.perf_counter() - began
        return tokens, language

    def _encode(self, features: LogMel, seek: int, frames: int, language: str | None) -> str | None:
        """Encode the window at frame `seek` for the target (and the draft where it can speak the language); the
        language, detected on the first window where not given."""
        self.target_decoder.encode(features.window(seek, self.target.model.config.num_mel_bins))
        if language is None and self.target.tokenizer.multilingual:
            with torch.inference_mode():
                language = self._detect_language()
        drafting = self.drafting
        if drafting and not drafting.can_draft(language):
            what = "translation" if self.options.task == "translate" else f"language {language!r}"
            self._note(f"note: draft {drafting.draft.name!r} is English-only; {what} is drafted from the "
                       "transcript itself (prompt lookup): slower, the same text")
        elif drafting:
            drafting.encode(features.window(seek, drafting.draft.model.config.num_mel_bins), frames)
        return language

    def transcribe(self, audio: np.ndarray, progress: Callable[[float], None] | None = None) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        timestamps = self.options.timestamps if self.options.timestamps is not None else \
            self.options.word_timestamps or duration > 30.0
        tokenizer = self.target.tokenizer
        initial = tokenizer.encode(" " + self.options.initial_prompt.strip()) if self.options.initial_prompt else []
        walk = _Walk(self.options.language, torch.Generator(self.target.device).manual_seed(SEED), initial)
        for start, end in self._chunks(audio):
            self._walk(audio[start:end], start // HOP, timestamps, walk, progress)
        text = "".join(s.text for s in walk.segments).strip()
        return Transcript(text, walk.segments, walk.language if tokenizer.multilingual else "en", duration,
                          walk.stats, walk.timing["encoder"], walk.timing["decoder"], walk.tokens,
                          windows=walk.windows, retries=walk.retries, silent_windows=walk.silent)

    def _chunks(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """Sample ranges to walk: all of it, or with --vad the speech, in chunks of up to a window cut in pauses."""
        if not self.options.vad_filter:
            return [(0, len(audio))]
        from ..audio.vad import speech_chunks

        return speech_chunks(audio, WINDOW_SAMPLES)

    def _walk(self, audio: np.ndarray, first_frame: int, timestamps: bool, walk: _Walk,
              progress: Callable[[float], None] | None) -> None:
        """Decode `audio` (which starts `first_frame` mel frames into the file) window by window."""
        features = LogMel(audio)
        total_frames = features.frames
        # Whisper can stamp a time past the audio (into the window's zero features): a last cue ended 6 s after
        # a 231 s file. No segment outlasts the audio.
        audio_end = (first_frame + total_frames) / FRAMES_PER_SECOND
        seek = 0
        while seek < total_frames:
            window_frames = min(WINDOW_FRAMES, total_frames - seek)
            audible = np.abs(audio[seek * HOP: (seek + window_frames) * HOP]).max(initial=0.0) >= INAUDIBLE
            tokens = self._decode_window(features, seek, window_frames, timestamps, walk) if audible else None
            offset = (first_frame + seek) / FRAMES_PER_SECOND
            if tokens is None:  # silent: openai-whisper skips the whole window
                walk.silent += 1
                seek += window_frames
            else:
                segments, advance = self._segments(tokens, offset, window_frames, timestamps)
                if self.options.word_timestamps:
                    advance = self._time_words(segments, tokens, first_frame + seek, window_frames, advance, walk)
                kept = [replace(s, start=min(s.start, audio_end), end=min(s.end, audio_end))
                        for s in segments if s.text.strip() and s.start != s.end]
                walk.segments += kept
                walk.history += [token for s in kept for token in s.tokens]
                seek += advance
            if progress:
                progress((first_frame + min(seek, total_frames)) / FRAMES_PER_SECOND)

    def _decode_window(self, features: LogMel, seek: int, frames: int, timestamps: bool,
                       walk: _Walk) -> list[int] | None:
        """The tokens (end-of-text dropped) of the window at frame `seek` after any retries, or None when it is
        silent."""
        began = time.perf_counter()
        walk.language = self._encode(features, seek, frames, walk.language)
        tokenizer = self.target.tokenizer
        walk.timing["encoder"] += time.perf_counter() - began
        began = time.perf_counter()
        task = self.target.decode_task(walk.language, self.options.task, timestamps, walk.prompt)
        task = replace(task, watch=task.prompt.index(tokenizer.sot))
        for number, temperature in enumerate(self.options.temperatures):
            attempt = self._try(task, temperature, timestamps, frames / FRAMES_PER_SECOND, walk)
            walk.retries += number > 0
            if not self._needs_retry(attempt):
                break
        walk.timing["decoder"] += time.perf_counter() - began
        walk.windows += 1
        if not self.options.condition_on_previous_text or attempt.temperature > RESET_ABOVE:
            walk.reset_since = len(walk.history)
        if self._silent(attempt):
            return None
        walk.tokens += attempt.text_tokens
        return attempt.text_tokens

    def _drafter(self, timestamps: bool, seconds: float, walk: _Walk, sampling: bool) -> Drafter:
        if not self.drafting:
            return NoDrafter()
        return self.drafting.drafter(walk.language, timestamps, seconds, walk.prompt, walk.history, sampling)

    def _try(self, task: DecodeTask, temperature: float, timestamps: bool, seconds: float, walk: _Walk) -> _Try:
        """One try at a temperature: greedy at 0 (token-identical for every method), else the likeliest of
        best_of samples, each drawn exactly from the target with the drafter's guesses."""
        if temperature == 0:
            decoded = greedy_decode(self.target_decoder, task, self._drafter(timestamps, seconds, walk, False),
                                    walk.stats)
        else:
            samples = [sample_decode(self.target_decoder, task, self._drafter(timestamps, seconds, walk, True),
                                     temperature, walk.generator, walk.stats) for _ in range(self.options.best_of)]
            # openai-whisper's ranking: the highest log-probability per token
            decoded = max(samples, key=lambda s: s.logprob / max(1, sum(t != task.stop_token for t in s.tokens)))
        tokenizer = self.target.tokenizer
        text_tokens = [t for t in decoded.tokens if t != tokenizer.eot]
        no_speech = getattr(tokenizer, "no_speech", None)
        no_speech_prob = float(torch.softmax(decoded.watched.float(), dim=-1)[no_speech]) if no_speech is not None \
            else 0.0
        return _Try(decoded, temperature, text_tokens, decoded.logprob / (len(text_tokens) + 1),
                    compression_ratio(tokenizer.decode(text_tokens)), no_speech_prob)

    def _needs_retry(self, attempt: _Try) -> bool:
        o = self.options
        if o.no_speech_threshold is not None and o.logprob_threshold is not None and \
                attempt.no_speech_prob > o.no_speech_threshold and attempt.avg_logprob < o.logprob_threshold:
            return False  # silence: no temperature will make words of it
        return (o.compression_ratio_threshold is not None and attempt.compression_ratio > o.compression_ratio_threshold) \
            or (o.logprob_threshold is not None and attempt.avg_logprob < o.logprob_threshold)

    def _silent(self, attempt: _Try) -> bool:
        o = self.options
        if o.no_speech_threshold is None or attempt.no_speech_prob <= o.no_speech_threshold:
            return False
        return o.logprob_threshold is None or attempt.avg_logprob <= o.logprob_threshold

    def _time_words(self, segments: list[Segment], tokens: list[int], seek_frame: int, frames: int, advance: int,
                    walk: _Walk) -> int:
        """Give the window's segments their words; returns how many frames to move the window: as
        openai-whisper, to the last word's end, unless the window's last segment is complete."""
        eot = self.target.tokenizer.eot
        offset = seek_frame / FRAMES_PER_SECOND
        alignment = find_alignment(self.target, self.target_decoder, [t for t in tokens if t < eot], frames,
                                   walk.language, self.options.task)
        add_word_timestamps(segments, [sum(t < eot for t in s.tokens) for s in segments], alignment, offset,
                            walk.last_speech, self.options.prepend_punctuations, self.options.append_punctuations)
        end = last_word_end(segments)
        if end is None:
            return advance
        walk.last_speech = end
        if end > offset and not self._complete(tokens):
            return round(end * FRAMES_PER_SECOND) - seek_frame
        return advance

    def _complete(self, tokens: list[int]) -> bool:
        """The window ends with one timestamp after text: its last segment is complete, and the next window
        starts after the whole of this one (openai-whisper's single_timestamp_ending)."""
        begin = self.target.tokenizer.timestamp_begin
        return [t >= begin for t in tokens[-2:]] == [False, True]

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
        single_ending = self._complete(tokens)
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
