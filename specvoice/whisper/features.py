"""Whisper's log-mel features, as transformers' WhisperFeatureExtractor computes them (openai-whisper's
log_mel_spectrogram), and the two ways a window shorter than 30 s is padded.

specvoice decodes what openai-whisper's transcribe() and faster-whisper decode (`LogMel`): the log-mel of the
whole audio, computed once, cut into 30 s windows, with zero *features* after the audio. The transformers
peer decodes what transformers' pipeline decodes (`log_mel`): each window's audio padded with zeros to 30 s,
then its log-mel. The two differ where a window is shorter than 30 s (a short clip, a file's last window).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..audio import SAMPLE_RATE

WINDOW_SECONDS = 30
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
HOP = 160  # samples per mel frame (10 ms)
FRAMES_PER_SECOND = SAMPLE_RATE // HOP
WINDOW_FRAMES = WINDOW_SAMPLES // HOP


@lru_cache(maxsize=4)
def _extractor(n_mels: int):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels)


def log_mel(window: np.ndarray, n_mels: int) -> torch.Tensor:
    """[1, n_mels, 3000] features for up to 30 s of 16 kHz audio, the audio zero-padded (transformers' way)."""
    features = _extractor(n_mels)(window, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
    return torch.from_numpy(features)


class LogMel:
    """The features of one stretch of audio, as openai-whisper's transcribe() makes them: the log-mel of all
    of it followed by 30 s of silence (so the last frames' transform sees zeros, and one maximum sets the
    floor for every frame), computed once per mel count; a window is 30 s of its frames, zeros past the audio.
    """

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.frames = len(audio) // HOP
        self._mels: dict[int, torch.Tensor] = {}

    def window(self, seek: int, n_mels: int) -> torch.Tensor:
        """[1, n_mels, 3000]: the 30 s from frame `seek`."""
        piece = self._of(n_mels)[:, seek: seek + WINDOW_FRAMES]
        return torch.nn.functional.pad(piece, (0, WINDOW_FRAMES - piece.shape[-1]))[None]

    def _of(self, n_mels: int) -> torch.Tensor:
        if n_mels not in self._mels:
            padded = np.concatenate([self.audio.astype(np.float32, copy=False), np.zeros(WINDOW_SAMPLES, np.float32)])
            features = _extractor(n_mels)(padded, sampling_rate=SAMPLE_RATE, padding="longest", truncation=False,
                                          return_tensors="np").input_features[0]
            self._mels[n_mels] = torch.from_numpy(features[:, : self.frames])
        return self._mels[n_mels]
