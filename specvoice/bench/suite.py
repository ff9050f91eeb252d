"""The bench from chosen names to a results dict: which contestants run, measuring them, and the context a
reader needs to trust or reproduce the numbers (machine, versions, command, what was skipped and why)."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator

import torch

from ..errors import SpecvoiceError
from ..options import METHODS
from ..whisper.model import WhisperModel
from .contestants import Contestant, SpecvoiceMethod
from .manifest import Clip, SkippedLine
from .memory import PeakMemory
from .peers import COMPUTE_TYPES, PEERS, faster_whisper_peers, transformers_peers
from .runner import Step, measure, schedule
from .summary import summarise

REFERENCE = "ar"
FASTER_WHISPER = "faster-whisper"


def _names(value: str, known: Iterable[str], what: str) -> list[str]:
    known = list(known)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SpecvoiceError(f"unknown {what} {', '.join(unknown)}: choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def method_names(value: str) -> list[str]:
    """--methods: comma-separated or `all`; ar is always measured first because every speed-up is against it."""
    names = list(METHODS) if value.strip() == "all" else _names(value, METHODS, "method")
    return [REFERENCE] + [name for name in names if name != REFERENCE]


def peer_names(value: str) -> list[str]:
    """--peers: comma-separated, `all` or `none`; `faster-whisper` means it at every compute type."""
    if value.strip() in ("none", ""):
        return []
    if value.strip() == "all":
        return list(PEERS)
    names = []
    for name in (name.strip() for name in value.split(",")):
        names += [f"{FASTER_WHISPER}-{c}" for c in COMPUTE_TYPES] if name == FASTER_WHISPER else [name]
    return _names(",".join(names), PEERS, "peer")


def contestants(methods: list[str], peers: list[str], targets: dict[str, WhisperModel], draft: WhisperModel | None,
                model_name: str) -> tuple[list[Contestant], list[str]]:
    """specvoice's methods at each precision (`targets`: precision -> target, the first one's ar is the
    reference), then the peers that can run here, and a note for each peer that cannot."""
    chosen: list[Contestant] = [SpecvoiceMethod(method, target, draft, precision)
                                for precision, target in targets.items() for method in methods]
    notes: list[str] = []
    first = next(iter(targets.values()))
    if "transformers" in peers:
        found, why_not = transformers_peers(first, draft)
        chosen, notes = chosen + found, notes + why_not
    compute_types = [p.removeprefix(f"{FASTER_WHISPER}-") for p in peers if p.startswith(FASTER_WHISPER)]
    if compute_types:
        found, why_not = faster_whisper_peers(compute_types, model_name, first.device)
        chosen, notes = chosen + found, notes + why_not
    return chosen, notes


def _processor() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(errors="replace").splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine(device: torch.device, precisions: list[str]) -> dict:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "processor": _processor(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "precisions": precisions,
        "platform": platform.platform(), "python": platform.python_version(),
        **{name.replace("-", "_"): _version(name) for name in
           ("specvoice", "torch", "transformers", "faster-whisper", "ctranslate2")},
    }


def _with_progress(steps: list[Step], show: bool) -> Iterator[Step]:
    from tqdm import tqdm

    with tqdm(total=len(steps), unit="run", desc="bench", file=sys.stderr, disable=not show) as bar:
        for step in steps:
            bar.set_postfix_str(f"{step.contestant.name} on {step.clip.id}", refresh=False)
            yield step
            bar.update()


def run_bench(clips: list[Clip], chosen: list[Contestant], *, device: torch.device, precisions: list[str],
              warmup: int, repeat: int, command: str, settings: dict, notes: list[str] = (),
              skipped_lines: list[SkippedLine] = (), progress: bool = True) -> dict:
    """Measure every contestant on every clip; the results as written to results.json."""
    memory = PeakMemory(device)
    steps = schedule(clips, chosen, warmup, repeat)
    outcomes = measure(_with_progress(steps, progress), chosen, clips, memory)
    return {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(device, precisions),
        "settings": {**settings, "warmup": warmup, "repeat": repeat, "language": "en"},
        "memory": memory.label,
        "audio_seconds": round(sum(clip.seconds for clip in clips), 3),
        "notes": list(notes),
        "skipped_lines": [{"line": s.line, "reason": s.reason} for s in skipped_lines],
        **summarise(clips, chosen, outcomes),
    }
