"""Decoder-only causal language models (the codec-token LMs of TTS) as CachedDecoders."""

from .decoder import CausalLMDecoder

__all__ = ["CausalLMDecoder"]
