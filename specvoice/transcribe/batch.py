"""One input of a transcribe run, start to finish: the step that the one-process loop and every cluster worker
run, so both write the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..transcript import Transcript, write_outputs
from .inputs import Input


def transcribe_input(transcriber, item: Input, output_dir: Path | None, formats: list[str], record: dict,
                     progress: Callable[[float], None] | None = None) -> Transcript:
    """Read the input, decode it and write its files (each whole or not at all); `record` says in the json how
    the transcript was made."""
    result = transcriber.transcribe(item.read(), progress)
    if formats:
        write_outputs(result, output_dir / item.stem, formats, {**record, "audio": item.name})
    return result
