"""How much of what the target says the shallow draft can say at all, and what a larger draft vocabulary buys.

Decodes every clip of the manifests with `ar` (int8 base, plain greedy as the bench decodes) and prints the share
of its text tokens inside the shipped draft's vocabulary and inside the lowest N token ids. With --extend N, the
draft's vocabulary also takes every id below N, each new token's head row being the target's own output row
(untrained), and `spec` (or --method) runs on the clips: tokens per target pass and decoder seconds.

Run: python scripts/draft_coverage.py /tmp/bm/short.jsonl /tmp/bm/long.jsonl [--extend 32768 --method spec]
"""
import argparse
import dataclasses
import json

import torch


def extended(draft, target, below: int):
    """The draft with every id below `below` added to its vocabulary (head rows: the target's output rows)."""
    old = draft.vocabulary.tolist()
    new = sorted(set(old) | set(range(min(below, target.tokenizer.eot))))
    rows = target.float_weights("proj_out").proj_out.weight.detach().float()
    at = {token: i for i, token in enumerate(old)}
    head = torch.nn.Linear(draft.head.in_features, len(new), bias=False)
    with torch.no_grad():
        for i, token in enumerate(new):
            head.weight[i] = draft.head.weight[at[token]] if token in at else rows[token]
    draft.head, draft.vocabulary = head, torch.tensor(new)
    return draft


def main() -> None:
    from specvoice.audio.load import load_audio
    from specvoice.bench.contestants import plain_greedy
    from specvoice.models import load_draft, load_whisper
    from specvoice.transcribe.transcriber import Transcriber

    parser = argparse.ArgumentParser()
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--extend", type=int, default=0)
    parser.add_argument("--method", default="spec")
    parser.add_argument("--options", default="", help="DecodingOptions as k=v,k=v (e.g. confidence=0.8)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    target = load_whisper("base", int8=True)
    audios = [load_audio(json.loads(line)["audio"]) for path in args.manifests for line in open(path)]
    said = [t for audio in audios for t in Transcriber(target, None, plain_greedy("ar")).transcribe(audio).tokens]
    text = [t for t in said if t < target.tokenizer.eot]
    draft = load_draft("shallow", target)
    vocabulary = set(draft.vocabulary.tolist())
    print(f"{len(text)} text tokens; the shipped draft's {len(vocabulary)} cover "
          f"{100 * sum(t in vocabulary for t in text) / len(text):.1f}%")
    for below in (4096, 8192, 16384, 32768):
        print(f"ids below {below}: {100 * sum(t < below for t in text) / len(text):.1f}%")
    if args.extend:
        options = plain_greedy(args.method)
        for pair in filter(None, args.options.split(",")):
            name, value = pair.split("=")
            options = dataclasses.replace(options, **{name: type(getattr(options, name))(value)})
        transcriber = Transcriber(target, extended(draft, target, args.extend), options)
        tokens = passes = 0
        seconds = 0.0
        for audio in audios:
            result = transcriber.transcribe(audio)
            tokens, passes, seconds = tokens + result.stats.tokens, passes + result.stats.target_passes, \
                seconds + result.decoder_seconds
        print(f"{args.method} with ids below {args.extend} added: {tokens / passes:.2f} tokens a pass, "
              f"decoder {seconds:.2f} s")


if __name__ == "__main__":
    main()
