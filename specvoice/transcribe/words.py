"""Word timestamps for one window's segments: openai-whisper's add_word_timestamps on top of the alignment.

The raw alignment is tidied the way openai-whisper tidies it: punctuation joins its word, and words that
run implausibly long at a sentence end or after a pause are cut to twice the median word length. Each
segment then takes its words, and its start and end move to theirs (unless a word looks too long).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..transcript import Segment, Word
from ..whisper.alignment import WordTiming

SENTENCE_ENDS = ".。!！?？"
LONGEST_MEDIAN = 0.7  # seconds: the median word length assumed at most
SEGMENT_SLACK = 0.5  # seconds a word may reach past its segment's timestamp before the timestamp wins


def add_word_timestamps(segments: Sequence[Segment], text_counts: Sequence[int], alignment: list[WordTiming],
                        offset: float, last_speech: float, prepended: str, appended: str) -> None:
    """Give each segment its words (segments[i] has text_counts[i] text tokens; `alignment` times them all from
    `offset`, the window's start); `last_speech`: where the speech before this window ended."""
    median, longest = _durations(alignment)
    if median:
        _shorten_at_sentence_ends(alignment, longest)
    merge_punctuations(alignment, prepended, appended)
    index = 0
    for segment, count in zip(segments, text_counts):
        words, index = _take_words(alignment, index, count, offset)
        if words:
            _fit(segment, words, last_speech, median, longest)
            last_speech = segment.end
        segment.words = words


def last_word_end(segments: Sequence[Segment]) -> float | None:
    """Where the last word ends (else the last segment), None without segments."""
    ends = (word.end for segment in reversed(segments) for word in reversed(segment.words or []))
    return next(ends, segments[-1].end if segments else None)


def _durations(alignment: list[WordTiming]) -> tuple[float, float]:
    """The median word length (capped at LONGEST_MEDIAN; 0 without words) and the longest a word may be."""
    lengths = np.array([timing.end - timing.start for timing in alignment])
    lengths = lengths[lengths.nonzero()]
    median = min(LONGEST_MEDIAN, float(np.median(lengths))) if len(lengths) else 0.0
    return median, 2 * median


def _shorten_at_sentence_ends(alignment: list[WordTiming], longest: float) -> None:
    """A sentence-ending mark, or a word right after one, is no longer than `longest`."""
    for previous, timing in zip(alignment, alignment[1:]):
        if timing.end - timing.start > longest:
            if timing.word in SENTENCE_ENDS:
                timing.end = timing.start + longest
            elif previous.word in SENTENCE_ENDS:
                timing.start = timing.end - longest


def merge_punctuations(alignment: list[WordTiming], prepended: str, appended: str) -> None:
    """Opening marks join the word after them, closing marks the word before; what joined is left empty."""
    following = len(alignment) - 1
    for i in range(len(alignment) - 2, -1, -1):
        previous, word = alignment[i], alignment[following]
        if previous.word.startswith(" ") and previous.word.strip() in prepended:
            word.word, word.tokens = previous.word + word.word, previous.tokens + word.tokens
            previous.word, previous.tokens = "", []
        else:
            following = i
    preceding = 0
    for j in range(1, len(alignment)):
        previous, word = alignment[preceding], alignment[j]
        if not previous.word.endswith(" ") and word.word in appended:
            previous.word, previous.tokens = previous.word + word.word, previous.tokens + word.tokens
            word.word, word.tokens = "", []
        else:
            preceding = j


def _take_words(alignment: list[WordTiming], index: int, count: int, offset: float) -> tuple[list[Word], int]:
    """The words (from `index` on) that hold the segment's `count` text tokens, and the index after them."""
    words, taken = [], 0
    while index < len(alignment) and taken < count:
        timing = alignment[index]
        if timing.word:
            words.append(Word(timing.word, round(offset + timing.start, 2), round(offset + timing.end, 2),
                              timing.probability))
        taken += len(timing.tokens)
        index += 1
    return words, index


def _fit(segment: Segment, words: list[Word], last_speech: float, median: float, longest: float) -> None:
    """Cut a first word that runs long after a pause; then the segment's start and end move to its words',
    unless a word reaches well past the segment's own timestamp (then the word is cut back)."""
    first = words[0]
    if first.end - last_speech > 4 * median and (
            first.end - first.start > longest or (len(words) > 1 and words[1].end - first.start > 2 * longest)):
        if len(words) > 1 and words[1].end - words[1].start > longest:
            first.end = words[1].start = max(words[1].end / 2, words[1].end - longest)
        first.start = max(0.0, first.end - longest)
    if segment.start < first.end and segment.start - SEGMENT_SLACK > first.start:
        first.start = max(0.0, min(first.end - median, segment.start))
    else:
        segment.start = first.start
    last = words[-1]
    if segment.end > last.start and segment.end + SEGMENT_SLACK < last.end:
        last.end = max(last.start + median, segment.end)
    else:
        segment.end = last.end
