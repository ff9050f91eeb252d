"""Word timestamps: specvoice (ar, base int8) against faster-whisper (base int8) on the dev clips.

Both greedy (beam 1, temperature 0, no fallback), English, VAD off, word_timestamps on, same CTranslate2 weights.
Words are paired by sequence matching of their normalised text; the table gives the median and 90th percentile
of |start difference| and |end difference| over the pairs.

Run: .venv/bin/python scripts/word_timing.py [--speech ../shared/speech] [--threads 2]
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from specvoice.audio import load_audio
from specvoice.bench.words import faster_whisper_model, faster_whisper_words, paired_differences, specvoice_words
from specvoice.models import ctranslate2_folder, load_whisper
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--speech", type=Path, default=Path("../shared/speech"))
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)

rows = [json.loads(line) for line in (args.speech / "manifest.jsonl").read_text().splitlines() if line.strip()]
ours = Transcriber(load_whisper("base", int8=True), None, DecodingOptions(
    "ar", language="en", word_timestamps=True, temperature_increment_on_fallback=0.0))
theirs = faster_whisper_model(ctranslate2_folder("base"), args.threads)

results = []  # per clip: (over 30 s, our word count, their word count, |start| differences, |end| differences)
for row in rows:
    audio = load_audio(args.speech / row["audio"])
    our_words, their_words = specvoice_words(ours.transcribe(audio)), faster_whisper_words(theirs, audio, "en")
    starts, ends = paired_differences(our_words, their_words)
    results.append((row["seconds"] > 30, len(our_words), len(their_words), starts, ends))
    print(f"{row['id']}: {len(starts)} pairs of {len(our_words)}/{len(their_words)} words, "
          f"max |start| {max(starts, default=0):.2f} s, max |end| {max(ends, default=0):.2f} s", flush=True)

print("\n| clips | words (ours / faster-whisper) | paired | start: median | p90 | max | end: median | p90 | max |")
print("|---|---|---|---|---|---|---|---|---|")
for name, chosen in (("up to 30 s", [r for r in results if not r[0]]), ("over 30 s", [r for r in results if r[0]]),
                     ("all", results)):
    starts, ends = (np.concatenate([r[i] for r in chosen]) for i in (3, 4))
    cells = [f"{np.median(d):.2f} s | {np.percentile(d, 90):.2f} s | {d.max():.2f} s" for d in (starts, ends)]
    print(f"| {name} ({len(chosen)}) | {sum(r[1] for r in chosen)} / {sum(r[2] for r in chosen)} | {len(starts)} | "
          f"{cells[0]} | {cells[1]} |")
