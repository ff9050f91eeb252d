"""Audio as the bytes of a 16-bit PCM mono wav file (written atomically by the caller)."""

from __future__ import annotations

import io

import numpy as np
import soundfile


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()
