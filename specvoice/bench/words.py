"""Word timestamps against faster-whisper's on the same CTranslate2 weights: the words of both transcripts
paired by their normalised text (sequence matching, so a word one side lacks pairs with nothing), and how far
apart the pairs' starts and ends are."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..transcript import Transcript


class TimedWord(NamedTuple):
    word: str
    start: float
    end: float


def specvoice_words(transcript: Transcript) -> list[TimedWord]:
    return [TimedWord(w.word, w.start, w.end) for s in transcript.segments for w in s.words or []]


def faster_whisper_model(folder: Path, threads: int):
    """faster-whisper on the CPU at int8 (its recommended setting) on the CTranslate2 model in `folder`."""
    from faster_whisper import WhisperModel as FasterWhisperModel

    return FasterWhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads)


def faster_whisper_words(model, audio: np.ndarray, language: str) -> list[TimedWord]:
    """faster-whisper's word timestamps, greedy (beam 1, temperature 0, no fallback), VAD off."""
    segments, _ = model.transcribe(audio, language=language, beam_size=1, temperature=0.0, word_timestamps=True,
                                   vad_filter=False)
    return [TimedWord(w.word, w.start, w.end) for s in segments for w in s.words]


def _normalised(word: str) -> str:
    return re.sub(r"\W", "", word.lower())


def paired_differences(ours: list[TimedWord], theirs: list[TimedWord]) -> tuple[list[float], list[float]]:
    """|start difference| and |end difference| in seconds of every word pair with the same normalised text."""
    matcher = SequenceMatcher(None, [_normalised(w.word) for w in ours], [_normalised(w.word) for w in theirs],
                              autojunk=False)
    pairs = [(ours[block.a + k], theirs[block.b + k]) for block in matcher.get_matching_blocks()
             for k in range(block.size)]
    return [abs(a.start - b.start) for a, b in pairs], [abs(a.end - b.end) for a, b in pairs]
