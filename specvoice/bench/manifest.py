"""Speech manifests: one JSON object a line with `id`, `audio` (a path, relative to the manifest's folder)
and `text` (the reference transcript); `kind` and `noisy` group the clips in the report.

A bad line is a finding, not a crash: it is returned with its reason and the other lines are still measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, load_audio
from ..errors import SpecvoiceError
from .normalize import normalize

REQUIRED_FIELDS = ("id", "audio", "text")


@dataclass
class Clip:
    id: str
    audio: np.ndarray  # 16 kHz mono, loaded once so no run pays for decoding the file
    reference: str
    kind: str
    noisy: bool
    path: Path | None = None  # the audio file (`bench --process` gives it to each command)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def group(self) -> str:
        """The bucket the chart reports speed-ups for."""
        return f"{self.kind} (noisy)" if self.noisy else self.kind


@dataclass
class SkippedLine:
    line: int
    reason: str


def _clip(row: object, folder: Path, seen: set[str]) -> Clip:
    if not isinstance(row, dict):
        raise SpecvoiceError(f"expected a JSON object, got {type(row).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in row]
    if missing:
        raise SpecvoiceError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if not all(isinstance(row[name], str) for name in REQUIRED_FIELDS):
        raise SpecvoiceError(f"{', '.join(REQUIRED_FIELDS)} must be strings")
    if row["id"] in seen:
        raise SpecvoiceError(f"duplicate id {row['id']!r}")
    # A reference with no word left after normalising ("...", "[noise]") has nothing to count errors against.
    if not any(character.isalnum() for character in normalize(row["text"])):
        raise SpecvoiceError("empty reference text")
    path = folder / row["audio"]
    return Clip(row["id"], load_audio(path), row["text"], str(row.get("kind") or "unknown"),
                bool(row.get("noisy", False)), path)


def read_manifest(path: Path, limit: int | None = None) -> tuple[list[Clip], list[SkippedLine]]:
    """The first `limit` usable clips, and every line before the last of them that could not be used."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SpecvoiceError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecvoiceError(f"{path}: cannot read the manifest ({exc.__class__.__name__})") from None
    clips: list[Clip] = []
    skipped: list[SkippedLine] = []
    for number, line in enumerate(lines, 1):
        if limit is not None and len(clips) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            skipped.append(SkippedLine(number, f"invalid JSON ({exc.msg})"))
            continue
        try:
            clip = _clip(row, path.parent, {c.id for c in clips})
        except SpecvoiceError as exc:
            skipped.append(SkippedLine(number, str(exc)))
            continue
        clips.append(clip)
    return clips, skipped
