"""What a transcribe run reads and where each transcript goes, all settled before any decoding.

One batch policy: every input is expanded (a folder means its audio files, `-` means stdin) and read once up
front; each unreadable, empty or too-short one is one problem line, the rest are all transcribed. Where two
inputs would write the same output file, or the output folder is unusable, nothing is decoded at all. A run
spread over workers only probes each file's header here (its workers read the files, and say what they cannot
read); a resumed run leaves out, unread, the inputs whose output files are all there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from ..audio import SAMPLE_RATE, audio_seconds, audio_suffixes, load_audio
from ..errors import SpecvoiceError
from ..files import os_reason, prepare_folder
from ..transcript import output_path

STDIN = "-"
MIN_SECONDS = 0.1  # shorter than this holds no word (and is what a truncated file usually leaves)
STDIN_STEM = "stdin"


@dataclass
class Input:
    name: str  # how messages call it: the path as given, or "-"
    source: Path | bytes  # a file, or stdin's bytes (read once)
    stem: Path  # the output files' path without suffix, relative to the output folder
    seconds: float = 0.0

    def read(self) -> np.ndarray:
        return load_audio(self.source, self.name)

    def outputs(self, output_dir: Path, formats: list[str]) -> list[Path]:
        return [output_path(output_dir / self.stem, fmt) for fmt in formats]


class Gathered(NamedTuple):
    inputs: list[Input]  # to transcribe
    problems: list[str]  # one line per input left out as unusable
    finished: list[Input]  # left out by --resume: their outputs are complete


def finished(item: Input, output_dir: Path, formats: list[str]) -> bool:
    """Every output file of the input is there; each is written whole or not at all (files.write_atomic), so
    being there means being complete."""
    return bool(formats) and all(path.is_file() for path in item.outputs(output_dir, formats))


def _expand(arguments: list[Path], stdin: BinaryIO) -> list[Input]:
    inputs: list[Input] = []
    suffixes = audio_suffixes()
    for argument in arguments:
        if str(argument) == STDIN:
            if any(i.name == STDIN for i in inputs):
                raise SpecvoiceError("- (stdin) can be given once")
            inputs.append(Input(STDIN, stdin.read(), Path(STDIN_STEM)))
        elif _is_folder(argument):
            found = sorted(p for p in argument.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise SpecvoiceError(f"{argument}: folder holds no audio files ({', '.join(sorted(suffixes))})")
            # A folder's files keep their place inside it, so equal names in subfolders never collide.
            inputs += [Input(str(p), p, p.relative_to(argument).with_suffix("")) for p in found]
        else:
            inputs.append(Input(str(argument), argument, Path(argument.name).with_suffix("")))
    return inputs


def _is_folder(path: Path) -> bool:
    """Whether `path` is a folder; a name the system cannot look up (too long, say) is left to _check to report."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _check(item: Input, probe: bool) -> str | None:
    """The problem with one input, if any (it is then left out of the batch); `probe`: its header only."""
    if item.source == b"":
        return f"{item.name}: stdin is empty"
    try:
        item.seconds = audio_seconds(item.source, item.name) if probe else len(item.read()) / SAMPLE_RATE
    except SpecvoiceError as exc:
        return str(exc)
    except OSError as exc:  # a name the file system refuses outright, e.g. longer than 255 bytes
        return f"{item.name}: cannot open ({os_reason(exc)})"
    if item.seconds < MIN_SECONDS:
        return f"{item.name}: audio too short ({item.seconds:.3f} s; at least {MIN_SECONDS} s)"
    return None


def _name_limit(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def gather(arguments: list[Path], output_dir: Path | None, formats: list[str], stdin: BinaryIO,
           resume: bool = False, probe: bool = False) -> Gathered:
    """The readable inputs, one problem line per input left out, and (`resume`) the inputs already finished.
    Raises when nothing may be decoded."""
    done: list[Input] = []
    todo: list[Input] = []
    for item in _expand(arguments, stdin):
        (done if resume and finished(item, output_dir, formats) else todo).append(item)
    problems: list[str] = []
    readable: list[Input] = []
    for item in todo:
        problem = _check(item, probe)
        if problem is None and output_dir is not None:
            longest = max((output_path(item.stem, fmt).name for fmt in formats), key=lambda n: len(n.encode()))
            if len(longest.encode()) > _name_limit(output_dir):
                problem = f"{item.name}: output name {longest!r} is longer than the file system allows"
        (problems.append(problem) if problem else readable.append(item))
    if output_dir is not None:
        seen: dict[Path, Input] = {}
        for item in readable:
            if item.stem in seen:
                first = seen[item.stem]
                raise SpecvoiceError(f"{first.name} and {item.name} would both write {output_dir / item.stem}.* "
                                     "(give them different names, or run them separately)")
            seen[item.stem] = item
    return Gathered(readable, problems, done)
