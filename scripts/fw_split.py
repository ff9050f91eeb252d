"""Encoder-only and the rest (features + decoder): specvoice ar-int8 vs faster-whisper int8 on the short clips.

Run: python scripts/fw_split.py  (after writing /tmp/bm/short.jsonl as BENCHMARKS.md shows)
"""
import json, time, torch
torch.set_num_threads(2)
import numpy as np
from faster_whisper import WhisperModel as FW
from specvoice.cli import _load_models
from specvoice.options import ModelOptions, DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.audio import load_audio
from specvoice.models.resolve import ctranslate2_folder
rows = [json.loads(l) for l in open("/tmp/bm/short.jsonl")]
audios = [load_audio(r["audio"]) for r in rows]
target, _, _ = _load_models(ModelOptions(dtype="int8", threads=2), None)
ours = Transcriber(target, None, DecodingOptions("ar", language="en", temperature_increment_on_fallback=0.0,
                                                 condition_on_previous_text=False, no_speech_threshold=None))
fw = FW(str(ctranslate2_folder("base")), device="cpu", compute_type="int8", cpu_threads=2)
tot = {"ours_total": 0, "ours_enc": 0, "fw_total": 0, "fw_enc": 0}
for a in audios[:2]:  # warm-up
    ours.transcribe(a); list(fw.transcribe(a, beam_size=1, language="en", temperature=0.0, condition_on_previous_text=False, without_timestamps=True)[0])
for a in audios:
    t0 = time.perf_counter(); out = ours.transcribe(a); tot["ours_total"] += time.perf_counter() - t0
    tot["ours_enc"] += out.encoder_seconds
    t0 = time.perf_counter()
    segs, _ = fw.transcribe(a, beam_size=1, language="en", temperature=0.0, condition_on_previous_text=False,
                            vad_filter=False, without_timestamps=True, no_speech_threshold=None)
    "".join(s.text for s in segs); tot["fw_total"] += time.perf_counter() - t0
    feats = fw.feature_extractor(a)[..., :3000]; feats = np.pad(feats, ((0, 0), (0, 3000 - feats.shape[-1])))
    t0 = time.perf_counter(); fw.encode(feats); tot["fw_enc"] += time.perf_counter() - t0
print({k: round(v, 2) for k, v in tot.items()})
print("encoder ratio fw/ours", round(tot["fw_enc"] / tot["ours_enc"], 2),
      "rest (features+decoder) ratio fw/ours", round((tot["fw_total"] - tot["fw_enc"]) / (tot["ours_total"] - tot["ours_enc"]), 2),
      "total ratio", round(tot["fw_total"] / tot["ours_total"], 2))
