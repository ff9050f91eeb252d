"""How often shallow drafts say what int8 base says, teacher-forced, on real clips (validation only: no draft
trains on them).

Each clip of the manifests is cut into 30 s windows (no overlap) and decoded with int8 base twice, as
transcription decodes it: as a short clip without timestamps (the bench's setting), and with timestamps after the
text of the windows before it (the CLI's defaults: none for a short clip, up to 223 tokens in a long file). Each
draft then predicts every token the target said from the target's own tokens before it, after the prompt
transcription gives the draft: the last `draft_previous` tokens of the earlier text (none by default).
Prints one line a draft: agreement per manifest, short-clip decode / timestamped decode.

Run: python scripts/draft_agreement.py /tmp/bm/short.jsonl /tmp/bm/long.jsonl --drafts shallow other.safetensors
"""
import argparse
import json
import os

import torch

WINDOW = 3000  # mel frames: 30 s


def examples(target, manifest: str) -> list:
    """One teacher example a 30 s window of every clip in `manifest`."""
    from specvoice.audio.load import load_audio
    from specvoice.distill.teacher import PLAIN, Example, example, said
    from specvoice.options import DecodingOptions
    from specvoice.whisper.decoder import WhisperDecoder
    from specvoice.whisper.features import LogMel
    from specvoice.whisper.model import recent

    decoder, found, kept = WhisperDecoder(target), [], DecodingOptions().draft_previous
    for line in open(manifest):
        features = LogMel(load_audio(json.loads(line)["audio"]))
        so_far: list[int] = []
        for seek in range(0, features.frames, WINDOW):
            window = features.window(seek, target.model.config.num_mel_bins)
            one = example(target, decoder, (0, 5), window, min(WINDOW, features.frames - seek), "en",
                          (PLAIN, so_far))
            plain, (tokens, prompt) = one.sequences
            drafted = target.decode_task("en", "transcribe", True, recent(so_far, kept)).prompt  # as transcription
            so_far = so_far + said(target, tokens, prompt)
            found.append(Example(one.cross, [plain, (drafted + tokens[prompt:], len(drafted))]))
    return found


def main() -> None:
    from specvoice.distill.teacher import Example
    from specvoice.distill.train import agreement
    from specvoice.models import load_draft, load_whisper

    parser = argparse.ArgumentParser()
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--drafts", nargs="+", default=["shallow"])
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    target = load_whisper("base", int8=True)
    size = target.model.config.vocab_size
    found = {os.path.basename(manifest): examples(target, manifest) for manifest in args.manifests}
    for name in args.drafts:
        draft = load_draft(name, target)
        if draft.shares != (0, 5):
            raise SystemExit(f"{name}: shares {draft.shares}; this script records layers 0 and 5")
        rates = []
        for manifest, windows in found.items():
            for kind, index in (("short", 0), ("timestamps", 1)):
                rate = agreement(draft, [Example(e.cross, [e.sequences[index]]) for e in windows], size).rate
                rates.append(f"{manifest} {kind} {rate:.1%}")
        print(f"{name}: " + ", ".join(rates), flush=True)


if __name__ == "__main__":
    main()
