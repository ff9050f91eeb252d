"""specvoice's own Whisper encoder: transformers' output in float, and the bfloat16 attention of the int8 mode."""

from __future__ import annotations

import pytest
import torch

from conftest import features, tiny_whisper
from specvoice.whisper import encoder as encoder_module
from specvoice.whisper.encoder import WhisperEncoder, bfloat16_attention, float32_attention, fused_bfloat16_attention


@pytest.mark.parametrize("seed", range(3))
def test_float_encoder_equals_transformers_encoder(seed):
    model = tiny_whisper(seed)
    audio = features(seed)
    with torch.inference_mode():
        expected = model.model.encoder(audio).last_hidden_state[0]
        ours = WhisperEncoder(model.model.encoder, int8=False)(audio)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_int8_encoder_stays_close_to_float():
    model = tiny_whisper(5, d_model=64)
    audio = features(5)
    with torch.inference_mode():
        exact = WhisperEncoder(model.model.encoder, int8=False)(audio)
        int8 = WhisperEncoder(model.model.encoder, int8=True)(audio)
    assert ((int8 - exact).norm() / exact.norm()).item() < 0.05


@pytest.mark.parametrize("attention", [bfloat16_attention, fused_bfloat16_attention])
@pytest.mark.parametrize("frames", [1500, 377, 7])  # whole blocks, a partial last block, less than one block
def test_bfloat16_attention_is_close_to_float32(frames, attention):
    """Scores spread like an encoder's (some heads sharp, some flat); every query block contributes. Queries,
    keys and values as the encoder holds them: head-split views of one [frames, 3 x width] projection."""
    generator = torch.Generator().manual_seed(frames)
    sharpness = torch.tensor([0.1, 0.5, 1.0, 2.0]).view(4, 1, 1)
    q, k, v = torch.randn(frames, 3 * 256, generator=generator).view(frames, 12, 64).transpose(0, 1).chunk(3)
    q = q * sharpness / 8
    exact = float32_attention(q, k, v)
    fast = attention(q, k, v)
    assert fast.shape == exact.shape == (frames, 256) and fast.dtype == torch.float32
    assert ((fast - exact).norm() / exact.norm()).item() < 0.02  # bfloat16 keeps 8 bits: ~1% here


@pytest.mark.parametrize("native, amx, chosen", [(True, True, fused_bfloat16_attention), (True, False, bfloat16_attention),
                                                 (False, False, float32_attention)])
def test_int8_encoder_uses_bfloat16_attention_only_where_the_cpu_multiplies_it_natively(native, amx, chosen,
                                                                                      monkeypatch):
    """Fused (PyTorch's flash kernel) where the CPU has AMX tiles, query blocks where it has only AVX512-BF16."""
    monkeypatch.setattr(encoder_module, "native_bfloat16", lambda: native)
    monkeypatch.setattr(encoder_module, "amx_tiles", lambda: amx)
    hf_encoder = tiny_whisper(0).model.encoder
    assert WhisperEncoder(hf_encoder, int8=True).attention is chosen
    assert WhisperEncoder(hf_encoder, int8=False).attention is float32_attention


@pytest.mark.parametrize("int8", [False, True])
def test_feed_forward_in_blocks_of_frames_changes_no_bit(int8, monkeypatch):
    """The feed-forward runs a block of frames at a time to keep the peak memory down; every step of it treats
    rows on their own (int8 rows are quantised each by its own scale), so the output is the whole window's."""
    model = tiny_whisper(6, d_model=64, frames=1500)
    audio = features(6, frames=3000)
    encoder = WhisperEncoder(model.model.encoder, int8=int8)
    rows_fed = []
    fc1 = encoder.layers[0].fc1
    encoder.layers[0].fc1 = lambda x: rows_fed.append(len(x)) or fc1(x)
    with torch.inference_mode():
        blocked = encoder(audio)
        monkeypatch.setattr(encoder_module, "FEED_FORWARD_BLOCK", 10 ** 6)
        whole = encoder(audio)
    assert rows_fed == [500, 500, 500, 1500]  # blocks of 500 frames, then the whole window at once
    assert torch.equal(blocked, whole)


@pytest.mark.real
def test_base_int8_window_has_the_same_bits_at_any_thread_count(int8_base):
    """A corpus run on Ray (one thread a worker) must write what one process with two threads writes
    (test_cluster.py), so a window's encoder output and cross keys/values may not depend on the thread count. They
    do not with FBGEMM's int8 (integer sums) and PyTorch's fused bfloat16 attention; oneDNN's bfloat16 GEMM for
    the linears failed this (benchmarks/README.md)."""
    from conftest import SPEECH
    from specvoice.audio import load_audio
    from specvoice.whisper.decoder import WhisperDecoder
    from specvoice.whisper.features import LogMel

    if not (SPEECH / "whisper_jfk.wav").exists():
        pytest.skip(f"{SPEECH / 'whisper_jfk.wav'} not found (the shared speech clips)")
    window = LogMel(load_audio(SPEECH / "whisper_jfk.wav")).window(0, int8_base.model.config.num_mel_bins)
    decoder = WhisperDecoder(int8_base)
    threads, encoded = torch.get_num_threads(), []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            decoder.encode(window)
            encoded.append(decoder.cross_keys + decoder.cross_values)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for other in encoded[1:] for a, b in zip(encoded[0], other))
