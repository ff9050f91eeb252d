"""Audio in: any file libsndfile reads (wav, flac, ogg, mp3, ...), any rate and channel count -> 16 kHz mono."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SpecvoiceError

SAMPLE_RATE = 16000


def to_model_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mix to mono float32 and resample to 16 kHz."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = samples.astype(np.float32, copy=False)
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return samples


def load_audio(path: str | Path) -> np.ndarray:
    import soundfile

    path = Path(path)
    if not path.exists():
        raise SpecvoiceError(f"{path}: no such file")
    if path.is_dir():
        raise SpecvoiceError(f"{path}: is a folder, not an audio file")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise SpecvoiceError(f"{path}: not readable audio ({str(exc).splitlines()[0] if str(exc) else 'unknown format'})") from None
    if samples.size == 0:
        raise SpecvoiceError(f"{path}: audio is empty")
    if not np.isfinite(samples).all():
        raise SpecvoiceError(f"{path}: audio contains NaN or infinite samples")
    return to_model_rate(samples, rate)
