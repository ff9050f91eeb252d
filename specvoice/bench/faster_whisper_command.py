"""faster-whisper as its users run it, as one command: `specvoice bench --process` times it beside `specvoice
transcribe`. What a user's script does: load WhisperModel from a CTranslate2 folder, transcribe each file by its
path, consume the segments, write one .txt per file.

    python -m specvoice.bench.faster_whisper_command a.wav b.wav --model DIR --compute-type int8 --threads 2 \\
        --no-timestamps -o out/

The decoding is the bench's (`decoding_options`, also what the in-process faster-whisper peer runs). Nothing
here imports PyTorch or the rest of specvoice: a faster-whisper script does not pay for them at start-up.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def decoding_options(timestamps: bool) -> dict:
    """faster-whisper's transcribe() arguments for the bench: plain greedy as specvoice's contestants decode (beam
    1, temperature 0 without fallback, no previous-text prompt, no silence rule, no VAD), English."""
    return dict(beam_size=1, language="en", temperature=0.0, condition_on_previous_text=False, vad_filter=False,
                without_timestamps=not timestamps, no_speech_threshold=None)


def transcript_file(folder: Path, audio: Path) -> Path:
    """Where a file's text goes: its name with .txt for its ending, as `specvoice transcribe -o FOLDER` names it
    (transcript.output_path, not imported: this script's start-up stays a faster-whisper script's)."""
    return folder / f"{audio.stem}.txt"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m specvoice.bench.faster_whisper_command",
                                     description="Transcribe audio files with faster-whisper, one .txt per file.")
    parser.add_argument("audio", nargs="*", type=Path, help="audio files")
    parser.add_argument("--model", required=True, help="CTranslate2 model folder")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type (default int8)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default 0: CTranslate2 decides)")
    parser.add_argument("--timestamps", action=argparse.BooleanOptionalAction, default=False,
                        help="decode with segment timestamps (default off)")
    parser.add_argument("-o", "--output-dir", type=Path, help="folder for the .txt files")
    parser.add_argument("--load-only", action="store_true", help="load the model and exit: the start-up alone")
    args = parser.parse_args(argv)
    if not args.load_only and (not args.audio or args.output_dir is None):
        parser.error("give audio files and --output-dir (or --load-only)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    from faster_whisper import WhisperModel

    model = WhisperModel(args.model, device=args.device, compute_type=args.compute_type, cpu_threads=args.threads)
    if args.load_only:
        return
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for path in args.audio:
        segments, _ = model.transcribe(str(path), **decoding_options(args.timestamps))
        lines = [segment.text.strip() for segment in segments]  # the generator does the decoding
        transcript_file(args.output_dir, path).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
