"""What one draft step and one verify pass cost, as a share of one target step (int8 base on the CPU).

On one clip's window, after its prompt: a one-token pass of the target (exact, int8), one of each draft (the
shipped shallow draft reading the target's encoder output, tiny.en with its own encoder pass, its per-window cost
shown apart), and target verify passes of a chain of k tokens. The kinds are interleaved round by round and each
reported as its median, so a busy machine skews them alike.

Run: python scripts/step_costs.py ../shared/speech/whisper_jfk.wav [rounds]
"""
import os
import statistics
import sys
import time

import torch


def main(path: str, rounds: int = 30) -> None:
    from specvoice.audio import load_audio
    from specvoice.engine.decoder import Session
    from specvoice.engine.tree import TokenTree
    from specvoice.models import load_draft, load_whisper
    from specvoice.whisper.decoder import WhisperDecoder
    from specvoice.whisper.features import LogMel
    from specvoice.whisper.shallow import SHALLOW, ShallowDecoder

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    target = load_whisper("base", int8=True)
    features = LogMel(load_audio(path))
    window = features.window(0, target.model.config.num_mel_bins)
    target_decoder = WhisperDecoder(target)
    target_decoder.encode(window)
    shallow = ShallowDecoder(load_draft(SHALLOW, target), target_decoder)
    shallow.encode(window, features.frames)
    tiny = WhisperDecoder(load_whisper("tiny.en"), approximate=True)  # as drafting runs it
    prompt = target.decode_task("en", "transcribe", False).prompt
    text = target.tokenizer.encode(" And so my fellow Americans, ask not what your country can do for you")

    def step(decoder):
        session = Session(decoder)
        session.feed(prompt + text[:4])

        def one_token():
            session.feed([text[4]])
            session.truncate(len(prompt) + 4)
        return one_token

    def verify(rows: int):
        session = Session(target_decoder)
        session.feed(prompt)
        tree = TokenTree.build(text[:1], [text[1: rows]], max_nodes=64)
        return lambda: session.verify(tree)

    def tiny_encoder():
        tiny.encode(features.window(0, 80), features.frames)

    tiny_encoder()

    kinds = {"target step": step(target_decoder), "shallow draft step": step(shallow), "tiny.en draft step": step(tiny),
             **{f"verify {k} rows": verify(k) for k in (2, 4, 8, 16)}, "tiny.en encoder (per window)": tiny_encoder}
    times = {name: [] for name in kinds}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, run in kinds.items():
                began = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - began)
    base = statistics.median(times["target step"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:30s} {median * 1000:8.2f} ms  {median / base:6.2f} target steps")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
