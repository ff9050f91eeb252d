"""Bark (suno/bark, suno/bark-small): static-cache adapters for its causal stages, voices, fine stage and codec."""

from .model import BarkPair, load_bark, voice_presets

__all__ = ["BarkPair", "load_bark", "voice_presets"]
