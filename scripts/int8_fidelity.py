"""How faithful each tool's int8 is to its own float32 model: teacher-forced next-token decisions.

For every short clip (30 s or less) of the manifest, after 0, 50 and 130 ms of leading silence (the shifts of
scripts/shift_wer.py), specvoice's float32 greedy transcript is the teacher.
At every prefix (the task tokens, then the transcript token by token) each tool predicts the next token in
int8 and in float32; a prediction that differs is a place where int8 can change the transcript. specvoice
runs its own decoder; faster-whisper's engine (CTranslate2) runs `generate` from the prefix on its own
encoder output, with its suppression rules off so both tools pick from the bare logits.

Run: python scripts/int8_fidelity.py /tmp/bm/short.jsonl  (after writing the manifest as BENCHMARKS.md shows)
"""
import json
import sys

import numpy as np
import torch

SHIFTS = (0.0, 0.05, 0.13)  # seconds of leading silence, as scripts/shift_wer.py


def main(manifest: str) -> None:
    import ctranslate2
    from faster_whisper import WhisperModel as FasterWhisper

    from specvoice.audio import SAMPLE_RATE, load_audio
    from specvoice.engine.decoder import forward_chain
    from specvoice.models import load_whisper
    from specvoice.models.resolve import ctranslate2_folder
    from specvoice.options import DecodingOptions
    from specvoice.transcribe import Transcriber
    from specvoice.whisper.decoder import WhisperDecoder
    from specvoice.whisper.features import LogMel

    torch.set_num_threads(2)
    float32 = load_whisper("base")
    prompt = float32.tokenizer.prompt("en", "transcribe", False)
    eot = float32.tokenizer.eot
    ours = {"float32": WhisperDecoder(float32), "int8": WhisperDecoder(load_whisper("base", int8=True))}
    teacher = Transcriber(float32, None, DecodingOptions("ar", language="en"))
    folder = str(ctranslate2_folder("base"))
    theirs = {kind: FasterWhisper(folder, device="cpu", compute_type=kind, cpu_threads=2) for kind in ours}
    differ = {"specvoice": 0, "faster-whisper": 0}
    instances = {"specvoice": 0, "faster-whisper": 0}
    float32_agree = total = 0
    clips = [json.loads(line) for line in open(manifest)]
    for shift, clip in ((shift, clip) for shift in SHIFTS for clip in clips):
        audio = load_audio(clip["audio"])
        audio = np.concatenate([np.zeros(int(shift * SAMPLE_RATE), audio.dtype), audio])
        if len(audio) > 30 * SAMPLE_RATE:
            continue
        sequence = prompt + [t for t in teacher.transcribe(audio).tokens if t < eot] + [eot]
        prefixes = [sequence[:i] for i in range(len(prompt), len(sequence))]
        features = LogMel(audio).window(0, 80)
        mine = {}
        for kind, decoder in ours.items():
            decoder.encode(features)
            mine[kind] = forward_chain(decoder, sequence[:-1], 0)[len(prompt) - 1:].argmax(-1).tolist()
        padded = theirs["float32"].feature_extractor(audio)[..., :3000]
        padded = np.pad(padded, ((0, 0), (0, 3000 - padded.shape[-1])))[None].astype(np.float32)
        other = {}
        for kind, model in theirs.items():
            encoded = model.model.encode(ctranslate2.StorageView.from_array(padded))
            other[kind] = []
            for prefix in prefixes:  # its result holds the prefix past the task tokens, then what it generated
                got = model.model.generate(encoded, [prefix], beam_size=1, max_length=448, suppress_blank=False,
                                           suppress_tokens=[])[0].sequences_ids[0]
                other[kind].append(got[len(prefix) - len(prompt)] if len(got) > len(prefix) - len(prompt) else eot)
        a = sum(x != y for x, y in zip(mine["int8"], mine["float32"]))
        b = sum(x != y for x, y in zip(other["int8"], other["float32"]))
        differ["specvoice"] += a
        differ["faster-whisper"] += b
        instances["specvoice"] += a > 0
        instances["faster-whisper"] += b > 0
        float32_agree += sum(x == y for x, y in zip(mine["float32"], other["float32"]))
        total += len(prefixes)
        print(f"{clip['id'][:40]:40s} +{shift * 1000:3.0f} ms {len(prefixes):3d} predictions; int8 differs from float32: "
              f"specvoice {a}, faster-whisper {b}", flush=True)
    for tool, count in differ.items():
        print(f"{tool} int8: {count} of {total} predictions differ from its float32 ({count / total:.2%})")
    print(f"instances with a difference: specvoice {instances['specvoice']}, faster-whisper {instances['faster-whisper']}")
    print(f"the two float32 models agree on {float32_agree} of {total}")


if __name__ == "__main__":
    main(sys.argv[1])
