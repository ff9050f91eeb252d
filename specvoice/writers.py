"""Transcript files: txt, srt, vtt, json. Each is written to a temporary file and renamed into place, so
an interrupted run never leaves a half-written file that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .transcribe import Transcript

FORMATS = ("txt", "srt", "vtt", "json")


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


def render_json(t: Transcript, extra: dict | None = None) -> str:
    data = {
        "text": t.text,
        "language": t.language,
        "duration": round(t.duration, 3),
        "segments": [{"id": i, "start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens}
                     for i, s in enumerate(t.segments)],
        "stats": {**t.stats.as_dict(), "encoder_seconds": round(t.encoder_seconds, 4),
                  "decoder_seconds": round(t.decoder_seconds, 4)},
        **(extra or {}),
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


RENDERERS = {"txt": render_txt, "srt": render_srt, "vtt": render_vtt, "json": render_json}


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomic(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_outputs(t: Transcript, stem: Path, formats: list[str], extra: dict | None = None) -> list[Path]:
    written = []
    for fmt in formats:
        path = stem.with_name(stem.name + "." + fmt)
        write_atomic(path, render_json(t, extra) if fmt == "json" else RENDERERS[fmt](t))
        written.append(path)
    return written
