"""From runs to the numbers in the report: per clip, per contestant, and speed-ups per kind of clip.

Speed-ups are ratios of summed times (all of ar's paired runs over all of the contestant's), so long clips
weigh by how long they take, as they do for a user; per-clip ratios are in the per-clip rows.
"""

from __future__ import annotations

from statistics import mean

from .contestants import TOKENS, Contestant, Run
from .manifest import Clip
from .normalize import WordErrors, normalize, word_errors
from .runner import Outcome

ALL_CLIPS = "all clips"


def _total(runs: list[Run], decoder: bool) -> float | None:
    values = [run.decoder_seconds if decoder else run.seconds for run in runs]
    return None if not values or None in values else sum(values)


def _speedup(outcomes: list[Outcome], decoder: bool) -> float | None:
    ours = _total([run for o in outcomes for run in o.runs], decoder)
    reference = _total([run for o in outcomes for run in o.reference_runs], decoder)
    return reference / ours if ours and reference is not None else None


def _identical(run: Run, reference: Run, identical_by: str) -> bool:
    if identical_by == TOKENS:
        return run.tokens == reference.tokens
    return normalize(run.text) == normalize(reference.text)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def clip_row(clip: Clip, contestant: Contestant, outcome: Outcome, agree_with: Outcome, is_reference: bool) -> dict:
    """One contestant on one clip; `agree_with` is the outcome its output must equal."""
    if outcome.skipped:
        return {"skipped": outcome.skipped}
    run = outcome.runs[0]  # decoding is deterministic: every run of a clip gives the same output
    errors = word_errors(clip.reference, run.text)
    seconds = mean(r.seconds for r in outcome.runs)
    decoder = _total(outcome.runs, decoder=True)
    return {
        "text": run.text,
        "errors": errors.errors, "words": errors.words, "wer": _round(errors.rate),
        "seconds": _round(seconds), "decoder_seconds": _round(_ratio(decoder, len(outcome.runs))),
        "rtf": _round(seconds / clip.seconds),
        "speedup": 1.0 if is_reference else _round(_speedup([outcome], decoder=False), 3),
        "decoder_speedup": 1.0 if is_reference else _round(_speedup([outcome], decoder=True), 3),
        "emitted": run.emitted, "target_passes": run.target_passes,
        "passes_per_token": _round(_ratio(run.target_passes, run.emitted)),
        "accepted_length": _round(_ratio(run.emitted, run.target_passes), 3),
        "identical": _identical(run, agree_with.runs[0], contestant.identical_by),
        "runs": len(outcome.runs),
        "peak_mib": round(outcome.peak_mib, 1),
    }


def contestant_summary(contestant: Contestant, clips: list[Clip], rows: list[dict], outcomes: list[Outcome],
                       is_reference: bool) -> dict:
    measured = [(clip, row) for clip, row in zip(clips, rows) if "skipped" not in row]
    errors = sum((WordErrors(row["errors"], row["words"]) for _, row in measured), WordErrors())
    seconds = sum(row["seconds"] for _, row in measured)
    decoder = [row["decoder_seconds"] for _, row in measured]
    passes = [row["target_passes"] for _, row in measured]
    emitted = sum(row["emitted"] or 0 for _, row in measured)
    return {
        "name": contestant.name,
        "clips": len(measured), "skipped_clips": len(rows) - len(measured),
        "wer": _round(errors.rate), "errors": errors.errors, "words": errors.words,
        "seconds": _round(seconds),
        "decoder_seconds": None if None in decoder else _round(sum(decoder)),
        "audio_seconds": _round(sum(clip.seconds for clip, _ in measured), 3),
        "rtf": _round(_ratio(seconds, sum(clip.seconds for clip, _ in measured))),
        "speedup": 1.0 if is_reference else _round(_speedup(outcomes, decoder=False), 3),
        "decoder_speedup": 1.0 if is_reference else _round(_speedup(outcomes, decoder=True), 3),
        "passes_per_token": None if None in passes else _round(_ratio(sum(passes), emitted)),
        "accepted_length": None if None in passes else _round(_ratio(emitted, sum(passes)), 3),
        "identical_rate": _round(_ratio(sum(row["identical"] for _, row in measured), len(measured)), 3),
        "identical_by": contestant.identical_by,
        "identical_to": contestant.identical_to,
        "peak_mib": max((row["peak_mib"] for _, row in measured), default=None),
    }


def summarise(clips: list[Clip], contestants: list[Contestant], outcomes: dict[str, dict[str, Outcome]]) -> dict:
    """The per-clip rows, the per-contestant summary and end-to-end speed-ups by clip group."""
    reference = contestants[0].name
    rows = {c.name: [clip_row(clip, c, outcomes[clip.id][c.name], outcomes[clip.id][c.identical_to or reference],
                              c.name == reference) for clip in clips] for c in contestants}
    summary = [contestant_summary(c, clips, rows[c.name], [outcomes[clip.id][c.name] for clip in clips],
                                  c.name == reference) for c in contestants]
    kinds = sorted({clip.group for clip in clips})
    groups = [ALL_CLIPS] + kinds if len(kinds) > 1 else kinds
    by_group = {
        c.name: {group: _round(_speedup([outcomes[clip.id][c.name] for clip in clips
                                         if group in (ALL_CLIPS, clip.group)], decoder=False), 3) for group in groups}
        for c in contestants[1:]
    }
    per_clip = [{"id": clip.id, "kind": clip.kind, "noisy": clip.noisy, "seconds": round(clip.seconds, 3),
                 "reference": clip.reference, "results": {c.name: rows[c.name][i] for c in contestants}}
                for i, clip in enumerate(clips)]
    return {"summary": summary, "speedup_by_group": by_group, "clips": per_clip}
