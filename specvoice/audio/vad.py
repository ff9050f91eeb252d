"""Voice activity detection with Silero VAD, whose ONNX model ships inside the faster-whisper wheel (no
download), run through faster-whisper's own wrapper: the same speech spans faster-whisper's `vad_filter`
finds. Used to skip silence and to place cuts, offline (`transcribe --vad`) and live (`listen`)."""

from __future__ import annotations

import numpy as np

from ..errors import SpecvoiceError
from .load import SAMPLE_RATE

FRAME_SAMPLES = 512  # Silero's step: one speech probability per 32 ms
# faster-whisper's shortest pause inside speech (VadOptions.min_silence_duration_ms): shorter silence does not
# end a span, nor is it cut out of a chunk.
MIN_SILENCE_SECONDS = 2.0


def _vad():
    try:
        from faster_whisper import vad
    except ImportError:
        raise SpecvoiceError("voice activity detection needs the Silero VAD model that ships with faster-whisper: "
                             "pip install 'specvoice[vad]'") from None
    try:
        vad.get_vad_model()
    except RuntimeError as exc:  # onnxruntime missing
        raise SpecvoiceError(f"voice activity detection: {exc}") from None
    return vad


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Probability of speech for each 512-sample frame of 16 kHz audio (the last frame zero-padded)."""
    vad = _vad()
    padded = np.pad(audio.astype(np.float32, copy=False), (0, -len(audio) % FRAME_SAMPLES))
    if not len(padded):
        return np.zeros(0, np.float32)
    return np.asarray(vad.get_vad_model()(padded), dtype=np.float32).reshape(-1)


def speech_spans(audio: np.ndarray, **parameters) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech in 16 kHz audio; `parameters` are faster-whisper's VadOptions
    (threshold, min_silence_duration_ms, speech_pad_ms, max_speech_duration_s, ...), its defaults otherwise."""
    vad = _vad()
    spans = vad.get_speech_timestamps(audio.astype(np.float32, copy=False), vad.VadOptions(**parameters),
                                      sampling_rate=SAMPLE_RATE)
    return [(span["start"], span["end"]) for span in spans]


def speech_chunks(audio: np.ndarray, longest: int) -> list[tuple[int, int]]:
    """(start, end) sample ranges of 16 kHz audio that hold its speech, each at most `longest` samples and cut
    in pauses: for decoding speech alone in windows of `longest` samples."""
    chunks: list[tuple[int, int]] = []
    # Spans are split in their pauses to fit with the VAD's padding (0.4 s each side); a chunk runs from its
    # first span's start to its last span's end, so the pauses inside it stay where they were.
    for start, end in speech_spans(audio, min_silence_duration_ms=MIN_SILENCE_SECONDS * 1000,
                                   max_speech_duration_s=longest / SAMPLE_RATE - 1):
        if chunks and end - chunks[-1][0] <= longest:
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((start, end))
    return keep_short_pauses(chunks, len(audio), longest)


def keep_short_pauses(chunks: list[tuple[int, int]], length: int, longest: int) -> list[tuple[int, int]]:
    """Each chunk widened, as far as `longest` samples allow, into the silence beside it that is shorter than
    MIN_SILENCE_SECONDS: wholly at the audio's start and end, up to the middle between two chunks.

    VAD is there to skip silence long enough to matter and to cut windows in pauses. A shorter silence costs
    nothing to keep (Whisper's encoder sees a whole 30 s window however little audio it holds), while cutting
    it moves the speech within the window, which changes Whisper's text for no gain."""
    shortest_skipped = int(MIN_SILENCE_SECONDS * SAMPLE_RATE)
    kept = []
    for index, (start, end) in enumerate(chunks):
        before = chunks[index - 1][1] if index else 0
        after = chunks[index + 1][0] if index + 1 < len(chunks) else length
        if start - before < shortest_skipped:
            start = max((before + start) // 2 if index else 0, end - longest)
        if after - end < shortest_skipped:
            end = min((end + after) // 2 if index + 1 < len(chunks) else length, start + longest)
        kept.append((start, end))
    return kept
