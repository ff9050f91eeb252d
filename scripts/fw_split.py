"""Encoder-only and the rest (decoder; features on faster-whisper's side): specvoice ar-int8 vs faster-whisper int8 on the short clips,
each side in a process of its own (in one process their thread pools slow each other), run twice alternately.

Run: python scripts/fw_split.py  (after writing /tmp/bm/short.jsonl as BENCHMARKS.md shows)
"""
import json
import subprocess
import sys
import time

MANIFEST = "/tmp/bm/short.jsonl"


def ours(audios):
    from specvoice.cli import _load_models
    from specvoice.options import DecodingOptions, ModelOptions
    from specvoice.transcribe import Transcriber

    target, _, _ = _load_models(ModelOptions(dtype="int8", threads=2), None)
    model = Transcriber(target, None, DecodingOptions("ar", language="en", temperature_increment_on_fallback=0.0,
                                                      condition_on_previous_text=False, no_speech_threshold=None))
    model.transcribe(audios[0])
    total = encoder = 0.0
    for audio in audios:
        began = time.perf_counter()
        result = model.transcribe(audio)
        total += time.perf_counter() - began
        encoder += result.encoder_seconds  # log-mel features included (~7 ms a clip): counted against us
    return total, encoder


def faster_whisper(audios):
    import numpy as np
    from faster_whisper import WhisperModel

    from specvoice.models.resolve import ctranslate2_folder

    model = WhisperModel(str(ctranslate2_folder("base")), device="cpu", compute_type="int8", cpu_threads=2)
    options = dict(beam_size=1, language="en", temperature=0.0, condition_on_previous_text=False, vad_filter=False,
                   without_timestamps=True, no_speech_threshold=None)
    "".join(s.text for s in model.transcribe(audios[0], **options)[0])
    total = encoder = 0.0
    for audio in audios:
        began = time.perf_counter()
        "".join(s.text for s in model.transcribe(audio, **options)[0])
        total += time.perf_counter() - began
    for audio in audios:  # its encoder alone, on its own features padded to 30 s as its transcribe does
        features = model.feature_extractor(audio)[..., :3000]
        features = np.pad(features, ((0, 0), (0, 3000 - features.shape[-1])))
        began = time.perf_counter()
        model.encode(features)
        encoder += time.perf_counter() - began
    return total, encoder


def side(name):
    import torch

    from specvoice.audio import load_audio

    torch.set_num_threads(2)
    audios = [load_audio(json.loads(line)["audio"]) for line in open(MANIFEST)]
    total, encoder = (ours if name == "ours" else faster_whisper)(audios)
    print(json.dumps({"total": total, "encoder": encoder}))


def main():
    runs = {"ours": [], "fw": []}
    for _ in range(2):
        for name in runs:
            out = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {name: min(r, key=lambda x: x["total"]) for name, r in runs.items()}
    for name, r in best.items():
        print(f"{name}: end to end {r['total']:.2f} s, encoder {r['encoder']:.2f} s, rest {r['total'] - r['encoder']:.2f} s")
    o, f = best["ours"], best["fw"]
    print(f"ratio fw/ours: encoder {f['encoder'] / o['encoder']:.2f}, features + decoder "
          f"{(f['total'] - f['encoder']) / (o['total'] - o['encoder']):.2f}, end to end {f['total'] / o['total']:.2f}")


if __name__ == "__main__":
    side(sys.argv[1]) if len(sys.argv) > 1 else main()
