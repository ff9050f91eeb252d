"""Whisper's log-mel features (openai-whisper's log_mel_spectrogram, as transformers' WhisperFeatureExtractor
also computes them; tests hold the two equal), and the two ways a window shorter than 30 s is padded.

specvoice decodes what openai-whisper's transcribe() and faster-whisper decode (`LogMel`): the log-mel of the
whole audio, computed once, cut into 30 s windows, with zero *features* after the audio. The transformers
peer decodes what transformers' pipeline decodes (`log_mel`): each window's audio padded with zeros to 30 s,
then its log-mel. The two differ where a window is shorter than 30 s (a short clip, a file's last window).

Computed here rather than by transformers' extractor: importing transformers costs a command ~2 s, more
than transcribing a short clip.
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
N_FFT = 400  # 25 ms windows


def _slaney_mel(hertz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, Whisper's): linear below 1 kHz, logarithmic above."""
    return np.where(hertz < 1000.0, hertz * 3.0 / 200.0, 15.0 + np.log(np.maximum(hertz, 1e-10) / 1000.0) * 27.0 / np.log(6.4))


def _slaney_hertz(mels: np.ndarray) -> np.ndarray:
    return np.where(mels < 15.0, mels * 200.0 / 3.0, 1000.0 * np.exp(np.log(6.4) * (mels - 15.0) / 27.0))


@lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> torch.Tensor:
    """[n_mels, 201] triangular filters over 0-8 kHz, area-normalised (librosa.filters.mel(sr=16000, n_fft=400,
    n_mels=n_mels), which openai-whisper ships precomputed)."""
    edges = _slaney_hertz(np.linspace(_slaney_mel(np.array(0.0)), _slaney_mel(np.array(8000.0)), n_mels + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    rising, falling = -slopes[:, :-2] / widths[:-1], slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return torch.from_numpy(filters.T.astype(np.float32))


def _log_mel(audio: np.ndarray, n_mels: int) -> torch.Tensor:
    """[n_mels, len(audio) // 160]: power spectrogram (Hann, 25 ms, 10 ms hop, centred), mel filters, log10,
    floored 8 below its maximum, scaled as Whisper was trained."""
    samples = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    spectrum = torch.stft(samples, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = (spectrum[..., :-1].abs() ** 2).contiguous()  # contiguous: the matmul is ~8x slower on the strided view
    log_spec = torch.clamp(mel_filters(n_mels) @ power, min=1e-10).log10()
    return (torch.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0


def log_mel(window: np.ndarray, n_mels: int) -> torch.Tensor:
    """[1, n_mels, 3000] features for up to 30 s of 16 kHz audio, the audio zero-padded (transformers' way)."""
    padded = np.zeros(WINDOW_SAMPLES, np.float32)
    padded[: min(len(window), WINDOW_SAMPLES)] = window[:WINDOW_SAMPLES]
    return _log_mel(padded, n_mels)[None]


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
            self._mels[n_mels] = _log_mel(padded, n_mels)[:, : self.frames]
        return self._mels[n_mels]
