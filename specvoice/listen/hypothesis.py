"""A decode of the audio buffer (with its continuations, recognizer.py) as timed words, and the segment ends
where the buffer may be cut.

Whisper's timestamp tokens time segments, not words: a word's time inside its segment is interpolated by
its share of the segment's characters (good to a few hundred ms on read speech; used for commit delays and
to drop words the buffer no longer holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher

TIME_PER_TIMESTAMP = 0.02


@dataclass(frozen=True)
class Word:
    text: str  # with its leading space, as Whisper writes it
    start: float  # seconds
    end: float
    tokens: tuple[int, ...]

    def shifted(self, seconds: float) -> "Word":
        return replace(self, start=round(self.start + seconds, 3), end=round(self.end + seconds, 3))

    @property
    def key(self) -> str:
        """What two hypotheses must agree on: the word without case or punctuation."""
        return "".join(c for c in self.text.lower() if c.isalnum())


@dataclass(frozen=True)
class SegmentEnd:
    time: float  # seconds from the buffer start
    words: int  # words of the hypothesis before it
    tokens: int  # tokens of the hypothesis up to and including its closing timestamp


@dataclass
class Hypothesis:
    words: list[Word]  # times from the buffer start
    segment_ends: list[SegmentEnd] = field(default_factory=list)  # closed segments only
    tokens: list[int] = field(default_factory=list)
    target_passes: int = 0
    encoder_seconds: float = 0.0
    decoder_seconds: float = 0.0


def respelled(words: list[Word], heard: list[Word]) -> list[Word]:
    """`words` with the text (punctuation, capitals) and tokens of the words of `heard` they align with by key;
    times, and words `heard` lacks, stay as they were."""
    result = list(words)
    matcher = SequenceMatcher(None, [w.key for w in words], [w.key for w in heard], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            result[block.a + k] = replace(words[block.a + k], text=heard[block.b + k].text,
                                          tokens=heard[block.b + k].tokens)
    return result


def timed_words(tokenizer, tokens: list[int], buffer_seconds: float) -> tuple[list[Word], list[SegmentEnd]]:
    """Words of a timestamped decode (eot dropped) and the ends of its closed segments."""
    begin = tokenizer.timestamp_begin
    words: list[Word] = []
    ends: list[SegmentEnd] = []
    start, text = 0.0, []
    for index, token in enumerate(tokens + [None]):
        if token is not None and token < tokenizer.eot:
            text.append(token)
            continue
        stamp = (token - begin) * TIME_PER_TIMESTAMP if token is not None and token >= begin else None
        if text:  # a segment's text ends here: closed by this timestamp, or by the end of the decode
            closed = stamp is not None
            words += _spread(tokenizer, text, start, stamp if closed else max(start, buffer_seconds))
            text = []
            if closed:
                ends.append(SegmentEnd(stamp, len(words), index + 1))
        if stamp is not None:
            start = stamp
    return words, ends


def _spread(tokenizer, text: list[int], start: float, end: float) -> list[Word]:
    """The segment's tokens grouped into words (a word starts at a token that starts with a space), each timed
    by its share of the characters."""
    groups: list[list[int]] = []
    for token in text:
        if not groups or tokenizer.decode([token]).startswith(" "):
            groups.append([])
        groups[-1].append(token)
    texts = [tokenizer.decode(group) for group in groups]
    total = sum(len(t) for t in texts) or 1
    words, done = [], 0
    for group, piece in zip(groups, texts):
        word_start = start + (end - start) * done / total
        done += len(piece)
        words.append(Word(piece, round(word_start, 3), round(start + (end - start) * done / total, 3), tuple(group)))
    return words
