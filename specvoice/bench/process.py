"""`specvoice bench --process`: each contestant timed as a whole command, as a user times it: `specvoice
transcribe` for each method and precision, and faster-whisper through the script its users write
(faster_whisper_command.py), on the same CTranslate2 weights. Each clip is one command; with several clips the
whole manifest is one more (the folder run: start-up paid once). Commands alternate run by run (A B A B ...), so
drift on the machine moves them alike.

A command's time is wall seconds from its start to its exit: interpreter start-up, imports, model loading,
reading the audio and writing the text included. Its memory is its peak resident set (the kernel's ru_maxrss of
that process, taken by launch.py). Each contestant's start-up alone is also a command (the same one with
`--load-only`: it checks the first clip, loads and builds its models, and exits), so the report can set process
seconds minus start-up beside the same contestant timed inside a running process (the in-process bench).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Iterable, Iterator

from ..errors import SpecvoiceError
from ..files import write_atomic
from ..transcript import output_path
from ..whisper.features import WINDOW_SECONDS
from .contestants import plain_greedy
from .manifest import Clip
from .normalize import WordErrors, normalize, word_errors
from .peers import faster_whisper_folder
from .report import markdown_lines

FOLDER = "all clips"  # the target that is every clip in one command
EACH_CLIP = "each clip"  # the per-clip targets, summed
FASTER_WHISPER = "faster-whisper-"

# contestants.plain_greedy() spelled as transcribe's flags (tests check they decode alike). --no-speech-threshold
# 1: no window is ever silent, as with None (no probability is over 1). Timestamps are given per command, as
# timestamps=None decides them for one file.
PLAIN_GREEDY_FLAGS = ("--language", "en", "--temperature-increment-on-fallback", "0",
                      "--no-condition-on-previous-text", "--no-speech-threshold", "1")


@dataclass(frozen=True)
class Command:
    """A contestant as a command line: head, audio files, options, -o FOLDER and the timestamps flag."""

    name: str
    head: tuple[str, ...]
    options: tuple[str, ...]
    identical_to: str | None  # the contestant whose text it must equal (None: the first, the reference)

    def argv(self, files: Iterable[Path], timestamps: bool, output_dir: Path, load_only: bool = False) -> list[str]:
        """load_only: the command starts (imports, loads and builds its models), then exits: its start-up."""
        return [*self.head, *map(str, files), *self.options, "-o", str(output_dir),
                "--timestamps" if timestamps else "--no-timestamps", *(["--load-only"] if load_only else [])]


def specvoice_command(method: str, precision: str, model: str, draft: str, device: str, threads: int) -> Command:
    drafting = ("--draft", draft) if plain_greedy(method).needs_draft else ()
    options = ("--method", method, "--model", model, *drafting, "--device", device, "--dtype", precision,
               "--threads", str(threads), "-f", "txt", *PLAIN_GREEDY_FLAGS)
    return Command(f"{method}-{precision}", (sys.executable, "-m", "specvoice", "transcribe"), options,
                   f"ar-{precision}")


def faster_whisper_command(compute_type: str, folder: Path, device: str, threads: int) -> Command:
    head = (sys.executable, "-m", "specvoice.bench.faster_whisper_command")
    options = ("--model", str(folder), "--compute-type", compute_type, "--device", device, "--threads", str(threads))
    return Command(f"{FASTER_WHISPER}{compute_type}", head, options, None)


def commands(methods: list[str], precisions: list[str], peers: list[str], model: str, draft: str, device: str,
             threads: int) -> tuple[list[Command], list[str]]:
    """specvoice's methods at each precision, then faster-whisper at each compute type asked for; notes on the
    peers left out."""
    chosen = [specvoice_command(method, precision, model, draft, device, threads)
              for precision in precisions for method in methods]
    notes = [f"{peer} left out: it has no command of its own to time" for peer in peers
             if not peer.startswith(FASTER_WHISPER)]
    compute_types = [peer.removeprefix(FASTER_WHISPER) for peer in peers if peer.startswith(FASTER_WHISPER)]
    if compute_types:
        folder, why_not = faster_whisper_folder(model)
        if folder is None:
            notes.append(why_not)
        else:
            chosen += [faster_whisper_command(compute_type, folder, device, threads) for compute_type in compute_types]
    return chosen, notes


@dataclass(frozen=True)
class Target:
    """What one command transcribes: one clip, or every clip at once (FOLDER)."""

    id: str
    clips: tuple[Clip, ...]

    @property
    def timestamps(self) -> bool:
        """As timestamps=None decides for one file (on over 30 s); a command takes one setting for all its files:
        on when any of them is long."""
        return any(clip.seconds > WINDOW_SECONDS for clip in self.clips)


def targets(clips: list[Clip]) -> tuple[list[Target], list[str]]:
    """One command per clip, and one for all of them when there are several; a note when that one is left out."""
    each = [Target(clip.id, (clip,)) for clip in clips]
    if len(clips) < 2:
        return each, []
    names = [clip.path.stem for clip in clips]
    if len(set(names)) < len(names):
        return each, [f"the run over {FOLDER} at once left out: two clips' files have the same name, so their "
                      "transcripts would too"]
    return each + [Target(FOLDER, tuple(clips))], []


@dataclass(frozen=True)
class Timing:
    seconds: float
    peak_mib: float


def run_timed(argv: list[str], log: Path) -> Timing:
    """Run a command to its end, its output into `log`: its wall seconds and its peak resident memory, both
    taken by launch.py (see there why the command is not started from this process)."""
    launched = subprocess.run([sys.executable, "-m", "specvoice.bench.launch", str(log), *argv],
                              capture_output=True, text=True)
    if launched.returncode:
        said = launched.stderr.strip().splitlines() or ["no output"]
        raise SpecvoiceError(f"could not run {shlex.join(argv)}: {said[-1]}")
    report = json.loads(launched.stdout)
    if report["exit"]:
        said = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        raise SpecvoiceError(f"{shlex.join(argv)} exited with {report['exit']}: {said[-1] if said else 'no output'}")
    return Timing(report["seconds"], report["peak_mib"])


@dataclass
class Measured:
    """One command on one target."""

    timings: list[Timing] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # clip id -> text of the first timed run


@dataclass(frozen=True)
class Step:
    command: Command
    target: Target
    timed: bool = True
    load_only: bool = False  # the command's start-up alone


def schedule(chosen: list[Command], goals: list[Target], warmup: int, repeat: int) -> list[Step]:
    """Warm-up runs on the first target (untimed: the weights come into the page cache), start-ups alternating,
    then each target's runs alternating contestant by contestant (A B A B ...)."""
    steps = [Step(command, goals[0], timed=False) for command in chosen for _ in range(warmup)]
    steps += [Step(command, goals[0], load_only=True) for _ in range(repeat) for command in chosen]
    return steps + [Step(command, target) for target in goals for _ in range(repeat) for command in chosen]


def _texts(folder: Path, target: Target) -> dict[str, str]:
    try:
        # each command writes its text as `specvoice transcribe -o FOLDER` names it (faster_whisper_command too)
        return {clip.id: output_path(folder / clip.path.stem, "txt").read_text(encoding="utf-8")
                for clip in target.clips}
    except FileNotFoundError as exc:
        raise SpecvoiceError(f"a command wrote no transcript {exc.filename}") from None


def measure(steps: Iterable[Step]) -> tuple[dict[str, list[Timing]], dict[str, dict[str, Measured]]]:
    """Run the steps; start-up timings by command, and outcomes by target id, then by command."""
    startups: dict[str, list[Timing]] = {}
    outcomes: dict[str, dict[str, Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="specvoice-bench-") as scratch:
        log, output = Path(scratch) / "log", Path(scratch) / "out"
        for step in steps:
            timing = run_timed(step.command.argv((c.path for c in step.target.clips), step.target.timestamps,
                                                 output, step.load_only), log)
            if step.load_only:
                startups.setdefault(step.command.name, []).append(timing)
            elif step.timed:
                measured = outcomes.setdefault(step.target.id, {}).setdefault(step.command.name, Measured())
                measured.timings.append(timing)
                measured.texts = measured.texts or _texts(output, step.target)
            shutil.rmtree(output, ignore_errors=True)  # warm-up and start-up runs are not read: nothing may be there
    return startups, outcomes


def in_process_seconds(results: dict) -> dict[str, dict[str, float]]:
    """Per contestant, per clip: its seconds in the in-process bench (run_bench's results; mean of its runs)."""
    return {row["name"]: {clip["id"]: clip["results"][row["name"]]["seconds"] for clip in results["clips"]
                          if "seconds" in clip["results"][row["name"]]} for row in results["summary"]}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _identical(texts: dict[str, str], reference: dict[str, str]) -> list[bool]:
    return [normalize(texts[clip]) == normalize(reference[clip]) for clip in texts]


def _target_row(target: Target, command: Command, measured: Measured, reference: Measured) -> dict:
    seconds = [t.seconds for t in measured.timings]
    errors = sum((word_errors(clip.reference, measured.texts[clip.id]) for clip in target.clips), WordErrors())
    return {
        "runs": len(seconds), "seconds": [round(s, 3) for s in seconds],
        "min_seconds": round(min(seconds), 3), "median_seconds": round(median(seconds), 3),
        "peak_mib": round(max(t.peak_mib for t in measured.timings), 1),
        "errors": errors.errors, "words": errors.words,
        "identical": _identical(measured.texts, reference.texts), "texts": measured.texts,
    }


def _group_row(command: Command, rows: list[dict], clip_ids: list[str], startup: float | None,
               in_process: dict[str, float] | None) -> dict:
    """One contestant over a group of targets (each clip, or the folder run): seconds summed over the targets."""
    median_seconds = sum(row["median_seconds"] for row in rows)
    identical = [same for row in rows for same in row["identical"]]
    inside = None if in_process is None or not all(clip in in_process for clip in clip_ids) else \
        sum(in_process[clip] for clip in clip_ids)
    return {
        "name": command.name, "commands": len(rows), "clips": len(clip_ids),
        "min_seconds": _round(sum(row["min_seconds"] for row in rows)), "median_seconds": _round(median_seconds),
        "peak_mib": max(row["peak_mib"] for row in rows),
        "startup_seconds": _round(startup),
        "minus_startup_seconds": None if startup is None else _round(median_seconds - len(rows) * startup),
        "in_process_seconds": _round(inside),
        "wer": _round(WordErrors(sum(r["errors"] for r in rows), sum(r["words"] for r in rows)).rate, 4),
        "identical_rate": _round(sum(identical) / len(identical)),
        "identical_to": command.identical_to,
    }


def summarise(chosen: list[Command], goals: list[Target], startups: dict[str, list[Timing]],
              outcomes: dict[str, dict[str, Measured]], in_process: dict[str, dict[str, float]]) -> dict:
    """Per target and per group of targets (each clip summed; the folder run), every contestant's figures."""
    reference = chosen[0].name
    startup = {name: median(t.seconds for t in timings) for name, timings in startups.items()}
    per_target = []
    for target in goals:
        measured = outcomes[target.id]
        per_target.append({
            "id": target.id, "clips": [clip.id for clip in target.clips], "timestamps": target.timestamps,
            "audio_seconds": round(sum(clip.seconds for clip in target.clips), 3),
            "results": {c.name: _target_row(target, c, measured[c.name], measured[c.identical_to or reference])
                        for c in chosen},
        })
    groups = {EACH_CLIP: [t for t in per_target if t["id"] != FOLDER], FOLDER: [t for t in per_target
                                                                               if t["id"] == FOLDER]}
    peer = next((c.name for c in chosen if c.name.startswith(FASTER_WHISPER)), None)
    summary = {}
    for group, members in groups.items():
        if not members:
            continue
        clip_ids = [clip for t in members for clip in t["clips"]]
        rows = [_group_row(c, [t["results"][c.name] for t in members], clip_ids, startup.get(c.name),
                           in_process.get(c.name)) for c in chosen]
        by_name = {row["name"]: row for row in rows}
        for row in rows:
            row["vs_faster_whisper"] = None if peer is None else \
                _round(by_name[peer]["median_seconds"] / row["median_seconds"])
        summary[group] = rows
    return {"reference": reference, "faster_whisper": peer,
            "startups": {name: [round(t.seconds, 3) for t in timings] for name, timings in startups.items()},
            "summary": summary, "targets": per_target}


def results(chosen: list[Command], goals: list[Target], startups: dict[str, list[Timing]],
            outcomes: dict[str, dict[str, Measured]], in_process: dict[str, dict[str, float]], *, command: str,
            machine: dict, settings: dict, notes: list[str]) -> dict:
    """The results as written to results.json: the figures and what a reader needs to reproduce them."""
    from datetime import datetime, timezone

    clips = [clip for target in goals if target.id != FOLDER for clip in target.clips]
    return {"command": command, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine, "settings": settings, "clips": [clip.id for clip in clips],
            "audio_seconds": round(sum(clip.seconds for clip in clips), 3), "notes": notes,
            **summarise(chosen, goals, startups, outcomes, in_process)}


def _cell(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


COLUMNS = (  # header, summary key, format
    ("contestant", "name", "s"), ("commands", "commands", "d"), ("min s", "min_seconds", ".2f"),
    ("median s", "median_seconds", ".2f"), ("vs faster-whisper", "vs_faster_whisper", ".2f"),
    ("peak MiB", "peak_mib", ".0f"), ("start-up s", "startup_seconds", ".2f"),
    ("median − start-up s", "minus_startup_seconds", ".2f"), ("in-process s", "in_process_seconds", ".2f"),
    ("WER", "wer", ".2%"), ("identical", "identical_rate", ".0%"),
)


def explanations(results: dict) -> list[str]:
    peer, reference = results["faster_whisper"], results["reference"]
    return [
        "Each command runs from its start to its exit: interpreter start-up, imports, model loading, reading the "
        "audio, transcribing, writing the .txt; contestants alternate run by run.",
        f"{EACH_CLIP}: one command per clip, seconds summed over the clips; {FOLDER}: one command given every clip.",
        "min s / median s: of each command's runs (summed over the commands of the row).",
        f"vs faster-whisper: {peer}'s median s / the contestant's (above 1: faster than {peer})." if peer else
        "vs faster-whisper: – (faster-whisper was not run).",
        "peak MiB: the largest peak resident memory of one command (the kernel's ru_maxrss of that process).",
        "start-up s: median wall seconds of the same command with --load-only, which starts and exits "
        "(interpreter, imports, model loading; specvoice transcribe also checks the first clip and builds its "
        "models).",
        "median − start-up s: median s minus start-up s for each command of the row: the time the command spends "
        "on the audio, to set beside in-process s.",
        "in-process s: the same contestant in the bench's own process, models loaded (results in in-process/, "
        "mean of its runs), summed over the same clips.",
        "WER: corpus word error rate of the commands' texts (Whisper's English normaliser).",
        f"identical: share of clips whose text (normalised) equals that of the contestant it must agree with "
        f"(ar at the same precision; {reference} for faster-whisper).",
    ]


def markdown(results: dict) -> str:
    lines = []
    for group, rows in results["summary"].items():
        lines += [f"### {group}", ""]
        lines += markdown_lines([header for header, _, _ in COLUMNS],
                                [[_cell(row[key], spec) for _, key, spec in COLUMNS] for row in rows])
        lines.append("")
    return "\n".join(lines)


def render_markdown(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    lines = ["# specvoice bench --process", "", "```bash", results["command"], "```", "",
             f"{results['date']} · {machine['processor']}, {settings['threads']} threads per command · "
             f"faster-whisper {machine['faster_whisper']}", "",
             f"{len(results['clips'])} clips, {results['audio_seconds']:.1f} s of audio; target "
             f"`{settings['model']}`; warm-up {settings['warmup']}, repeat {settings['repeat']}.", "",
             markdown(results)]
    lines += [f"- {line}" for line in explanations(results) + results["notes"]]
    return "\n".join(lines) + "\n"


def write_reports(results: dict, output_dir: Path) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / "results.json", output_dir / "results.md"]
    write_atomic(written[0], json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    write_atomic(written[1], render_markdown(results))
    return written


def with_progress(steps: list[Step], show: bool = True) -> Iterator[Step]:
    from tqdm import tqdm

    with tqdm(total=len(steps), unit="command", desc="bench --process", file=sys.stderr, disable=not show) as bar:
        for step in steps:
            bar.set_postfix_str(f"{step.command.name} on {step.target.id if step.target else 'start-up'}",
                                refresh=False)
            yield step
            bar.update()
