"""WER beyond one run of the dev clips: every clip three times, after 0, 50 and 130 ms of leading silence.

On a few dozen clips a WER comparison is decided by a handful of borderline words (a digit string grouped
one way or another moves it by two points). Shifting the audio by a few frames gives every such decision a
fresh chance, so systematic differences show and coin flips average out. Compared, each with its own
defaults (beam 1, English): specvoice base int8 `ar` as it runs by default on this CPU (the encoder's
self-attention in bfloat16, 8-bit activations), with float32 attention, and with 7-bit activations (its
int8 before 8-bit activations), and faster-whisper base int8.

Run: .venv/bin/python scripts/shift_wer.py /tmp/bm/short.jsonl /tmp/bm/long.jsonl  (needs faster-whisper:
pip install 'specvoice[bench]'); prints the totals, then every instance whose errors differ between the
default and each variant.
"""

import json
import sys

import numpy as np
import torch

import specvoice.engine.linear as linear
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


def specvoice_texts(bfloat16: bool = True, seven_bit: bool = False) -> list[str]:
    native, quantisation = encoder.native_bfloat16, linear.unit_quantisation
    encoder.native_bfloat16 = (lambda: True) if bfloat16 else (lambda: False)
    if seven_bit:
        linear.unit_quantisation = lambda fixed: (2 / 127, 64, True)
    try:
        transcriber = Transcriber(load_whisper("base", int8=True), None, DecodingOptions("ar", language="en"))
        return [transcriber.transcribe(shifted(row, shift)).text for row, shift in instances]
    finally:
        encoder.native_bfloat16, linear.unit_quantisation = native, quantisation


def faster_whisper_texts() -> list[str]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(ctranslate2_folder("base")), device="cpu", compute_type="int8", cpu_threads=2)
    return ["".join(s.text for s in model.transcribe(shifted(row, shift), beam_size=1, language="en")[0])
            for row, shift in instances]


DEFAULT = "specvoice int8 (bfloat16 attention, 8-bit activations)"
contestants = {DEFAULT: specvoice_texts(),
               "specvoice int8, float32 attention": specvoice_texts(bfloat16=False),
               "specvoice int8, 7-bit activations": specvoice_texts(seven_bit=True),
               "faster-whisper int8": faster_whisper_texts()}
errors = {name: [word_errors(row["text"], text) for (row, _), text in zip(instances, texts)]
          for name, texts in contestants.items()}
words = sum(e.words for e in next(iter(errors.values())))
for name, found in errors.items():
    total = sum(e.errors for e in found)
    print(f"{name}: {total} errors / {words} words = {100 * total / words:.2f}% over {len(instances)} instances")
for variant in ("specvoice int8, float32 attention", "specvoice int8, 7-bit activations"):
    print(f"instances whose errors differ, {variant} -> default:")
    for (row, shift), a, b in zip(instances, errors[variant], errors[DEFAULT]):
        if a.errors != b.errors:
            print(f"  {row['id']} +{shift * 1000:.0f} ms: {a.errors} -> {b.errors}")
