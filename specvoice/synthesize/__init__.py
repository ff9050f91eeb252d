"""Text to speech: sentences through a codec-token TTS model sampled by the engine (ar or ssd), or the offline voice."""

from .synthesizer import Synthesis, Synthesizer, load_speaker
from .wav import wav_bytes

__all__ = ["Synthesis", "Synthesizer", "load_speaker", "wav_bytes"]
