"""Voice activity detection with Silero VAD, whose ONNX model ships inside the faster-whisper wheel (no
download), run through faster-whisper's own wrapper: the same speech spans faster-whisper's `vad_filter`
finds. Used to skip silence and to place cuts, offline (`transcribe --vad`) and live (`listen`)."""

from __future__ import annotations

import numpy as np

from ..errors import SpecvoiceError
from .load import SAMPLE_RATE

FRAME_SAMPLES = 512  # Silero's step: one speech probability per 32 ms


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
