"""The offline voice: hibari-tts, a small non-autoregressive English ONNX voice that installs from PyPI with its
weights (extra `voices`). No token sampling, so no speculation: it makes `synthesize` work with no network."""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from ..errors import SpecvoiceError

BUILT_IN = "heart"  # the voice inside the wheel; the others download on first use
_WORD = re.compile(r"[^\W\d_]+")


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
        self.name, self.language = name, VOICES[name]["language"]
        self._tts = Hibari(voice=name, model=path)
        self.sample_rate = self._tts.sample_rate

    def reading_notes(self, text: str) -> list[str]:
        """How the voice reads `text`. Letters outside the Latin script are an error: its English spelling rules
        drop them without a sound (Japanese gave an empty wav). Where most words are not in its English lexicon
        (German, French, ...) they are still read, with English sounds: a note says so."""
        unreadable = list(dict.fromkeys(c for c in text if c.isalpha() and not unicodedata.name(c, "").startswith("LATIN")))
        if unreadable:
            raise SpecvoiceError(f"the offline voice hibari ({self.name}) speaks English ({self.language}) and cannot "
                                 f"read {''.join(unreadable[:10])!r}; Bark models speak other languages")
        lexicon = self._tts.g2p.lexicon  # hibari's own word lists (gold and silver, as misaki's)
        words = [word.lower() for word in _WORD.findall(text)]
        foreign = [word for word in words if word not in lexicon.golds and word not in lexicon.silvers]
        if len(foreign) * 2 > len(words):
            return [f"most words are not English ({', '.join(foreign[:3])}, ...): hibari ({self.language}) reads "
                    "them with English sounds"]
        return []

    def speak(self, text: str, seed: int, speed: float = 1.0) -> np.ndarray:
        """Float32 audio at sample_rate for one sentence (seeded: hibari adds a noise component); speed > 1 is
        faster speech."""
        return np.asarray(self._tts(text, speed=speed, seed=seed), dtype=np.float32)
