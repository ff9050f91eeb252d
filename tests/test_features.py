"""The features specvoice decodes: openai-whisper transcribe()'s (and faster-whisper's) log-mel windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specvoice.whisper.features import HOP, WINDOW_FRAMES, LogMel, log_mel


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Tones with a changing pitch and loudness, and a quiet stretch: every mel band and the floor matter."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = np.sin(2 * np.pi * (200 + 150 * np.sin(t)) * t) * (0.5 + 0.5 * np.sin(3 * t)) + 0.01 * rng.standard_normal(len(t))
    audio[len(t) // 3: len(t) // 3 + 8000] *= 1e-3
    return audio.astype(np.float32)


def test_a_short_clip_has_its_audio_frames_then_zero_features():
    audio = speech_like(7.3, 0)
    window = LogMel(audio).window(0, 80)
    frames = len(audio) // HOP
    assert window.shape == (1, 80, WINDOW_FRAMES)
    # the audio's frames are those of the audio padded to 30 s (transformers' way): the same floor, the same
    # transform; past them, zeros (not the log-mel of silence)
    torch.testing.assert_close(window[..., :frames], log_mel(audio, 80)[..., :frames], rtol=0, atol=1e-6)
    assert torch.count_nonzero(window[..., frames:]) == 0
    assert not torch.equal(window, log_mel(audio, 80))


@pytest.mark.parametrize("seek", [1, 2345])
def test_a_window_of_long_audio_is_a_slice_of_one_log_mel(seek):
    audio = speech_like(32.0, 1)
    features = LogMel(audio)
    window = features.window(seek, 80)
    whole = features.window(0, 80)  # the same cached log-mel
    frames = min(WINDOW_FRAMES, features.frames - seek)
    assert features.frames == len(audio) // HOP
    assert torch.equal(window[..., :WINDOW_FRAMES - seek], whole[..., seek:])
    assert torch.count_nonzero(window[..., frames:]) == 0
    assert torch.count_nonzero(window[..., :frames]) > 0.99 * 80 * frames


def test_features_agree_with_faster_whisper():
    faster_whisper = pytest.importorskip("faster_whisper.feature_extractor", reason="faster-whisper is not installed")
    audio = speech_like(41.0, 2)
    theirs = faster_whisper.FeatureExtractor(feature_size=80)(audio)[:, :-1]
    ours = LogMel(audio)
    assert theirs.shape[1] == ours.frames
    for seek in (0, 1100, 3500):  # whole windows, and a last one of 600 frames
        window = ours.window(seek, 80)[0].numpy()
        frames = min(WINDOW_FRAMES, ours.frames - seek)
        expected = np.pad(theirs[:, seek: seek + frames], ((0, 0), (0, WINDOW_FRAMES - frames)))
        np.testing.assert_allclose(window, expected, atol=1e-4)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_is_transformers_feature_extractor_bit_for_bit(n_mels):
    from transformers import WhisperFeatureExtractor

    audio = speech_like(12.5, 3)
    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    padded = extractor(audio, sampling_rate=16000, return_tensors="np").input_features
    assert torch.equal(log_mel(audio, n_mels), torch.from_numpy(padded))
    whole = np.concatenate([audio, np.zeros(480000, np.float32)])
    unpadded = extractor(whole, sampling_rate=16000, padding="longest", truncation=False,
                         return_tensors="np").input_features[0]
    features = LogMel(audio)
    assert torch.equal(features.window(0, n_mels)[0, :, :features.frames], torch.from_numpy(unpadded[:, :features.frames]))
