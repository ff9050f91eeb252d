"""Log-mel features of one 30 s window, exactly as transformers' WhisperFeatureExtractor makes them."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..audio import SAMPLE_RATE

WINDOW_SECONDS = 30
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
HOP = 160  # samples per mel frame (10 ms)
FRAMES_PER_SECOND = SAMPLE_RATE // HOP


@lru_cache(maxsize=4)
def _extractor(n_mels: int):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels)


def log_mel(window: np.ndarray, n_mels: int) -> torch.Tensor:
    """[1, n_mels, 3000] features for up to 30 s of 16 kHz audio (zero-padded)."""
    features = _extractor(n_mels)(window, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
    return torch.from_numpy(features)
