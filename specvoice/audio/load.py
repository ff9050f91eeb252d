"""Audio in: any file libsndfile reads (wav, flac, ogg, mp3, ...), any rate and channel count -> 16 kHz mono."""

from __future__ import annotations

from contextlib import contextmanager
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


def load_audio(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Samples at 16 kHz mono from a file, or from the bytes of one (stdin); `name` is how errors call it."""
    import soundfile

    name, readable = _readable(source, name)
    with _unreadable(name):
        samples, rate = soundfile.read(readable, dtype="float32", always_2d=False)
    if samples.size == 0:
        raise SpecvoiceError(f"{name}: audio is empty")
    if not np.isfinite(samples).all():
        raise SpecvoiceError(f"{name}: audio contains NaN or infinite samples")
    return to_model_rate(samples, rate)


def audio_seconds(source: str | Path | bytes, name: str | None = None) -> float:
    """How long a file is, from its header alone (no samples decoded): for a driver that hands the reading of
    many files to workers. A file it passes may still fail load_audio (a damaged body)."""
    import soundfile

    name, readable = _readable(source, name)
    with _unreadable(name):
        info = soundfile.info(readable)
    if info.frames == 0:
        raise SpecvoiceError(f"{name}: audio is empty")
    return info.frames / info.samplerate


def _readable(source: str | Path | bytes, name: str | None) -> tuple[str, object]:
    """How errors call the source, and what soundfile opens; a missing file or a folder is said here."""
    import io

    if isinstance(source, bytes):
        return name or "<stdin>", io.BytesIO(source)
    path = Path(source)
    name = name or str(path)
    if not path.exists():
        raise SpecvoiceError(f"{name}: no such file")
    if path.is_dir():
        raise SpecvoiceError(f"{name}: is a folder, not an audio file")
    return name, str(path)


@contextmanager
def _unreadable(name: str):
    """soundfile's failures as one line naming the file."""
    import soundfile

    try:
        yield
    except (soundfile.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        # libsndfile's own words: str(exc) repeats the source, for stdin as "<_io.BytesIO object at 0x...>"
        detail = getattr(exc, "error_string", None) or (str(exc).splitlines()[0] if str(exc) else "unknown format")
        raise SpecvoiceError(f"{name}: not readable audio ({detail})") from None


def audio_suffixes() -> set[str]:
    """File name endings of the formats libsndfile reads here (what a folder given as input is searched for)."""
    import soundfile

    return {"." + ext.lower() for ext in soundfile.available_formats()} | {".opus", ".oga", ".aif"}
