"""WER of base (int8, ar) on every clip of a speech manifest under four settings: greedy as before issue 9 (no
fallback, no no-speech rule, no previous text), openai-whisper's rules (the defaults), the rules with --vad, and
--vad with the rules but no previous-text conditioning.

Usage: .venv/bin/python scripts/wer_rules.py [speech folder]; prints per-clip errors, then a markdown table.
"""

import json
import sys
from pathlib import Path

import torch

from specvoice.audio import load_audio
from specvoice.bench.normalize import WordErrors, word_errors
from specvoice.models import load_whisper
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber

torch.set_num_threads(1)
speech = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/speech")
rows = [json.loads(line) for line in (speech / "manifest.jsonl").read_text().splitlines() if line.strip()]
base = load_whisper("base", int8=True)
settings = {
    "greedy as before": DecodingOptions("ar", language="en", temperature_increment_on_fallback=0,
                                        no_speech_threshold=None, condition_on_previous_text=False),
    "openai-whisper's rules": DecodingOptions("ar", language="en"),
    "the rules + --vad": DecodingOptions("ar", language="en", vad_filter=True),
    "the rules + --vad, no previous text": DecodingOptions("ar", language="en", vad_filter=True,
                                                           condition_on_previous_text=False),
}
totals = {name: [WordErrors(), 0, 0] for name in settings}
for row in rows:
    audio = load_audio(speech / row["audio"])
    for name, options in settings.items():
        result = Transcriber(base, None, options).transcribe(audio)
        errors = word_errors(row["text"], result.text)
        totals[name][0] += errors
        totals[name][1] += result.retries
        totals[name][2] += result.silent_windows
        print(row["id"], name, errors.errors, errors.words, result.retries, result.silent_windows, flush=True)
print("| setting | WER | errors / words | windows retried hotter | silent windows |")
print("| --- | --- | --- | --- | --- |")
for name, (errors, retries, silent) in totals.items():
    print(f"| {name} | {errors.rate:.4f} | {errors.errors} / {errors.words} | {retries} | {silent} |")
