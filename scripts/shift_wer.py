"""WER beyond one run of the dev clips: every clip three times, after 0, 50 and 130 ms of leading silence.

On a few dozen clips a WER comparison is decided by a handful of borderline words (a digit string grouped
one way or another moves it by two points). Shifting the audio by a few frames gives every such decision a
fresh chance, so systematic differences show and coin flips average out. Compared, each with its own
defaults (beam 1, English): specvoice base int8 `ar` as it runs by default on this CPU (where it has AMX tiles
the encoder's linears and self-attention in bfloat16, else its self-attention in bfloat16 where the CPU
multiplies bfloat16 natively), the same with the encoder's linears in int8 (as on CPUs without AMX tiles),
specvoice base in float32 (the model itself), and faster-whisper base int8. Also printed: how many of each
one's transcripts are float32's, word for word.

Run: .venv/bin/python scripts/shift_wer.py /tmp/bm/short.jsonl /tmp/bm/long.jsonl  (needs faster-whisper:
pip install 'specvoice[bench]'); prints the totals, then every instance whose errors differ between the
default and each variant.
"""

import json
import sys

import numpy as np
import torch

from specvoice.audio import SAMPLE_RATE, load_audio
from specvoice.bench.normalize import word_errors
from specvoice.models import ctranslate2_folder, load_whisper
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.whisper import encoder

SHIFTS = (0.0, 0.05, 0.13)
torch.set_num_threads(2)
rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
instances = [(row, shift) for shift in SHIFTS for row in rows]


def shifted(row: dict, shift: float) -> np.ndarray:
    audio = load_audio(row["audio"])
    return np.concatenate([np.zeros(int(shift * SAMPLE_RATE), audio.dtype), audio])


def specvoice_texts(int8: bool = True, amx: bool | None = None) -> list[str]:
    """amx: None as this CPU has it, False as a CPU without AMX tiles (the encoder's linears in int8)."""
    tiles = encoder.amx_tiles
    if amx is not None:
        encoder.amx_tiles = lambda: amx
    try:
        transcriber = Transcriber(load_whisper("base", int8=int8), None, DecodingOptions("ar", language="en"))
        return [transcriber.transcribe(shifted(row, shift)).text for row, shift in instances]
    finally:
        encoder.amx_tiles = tiles


def faster_whisper_texts() -> list[str]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(ctranslate2_folder("base")), device="cpu", compute_type="int8", cpu_threads=2)
    return ["".join(s.text for s in model.transcribe(shifted(row, shift), beam_size=1, language="en")[0])
            for row, shift in instances]


DEFAULT = "specvoice int8 as it runs here"
FLOAT32 = "specvoice float32"
VARIANTS = ("specvoice int8, int8 encoder linears", FLOAT32)
contestants = {DEFAULT: specvoice_texts(),
               VARIANTS[0]: specvoice_texts(amx=False),
               FLOAT32: specvoice_texts(int8=False),
               "faster-whisper int8": faster_whisper_texts()}
errors = {name: [word_errors(row["text"], text) for (row, _), text in zip(instances, texts)]
          for name, texts in contestants.items()}
words = sum(e.words for e in next(iter(errors.values())))
for name, found in errors.items():
    total = sum(e.errors for e in found)
    same = sum(a.strip() == b.strip() for a, b in zip(contestants[name], contestants[FLOAT32]))
    print(f"{name}: {total} errors / {words} words = {100 * total / words:.2f}% over {len(instances)} instances; "
          f"{same} transcripts are float32's")
for variant in VARIANTS:
    print(f"instances whose errors differ, {variant} -> default:")
    for (row, shift), a, b in zip(instances, errors[variant], errors[DEFAULT]):
        if a.errors != b.errors:
            print(f"  {row['id']} +{shift * 1000:.0f} ms: {a.errors} -> {b.errors}")
