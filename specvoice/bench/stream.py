"""`specvoice bench --task stream`: the listen pipeline on each clip, replayed at a pace, once per way of
drafting: `ar`, the previous update's hypothesis as a free draft, `specasr`'s model draft, and both.

Reports per way: commit delay (from a word's end in the audio to its commit; median and 90th percentile
over all committed words), real-time factor, target passes and decoder seconds per update, WER of the
committed text against the reference and against the offline transcript of the same file, and whether
the committed text is the same as `ar`'s (at --speed 0 every way sees the same buffers, so it must be).

Two offline transcripts: `transcribe`'s default (a clip of 30 s or less without timestamps) and with
`--timestamps`, the decoding every update of a stream does (it needs word times and segment ends). The
two can differ by a word on a clip, so what streaming itself changes is measured against the second.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ..files import write_atomic
from ..listen import FileReplay, Streamer, WhisperRecognizer, measure, run
from ..options import DecodingOptions, ListenOptions
from ..transcribe import Transcriber
from .manifest import Clip
from .normalize import WordErrors, word_errors

WAYS = {  # name: (method, previous-hypothesis draft)
    "ar": ("ar", False),
    "previous": ("ar", True),
    "specasr": ("specasr", False),
    "specasr+previous": ("specasr", True),
}


class _Silent:
    def show(self, finished, pending, tentative) -> None:
        pass


@dataclass
class StreamRun:
    way: str
    clip: str
    text: str
    delays: list[float]
    passes: list[int]
    decoder_seconds: list[float]
    compute_seconds: float
    audio_seconds: float


def stream_once(transcriber: Transcriber, audio: np.ndarray, previous: bool, listening: ListenOptions,
                speech, warn) -> tuple[str, Streamer]:
    replay = FileReplay(audio, listening.speed)
    streamer = Streamer(WhisperRecognizer(transcriber, previous), replay.clock, speech)
    with replay.running() as queue:
        run(streamer, queue, listening.step, _Silent(), warn)
    return "".join(c.word.text for c in streamer.state.committed).strip(), streamer


def run_stream_bench(clips: list[Clip], target, draft, listening: ListenOptions, warn, progress) -> dict:
    speech = None
    if listening.vad:
        from ..audio.vad import speech_probabilities as speech
    offline = Transcriber(target, None, DecodingOptions("ar"))
    timestamped = Transcriber(target, None, DecodingOptions("ar", timestamps=True))
    transcribers = {way: Transcriber(target, draft if method != "ar" else None, DecodingOptions(method))
                    for way, (method, _) in WAYS.items()}
    runs: list[StreamRun] = []
    references: dict[str, tuple[str, str, str]] = {}  # the reference, the offline text, the timestamped one
    for clip in clips:
        references[clip.id] = (clip.reference, offline.transcribe(clip.audio).text,
                               timestamped.transcribe(clip.audio).text)
        for way, (_, previous) in WAYS.items():
            text, streamer = stream_once(transcribers[way], clip.audio, previous, listening, speech, warn)
            updates = streamer.state.updates
            runs.append(StreamRun(way, clip.id, text, [c.delay for c in streamer.state.committed],
                                  [u.target_passes for u in updates], [u.decoder_seconds for u in updates],
                                  sum(u.encoder_seconds + u.decoder_seconds for u in updates), clip.seconds))
            progress(f"{clip.id} {way}: {measure(streamer, clip.seconds).line()}")
    return {"runs": runs, "references": references}


def summarise(results: dict) -> list[dict]:
    runs, references = results["runs"], results["references"]
    ar_text = {r.clip: r.text for r in runs if r.way == "ar"}

    def pooled(texts) -> float:
        return sum((word_errors(truth, text) for truth, text in texts), WordErrors()).rate

    def worst_gap(mine, offline: int) -> float:  # the most a clip's WER rose over that offline transcript's
        return max(word_errors(references[r.clip][0], r.text).rate -
                   word_errors(references[r.clip][0], references[r.clip][offline]).rate for r in mine)

    rows = []
    for way in WAYS:
        mine = [r for r in runs if r.way == way]
        delays = np.array([d for r in mine for d in r.delays])
        updates = sum(len(r.passes) for r in mine) or 1
        rows.append({
            "way": way, "clips": len(mine), "words": len(delays),
            "delay_median": float(np.median(delays)) if len(delays) else None,
            "delay_p90": float(np.percentile(delays, 90)) if len(delays) else None,
            "rtf": sum(r.compute_seconds for r in mine) / sum(r.audio_seconds for r in mine),
            "passes_per_update": sum(sum(r.passes) for r in mine) / updates,
            "decoder_seconds_per_update": sum(sum(r.decoder_seconds) for r in mine) / updates,
            "wer": pooled((references[r.clip][0], r.text) for r in mine),
            "offline_wer": pooled((references[r.clip][0], references[r.clip][1]) for r in mine),
            "timestamped_wer": pooled((references[r.clip][0], references[r.clip][2]) for r in mine),
            "wer_vs_timestamped": pooled((references[r.clip][2], r.text) for r in mine),
            "worst_clip_wer_gap": worst_gap(mine, 1),
            "worst_clip_wer_gap_timestamped": worst_gap(mine, 2),
            "same_as_ar": sum(r.text == ar_text[r.clip] for r in mine) / len(mine),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    out = io.StringIO()
    out.write("| drafts | clips | words | commit delay median s | p90 s | RTF | target passes/update | "
              "decoder s/update | WER | offline WER | offline WER, timestamps | WER vs offline, timestamps | "
              "worst clip gap | worst clip gap, timestamps | same text as ar |\n")
    out.write("|" + " --- |" * 15 + "\n")
    for r in rows:
        delay = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
        out.write(f"| {r['way']} | {r['clips']} | {r['words']} | {delay(r['delay_median'])} | {delay(r['delay_p90'])} | "
                  f"{r['rtf']:.2f} | {r['passes_per_update']:.1f} | {r['decoder_seconds_per_update']:.3f} | "
                  f"{r['wer']:.2%} | {r['offline_wer']:.2%} | {r['timestamped_wer']:.2%} | "
                  f"{r['wer_vs_timestamped']:.2%} | {r['worst_clip_wer_gap']:+.2%} | "
                  f"{r['worst_clip_wer_gap_timestamped']:+.2%} | {r['same_as_ar']:.0%} |\n")
    return out.getvalue()


def write_stream_reports(results: dict, rows: list[dict], folder) -> list:
    import json
    from dataclasses import asdict

    data = {"summary": rows, "runs": [asdict(r) for r in results["runs"]], "references": results["references"]}
    written = [folder / "stream.json", folder / "stream.md"]
    write_atomic(written[0], json.dumps(data, indent=2) + "\n")
    write_atomic(written[1], markdown(rows))
    return written
