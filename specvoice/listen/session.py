"""A listening session: audio from a source's queue through the streaming policy to the terminal, then the
committed transcript (txt/srt/vtt/json) and the measures of how fast words were committed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import SAMPLE_RATE
from ..engine.stats import DecodeStats
from ..transcript import Segment, Transcript
from .stream import Committed, Streamer

SENTENCE_END = (".", "?", "!")
TITLES = {"mr.", "mrs.", "ms.", "dr.", "st.", "prof."}  # a full stop that ends no sentence


@dataclass
class StreamMeasures:
    words: int
    delay_median: float | None  # seconds from a word's end in the audio to its commit
    delay_p90: float | None
    real_time_factor: float  # compute seconds per second of audio
    updates: int
    passes_per_update: float
    decoder_seconds_per_update: float
    encoder_seconds_per_update: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    def line(self) -> str:
        delays = "no words" if self.delay_median is None else \
            f"commit delay median {self.delay_median:.2f} s, p90 {self.delay_p90:.2f} s"
        return (f"{self.words} words, {delays}, RTF {self.real_time_factor:.2f}, {self.updates} updates: "
                f"{self.passes_per_update:.1f} target passes, decoder {self.decoder_seconds_per_update:.3f} s, "
                f"encoder {self.encoder_seconds_per_update:.3f} s per update")


def measure(streamer: Streamer, audio_seconds: float) -> StreamMeasures:
    state = streamer.state
    delays = np.array([c.delay for c in state.committed])
    updates = len(state.updates) or 1
    compute = sum(u.encoder_seconds + u.decoder_seconds for u in state.updates + state.spellings)
    return StreamMeasures(len(delays), float(np.median(delays)) if len(delays) else None,
                          float(np.percentile(delays, 90)) if len(delays) else None,
                          compute / audio_seconds if audio_seconds else 0.0, len(state.updates),
                          sum(u.target_passes for u in state.updates) / updates,
                          sum(u.decoder_seconds for u in state.updates) / updates,
                          sum(u.encoder_seconds for u in state.updates) / updates)


def _groups(committed: list[Committed]) -> list[list[Committed]]:
    """One group per sentence; an utterance's end (the buffer emptied) always ends one."""
    groups: list[list[Committed]] = []
    for i, c in enumerate(committed):
        if not groups or _ends(groups[-1][-1]) or groups[-1][-1].utterance != c.utterance:
            groups.append([])
        groups[-1].append(c)
    return groups


def _ends(c: Committed) -> bool:
    text = c.word.text.strip()
    return text.endswith(SENTENCE_END) and text.lower() not in TITLES


def segments(committed: list[Committed]) -> list[Segment]:
    result = []
    for group in _groups(committed):
        words = [c.word for c in group]
        result.append(Segment(words[0].start, words[-1].end, "".join(w.text for w in words),
                              [t for w in words for t in w.tokens]))
    return result


class LineBreaker:
    """Committed words to finished lines (sentences and utterances), for plain output."""

    def __init__(self):
        self.done = 0  # committed words already printed

    def lines(self, committed: list[Committed], utterance: int, final: bool = False) -> list[str]:
        groups = _groups(committed[self.done:])
        if groups and not (final or _ends(groups[-1][-1]) or groups[-1][-1].utterance < utterance):
            groups = groups[:-1]  # the sentence goes on
        self.done += sum(len(g) for g in groups)
        return ["".join(c.word.text for c in g).strip() for g in groups]


def transcript(streamer: Streamer, language: str | None, stats: DecodeStats, audio_seconds: float) -> Transcript:
    found = segments(streamer.state.committed)
    updates = streamer.state.updates + streamer.state.spellings
    return Transcript("".join(s.text for s in found).strip(), found, language, audio_seconds, stats,
                      sum(u.encoder_seconds for u in updates), sum(u.decoder_seconds for u in updates),
                      [t for s in found for t in s.tokens])


def run(streamer: Streamer, audio_queue, step: float, view, warn) -> bool:
    """Drain the queue into the streamer every `step` seconds of audio until the input ends or Ctrl-C (then
    True). The view is shown the finished lines (sentences whose words are final), the other committed words
    and the tentative ones."""
    breaker = LineBreaker()
    overflows = 0
    try:
        while True:
            chunk, ended = audio_queue.take(int(step * SAMPLE_RATE))
            if audio_queue.overflows > overflows:
                warn(f"input overflow: {audio_queue.overflows - overflows} audio block(s) dropped; going on")
                overflows = audio_queue.overflows
            if len(chunk):
                streamer.feed(chunk, last=ended)
            if ended:
                streamer.finish()
            _show(view, streamer, breaker, ended)
            if ended:
                return False
    except KeyboardInterrupt:
        streamer.finish(decode=False)
        _show(view, streamer, breaker, True)
        return True


def _show(view, streamer: Streamer, breaker: LineBreaker, final: bool) -> None:
    state = streamer.state
    lines = breaker.lines(state.committed[: streamer.final], streamer.utterance, final)
    view.show(lines, [c.word for c in state.committed[breaker.done:]], state.tentative)
