"""The measurement: every contestant on every clip, each of its runs right after a run of `ar` on the
same clip (ar, m, ar, m, ...), so a machine that speeds up or slows down during the bench moves both
sides of every speed-up ratio alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .contestants import Contestant, Run
from .manifest import Clip
from .memory import PeakMemory


@dataclass(frozen=True)
class Step:
    clip: Clip
    contestant: Contestant
    timed: bool = True
    reference_for: str | None = None  # an ar run: the contestant whose runs it is paired with


@dataclass
class Outcome:
    """One contestant on one clip."""

    skipped: str | None = None
    runs: list[Run] = field(default_factory=list)
    reference_runs: list[Run] = field(default_factory=list)  # ar's runs interleaved with these
    peak_mib: float = 0.0


def schedule(clips: list[Clip], contestants: list[Contestant], warmup: int, repeat: int) -> list[Step]:
    """Every run of the bench in order; contestants[0] is the reference every other one is paired with.

    Peers are measured after all of specvoice's methods, each still paired with its own runs of ar: a peer
    can leave work behind in the process (CTranslate2's OpenMP threads keep spinning after a call), which
    would otherwise slow the method measured next and bias its ratio.
    """
    reference, others = contestants[0], contestants[1:]
    steps = []
    for contestant in contestants:
        # warm up on the first clip the contestant accepts: first calls pay for lazy initialisation
        first = next((c for c in clips if contestant.skip_reason(c.seconds) is None), None)
        steps += [Step(first, contestant, timed=False)] * (warmup if first else 0)
    methods = [c for c in others if not c.peer]
    phases = [methods, [c for c in others if c not in methods]] if others else [[]]
    for phase_index, phase in enumerate(phases):
        for clip in clips:
            partners = [c for c in phase if c.skip_reason(clip.seconds) is None]
            for partner in partners:
                steps += [Step(clip, reference, reference_for=partner.name), Step(clip, partner)] * repeat
            if not partners and phase_index == 0:
                steps += [Step(clip, reference)] * repeat
    return steps


def measure(steps: Iterable[Step], contestants: list[Contestant], clips: list[Clip],
            memory: PeakMemory) -> dict[str, dict[str, Outcome]]:
    """Run the steps; outcomes by clip id, then by contestant name."""
    outcomes = {clip.id: {c.name: Outcome(skipped=c.skip_reason(clip.seconds)) for c in contestants} for clip in clips}
    for step in steps:
        memory.reset()
        run = step.contestant.run(step.clip.audio)
        if step.timed:
            outcome = outcomes[step.clip.id][step.contestant.name]
            outcome.runs.append(run)
            outcome.peak_mib = max(outcome.peak_mib, run.peak_mib if run.peak_mib is not None else memory.peak_mib())
            if step.reference_for:
                outcomes[step.clip.id][step.reference_for].reference_runs.append(run)
    return outcomes
