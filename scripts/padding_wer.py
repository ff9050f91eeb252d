"""Where specvoice's WER differs from faster-whisper's on short clips: how a clip shorter than 30 s is padded.

openai-whisper (and transformers, and specvoice) pad the *audio* with zeros before the log-mel, so the padded
frames hold the log-mel of silence; faster-whisper computes the log-mel of the audio alone and pads the
*features* with zeros. Same weights, same greedy decoding (base, int8, `ar`), both paddings, every clip.

Run: .venv/bin/python scripts/padding_wer.py /tmp/bm/short.jsonl  (needs faster-whisper: pip install
'specvoice[bench]'); prints each clip whose errors differ, then the totals.
"""

import json
import sys

import numpy as np
import torch
from faster_whisper.feature_extractor import FeatureExtractor

import specvoice.transcribe.transcriber as transcriber
from specvoice.audio import load_audio
from specvoice.bench.normalize import WordErrors, word_errors
from specvoice.models import load_whisper
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.whisper.features import WINDOW_SAMPLES, HOP

torch.set_num_threads(2)
faster_whisper_features = FeatureExtractor(feature_size=80)


def features_padded(window: np.ndarray, n_mels: int) -> torch.Tensor:
    """faster-whisper's way: the log-mel of the audio (its last frame dropped), zero-padded to 3000 frames."""
    features = faster_whisper_features(window)[:, :-1]
    return torch.from_numpy(np.pad(features, ((0, 0), (0, WINDOW_SAMPLES // HOP - features.shape[1])))[None].copy())


paddings = {"audio padded (openai-whisper, specvoice)": transcriber.log_mel,
            "features padded (faster-whisper)": features_padded}
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
base = load_whisper("base", int8=True)
options = DecodingOptions("ar", language="en", temperature_increment_on_fallback=0, no_speech_threshold=None,
                          condition_on_previous_text=False)
totals = {name: WordErrors() for name in paddings}
for row in rows:
    audio = load_audio(row["audio"])
    errors = {}
    for name, log_mel in paddings.items():
        transcriber.log_mel = log_mel
        errors[name] = word_errors(row["text"], Transcriber(base, None, options).transcribe(audio).text)
        totals[name] += errors[name]
    if len({e.errors for e in errors.values()}) > 1:
        print(row["id"], {name: e.errors for name, e in errors.items()})
for name, total in totals.items():
    print(f"{name}: {total.errors} errors / {total.words} words = {100 * total.errors / total.words:.2f}%")
