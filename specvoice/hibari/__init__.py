"""The offline voice: hibari-tts, a small non-autoregressive English ONNX voice that installs from PyPI with its
weights (extra `voices`). No token sampling, so no speculation: it makes `synthesize` work with no network."""

from __future__ import annotations

import numpy as np

from ..errors import SpecvoiceError

BUILT_IN = "heart"  # the voice inside the wheel; the others download on first use


class HibariVoice:
    sample_rate = 24_000

    def __init__(self, voice: str | None = None):
        try:
            from hibari import Hibari
            from hibari.voices import VOICES, voice_path
        except ImportError:
            raise SpecvoiceError("the offline voice needs its package: pip install 'specvoice[voices]' "
                                 "(hibari-tts and onnxruntime)") from None
        name = voice or BUILT_IN
        if name not in VOICES:
            raise SpecvoiceError(f"unknown voice {name!r} for hibari: choose from {', '.join(VOICES)}")
        try:
            path = voice_path(name)
        except Exception as exc:  # urllib and hash errors: one line
            raise SpecvoiceError(f"hibari voice {name!r} needs a download that failed ({exc}); "
                                 f"{BUILT_IN} is built in") from None
        self.name = name
        self._tts = Hibari(voice=name, model=path)
        self.sample_rate = self._tts.sample_rate

    def speak(self, text: str, seed: int, speed: float = 1.0) -> np.ndarray:
        """Float32 audio at sample_rate for one sentence (seeded: hibari adds a noise component); speed > 1 is
        faster speech."""
        return np.asarray(self._tts(text, speed=speed, seed=seed), dtype=np.float32)
