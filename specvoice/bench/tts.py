"""`specvoice bench --task tts`: the token stages of a TTS model sampled with ar and with ssd at each beta, on the
same sentences and seeds, and how intelligible the audio stays (SSD's measure: WER of a transcription of each
synthesized sentence against its text, here specvoice's own Whisper transcription).

Runs are interleaved (every contestant on a sentence before the next sentence) so machine drift spreads over
all of them. Speed is LM-stage seconds per second of audio: sampled lengths differ between runs, so the time
per audio second is what compares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine.stats import DecodeStats
from ..files import write_atomic
from ..synthesize import Synthesizer
from .normalize import WordErrors, word_errors


def speakable(text: str) -> str:
    """Transcripts in capitals (LibriSpeech's) as sentence case: a TTS front end may spell capitals out."""
    return text.capitalize() if text.isupper() else text


@dataclass
class TtsContestant:
    name: str
    synthesizer: Synthesizer


def tts_contestants(synthesizer: Synthesizer, betas: list[float]) -> tuple[list[TtsContestant], list[str]]:
    """ar first (the reference), then ssd at each beta; the offline voice alone. Also notes on what is left out."""
    speaker, options = synthesizer.speaker, synthesizer.options
    if not speaker.autoregressive:
        return [TtsContestant(options.model or "offline voice", synthesizer)], [
            "the offline voice is not autoregressive: WER only"]
    chosen = [TtsContestant("ar", synthesizer.with_options(replace(options, method="ar", draft=None)))]
    if not speaker.has_draft:
        return chosen, ["no draft for this model: only ar measured (give --tts-draft)"]
    return chosen + [TtsContestant(f"ssd beta={beta:g}", synthesizer.with_options(replace(options, method="ssd",
                                                                                          beta=beta)))
                     for beta in betas], []


@dataclass
class _Totals:
    lm_seconds: float = 0.0
    audio_seconds: float = 0.0
    stats: DecodeStats = field(default_factory=DecodeStats)
    errors: WordErrors = WordErrors()
    runs: int = 0


def run_tts_bench(texts: list[tuple[str, str]], contestants: list[TtsContestant],
                  transcribe: Callable[[np.ndarray, int], str], repeat: int = 1, warmup: int = 1) -> dict:
    """Per-contestant totals and per-sentence rows; transcribe(audio, rate) -> text."""
    for contestant in contestants:  # untimed: first-call costs (allocation, kernels) out of the numbers
        for _ in range(warmup):
            contestant.synthesizer.synthesize(texts[0][1])
    totals = {c.name: _Totals() for c in contestants}
    rows = []
    for identifier, text in texts:
        for run in range(repeat):
            for contestant in contestants:
                result = contestant.synthesizer.synthesize(text)
                heard = transcribe(result.audio, result.sample_rate)
                counted = word_errors(text, heard)
                total = totals[contestant.name]
                total.lm_seconds += result.lm_seconds
                total.audio_seconds += result.seconds
                total.errors += counted
                total.runs += 1
                for key in ("tokens", "target_passes", "draft_passes", "drafted", "accepted"):
                    setattr(total.stats, key, getattr(total.stats, key) + getattr(result.stats, key))
                rows.append({"id": identifier, "run": run, "name": contestant.name, "text": text, "heard": heard,
                             "audio_seconds": round(result.seconds, 3), "lm_seconds": round(result.lm_seconds, 4),
                             "wer": round(counted.rate, 4), **result.stats.as_dict()})
    return {"summary": _summary(totals), "runs": rows}


def _summary(totals: dict[str, _Totals]) -> list[dict]:
    reference = next(iter(totals.values()))
    per_audio = lambda t: t.lm_seconds / t.audio_seconds if t.audio_seconds and t.lm_seconds else None
    summary = []
    for name, t in totals.items():
        ratio, reference_ratio = per_audio(t), per_audio(reference)
        summary.append({
            "name": name, "runs": t.runs, "audio_seconds": round(t.audio_seconds, 2), "wer": round(t.errors.rate, 4),
            "lm_seconds_per_audio_second": None if ratio is None else round(ratio, 4),
            "speedup": None if ratio is None or reference_ratio is None else round(reference_ratio / ratio, 3),
            "tokens_per_target_pass": round(t.stats.mean_accepted_length, 3) if t.stats.tokens else None,
            "acceptance": round(t.stats.acceptance_rate, 3) if t.stats.drafted else None,
        })
    return summary


COLUMNS = (("method", "name"), ("runs", "runs"), ("audio s", "audio_seconds"), ("WER", "wer"),
           ("LM s / audio s", "lm_seconds_per_audio_second"), ("speed-up vs ar", "speedup"),
           ("tokens / target pass", "tokens_per_target_pass"), ("acceptance", "acceptance"))


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key in ("wer", "acceptance"):
        return f"{value:.1%}"
    if key == "speedup":
        return f"{value:.2f}x"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown_table(summary: list[dict]) -> str:
    lines = ["| " + " | ".join(header for header, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(key, row[key]) for _, key in COLUMNS) + " |" for row in summary]
    return "\n".join(lines)


EXPLANATIONS = [
    "LM s / audio s: seconds in the autoregressive token stages (Bark: semantic + coarse) per second of audio "
    "produced; speed-up vs ar: ar's LM s / audio s over the method's, same sentences and seeds, interleaved.",
    "tokens / target pass: tokens emitted per forward pass of the target; acceptance: accepted / drafted tokens.",
    "WER: specvoice's own transcription of each synthesized sentence against its text (Whisper's normaliser), pooled.",
]


def write_tts_reports(results: dict, output_dir: Path, command: str, notes: list[str]) -> list[Path]:
    json_path, md_path = output_dir / "tts-results.json", output_dir / "tts-results.md"
    write_atomic(json_path, json.dumps({**results, "command": command, "notes": notes}, indent=2))
    body = [f"`{command}`", "", markdown_table(results["summary"]), ""] + [f"- {line}" for line in
                                                                          EXPLANATIONS + notes]
    write_atomic(md_path, "\n".join(body) + "\n")
    return [json_path, md_path]
