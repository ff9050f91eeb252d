"""What a speech pipeline produces (timed segments and their tokens) and its files: txt, srt, vtt, json.
Each file is written atomically (files.write_atomic), so an interrupted run never leaves half of one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .engine.stats import DecodeStats
from .files import write_atomic

FORMATS = ("txt", "srt", "vtt", "json")


@dataclass
class Word:
    word: str  # with its leading space, as in the segment's text
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    tokens: list[int]
    words: list[Word] | None = None  # with --word-timestamps


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
    windows: int = 0  # windows decoded
    retries: int = 0  # windows tried again at a higher temperature (Whisper's fallback)
    silent_windows: int = 0  # windows dropped as silence (Whisper's no-speech rule)


def _clock(seconds: float, decimal: str) -> str:
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{milliseconds:03d}"


def render_txt(t: Transcript) -> str:
    return "\n".join(s.text.strip() for s in t.segments) + "\n"


def render_srt(t: Transcript) -> str:
    blocks = [f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
              for i, s in enumerate(t.segments, 1)]
    return "\n".join(blocks)


def render_vtt(t: Transcript) -> str:
    blocks = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n" for s in t.segments]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _segment_json(index: int, s: Segment) -> dict:
    data = {"id": index, "start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens}
    if s.words is not None:
        data["words"] = [{"word": w.word, "start": w.start, "end": w.end, "probability": round(w.probability, 4)}
                         for w in s.words]
    return data


def render_json(t: Transcript, extra: dict | None = None) -> str:
    data = {
        "text": t.text,
        "language": t.language,
        "duration": round(t.duration, 3),
        "segments": [_segment_json(i, s) for i, s in enumerate(t.segments)],
        "stats": {**t.stats.as_dict(), "windows": t.windows, "retries": t.retries,
                  "silent_windows": t.silent_windows, "encoder_seconds": round(t.encoder_seconds, 4),
                  "decoder_seconds": round(t.decoder_seconds, 4)},
        **(extra or {}),
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


RENDERERS = {"txt": render_txt, "srt": render_srt, "vtt": render_vtt, "json": render_json}


def output_path(stem: Path, fmt: str) -> Path:
    """The file a transcript in format `fmt` is written to: `stem` with the format's ending added (a dot in the
    input's own name stays: talk.v2 gives talk.v2.txt)."""
    return stem.with_name(f"{stem.name}.{fmt}")


def write_outputs(t: Transcript, stem: Path, formats: list[str], extra: dict | None = None) -> list[Path]:
    written = []
    for fmt in formats:
        path = output_path(stem, fmt)
        write_atomic(path, render_json(t, extra) if fmt == "json" else RENDERERS[fmt](t))
        written.append(path)
    return written
