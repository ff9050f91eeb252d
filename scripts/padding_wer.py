"""How a window shorter than 30 s is padded, and what it does to WER.

specvoice, openai-whisper's transcribe() and faster-whisper take the log-mel of the whole audio and pad a short
window's *features* with zeros (whisper/features.py `LogMel`); transformers' pipeline pads the window's *audio*
with zeros before the log-mel, so its padded frames hold the log-mel of silence. Same weights, same greedy
decoding (base, int8, `ar`, no fallback), both paddings, every clip.

Run: .venv/bin/python scripts/padding_wer.py /tmp/bm/short.jsonl; prints each clip whose errors differ, then
the totals.
"""

import json
import sys

import torch

import specvoice.transcribe.transcriber as transcriber
from specvoice.audio import load_audio
from specvoice.bench.normalize import WordErrors, word_errors
from specvoice.models import load_whisper
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.whisper.features import HOP, WINDOW_SAMPLES, LogMel, log_mel

torch.set_num_threads(2)


class AudioPadded(LogMel):
    """transformers' way: each window's audio, zero-padded to 30 s, then its own log-mel."""

    def window(self, seek: int, n_mels: int) -> torch.Tensor:
        return log_mel(self.audio[seek * HOP: seek * HOP + WINDOW_SAMPLES], n_mels)


paddings = {"features padded (openai-whisper transcribe, faster-whisper, specvoice)": LogMel,
            "audio padded (transformers)": AudioPadded}
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
base = load_whisper("base", int8=True)
options = DecodingOptions("ar", language="en", temperature_increment_on_fallback=0, no_speech_threshold=None,
                          condition_on_previous_text=False)
totals = {name: WordErrors() for name in paddings}
for row in rows:
    audio = load_audio(row["audio"])
    errors = {}
    for name, features in paddings.items():
        transcriber.LogMel = features
        errors[name] = word_errors(row["text"], Transcriber(base, None, options).transcribe(audio).text)
        totals[name] += errors[name]
    if len({e.errors for e in errors.values()}) > 1:
        print(row["id"], {name: e.errors for name, e in errors.items()})
for name, total in totals.items():
    print(f"{name}: {total.errors} errors / {total.words} words = {100 * total.errors / total.words:.2f}%")
