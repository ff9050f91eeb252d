"""Silero VAD finds speech in real speech and none in silence or steady noise."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SPEECH
from specvoice.audio import SAMPLE_RATE, load_audio
from specvoice.audio.vad import FRAME_SAMPLES, keep_short_pauses, speech_probabilities, speech_spans

pytest.importorskip("faster_whisper", reason="the Silero VAD model ships with faster-whisper (extra 'vad')")


def test_silence_and_noise_have_no_speech():
    silence = np.zeros(5 * SAMPLE_RATE, np.float32)
    noise = np.random.default_rng(0).normal(0, 0.01, 5 * SAMPLE_RATE).astype(np.float32)
    assert speech_spans(silence) == [] and speech_spans(noise) == []
    assert speech_probabilities(silence).max() < 0.5


def test_speech_is_found_where_it_was_put():
    speech = load_audio(SPEECH / "whisper_jfk.wav")
    gap = np.zeros(4 * SAMPLE_RATE, np.float32)
    audio = np.concatenate([gap, speech, gap])
    spans = speech_spans(audio, speech_pad_ms=0)
    assert spans, "no speech found in JFK's inaugural line"
    assert spans[0][0] >= len(gap) - SAMPLE_RATE // 2  # not before the speech starts
    assert spans[-1][1] <= len(gap) + len(speech) + SAMPLE_RATE // 2  # not after it ends
    covered = sum(end - start for start, end in spans)
    assert covered > 0.6 * len(speech)
    probabilities = speech_probabilities(audio)
    assert len(probabilities) == -(-len(audio) // FRAME_SAMPLES)
    assert probabilities[: len(gap) // FRAME_SAMPLES - 8].max() < 0.5


def test_silence_shorter_than_a_pause_is_kept_in_the_chunks_beside_it():
    second, window = SAMPLE_RATE, 30 * SAMPLE_RATE
    # 0.5 s before the first chunk and 1 s after the last: kept wholly; 1 s between chunks: shared at its middle
    assert keep_short_pauses([(second // 2, 5 * second), (6 * second, 9 * second)], 10 * second, window) == \
        [(0, 5 * second + second // 2), (5 * second + second // 2, 10 * second)]
    # 3 s of silence at the start, between the chunks and at the end is skipped
    spaced = [(3 * second, 5 * second), (8 * second, 9 * second)]
    assert keep_short_pauses(spaced, 12 * second, window) == spaced
    # a chunk grows no longer than a window: the leading silence first
    assert keep_short_pauses([(second, 30 * second)], 31 * second, window) == [(0, 30 * second)]
