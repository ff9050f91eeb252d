"""Audio in and out, shared by every pipeline: files of any format, rate and channel count to 16 kHz mono."""

from .load import SAMPLE_RATE, audio_seconds, audio_suffixes, load_audio, to_model_rate

__all__ = ["SAMPLE_RATE", "audio_seconds", "audio_suffixes", "load_audio", "to_model_rate"]
