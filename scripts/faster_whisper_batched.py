"""faster-whisper on one file three ways, as its users run it: sequential windows, sequential with its VAD, and its
BatchedInferencePipeline (VAD chunks decoded `batch_size` at a time); greedy, English, no previous-text prompt,
int8, 2 threads. Prints the in-process seconds and the word count to stderr; time the whole command with
/usr/bin/time -v.

Run: python scripts/faster_whisper_batched.py CT2_FOLDER AUDIO sequential|vad|batched [BATCH_SIZE]
(CT2_FOLDER: python -c "from specvoice.models.resolve import ctranslate2_folder; print(ctranslate2_folder('base'))")
"""
import sys
import time


def main(folder: str, audio: str, mode: str, batch_size: int = 8) -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=2)
    options = dict(beam_size=1, language="en", temperature=0.0, condition_on_previous_text=False)
    began = time.perf_counter()
    if mode == "batched":
        segments, _ = BatchedInferencePipeline(model).transcribe(audio, batch_size=batch_size, **options)
    else:
        segments, _ = model.transcribe(audio, vad_filter=mode == "vad", **options)
    words = sum(len(segment.text.split()) for segment in segments)  # the generator does the decoding
    print(f"{mode}: in-process {time.perf_counter() - began:.2f} s, {words} words", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:5]))
