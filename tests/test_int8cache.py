"""The on-disk int8 cache (whisper/int8cache.py): written once, read back bit for bit, never fatal; an int8
model reads no float weight of a linear layer, and hands them to whoever needs them in float."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import SPEECH, TOKENS, bundle, features, tiny_whisper
from specvoice.engine.decoder import Session
from specvoice.whisper.decoder import WhisperDecoder
from specvoice.whisper.model import WhisperModel
from specvoice.whisper.weights import linear_weights, read_weights

PROMPT = [TOKENS.sot, TOKENS.no_timestamps, 5, 17, 42, 3, 60, 7]


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A tiny random Whisper folder stored in float16 (as the built-in models are), and an empty cache."""
    monkeypatch.setenv("SPECVOICE_CACHE", str(tmp_path / "cache"))
    tiny_whisper(7, d_model=48).half().save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def int8_model(folder: Path) -> WhisperModel:
    """The folder loaded as an int8 model is (WhisperModel.from_folder, without a tokenizer)."""
    return replace(bundle(read_weights(folder, torch.float32, linears=False), int8=True), folder=folder)


def uncached(folder: Path) -> WhisperModel:
    """Every weight in float32 and no folder: int8 layers quantised where built, as before the cache."""
    return bundle(read_weights(folder, torch.float32), int8=True)


def outputs(model: WhisperModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a teacher-forced prompt and the first layer's cross-attention keys."""
    decoder = WhisperDecoder(model)
    decoder.encode(features(7))
    return Session(decoder).feed(PROMPT), decoder.cross_keys[0]


def cache_files() -> list[Path]:
    from specvoice.files import cache_dir

    return sorted((cache_dir() / "int8").glob("*.safetensors"))


def refuse_to_quantise(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("quantised although the cache holds the layers")

    monkeypatch.setattr(torch, "quantize_per_channel", refuse)


def assert_same(got, expected):
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


def test_a_cold_and_a_warm_cache_give_the_uncached_bits_and_the_warm_one_quantises_nothing(folder, monkeypatch):
    expected = outputs(uncached(folder))
    assert not cache_files()
    assert_same(outputs(int8_model(folder)), expected)
    [written] = cache_files()
    modified = written.stat().st_mtime_ns
    refuse_to_quantise(monkeypatch)
    model = int8_model(folder)
    assert_same(outputs(model), expected)
    assert cache_files() == [written] and written.stat().st_mtime_ns == modified  # read, not written again
    state = model.model.state_dict()
    assert all(state[name].is_meta for name in linear_weights(model.model) if name != "proj_out.weight")


def test_the_token_table_stays_in_its_stored_precision_and_the_model_says_float32(folder):
    model = int8_model(folder)
    table = model.model.model.decoder.embed_tokens
    assert table.weight.dtype == torch.float16 and model.dtype == torch.float32
    assert table(torch.tensor([3, 5])).dtype == torch.float32


@pytest.mark.parametrize("damage", ["truncated", "not safetensors"])
def test_a_damaged_cache_file_is_written_again(folder, damage):
    from safetensors.torch import load

    expected = outputs(int8_model(folder))
    [written] = cache_files()
    data = written.read_bytes()
    written.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a cache file" * 64)
    assert_same(outputs(int8_model(folder)), expected)
    again, first = load(written.read_bytes()), load(data)
    assert again.keys() == first.keys() and all(torch.equal(again[name], first[name]) for name in first)


def test_a_cache_folder_that_takes_no_file_leaves_runs_as_without_a_cache(folder, tmp_path, monkeypatch):
    """A cache folder under a plain file cannot be created (a read-only one cannot refuse root)."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SPECVOICE_CACHE", str(tmp_path / "file" / "cache"))
    expected = outputs(uncached(folder))
    for _ in range(2):
        assert_same(outputs(int8_model(folder)), expected)


def test_another_weights_file_in_the_folder_is_another_cache_file(folder):
    outputs(int8_model(folder))
    tiny_whisper(8, d_model=48).half().save_pretrained(folder)
    assert_same(outputs(int8_model(folder)), outputs(uncached(folder)))
    assert len(cache_files()) == 2


def test_an_int8_model_reads_float_weights_for_who_asks(folder):
    full = read_weights(folder, torch.float32).state_dict()
    model = int8_model(folder)
    layer = model.float_weights("model.decoder.layers.1").model.decoder.layers
    assert torch.equal(layer[1].fc1.weight, full["model.decoder.layers.1.fc1.weight"])
    assert layer[0].fc1.weight.is_meta
    state = model.float_weights().state_dict()
    assert all(torch.equal(state[name], full[name]) for name in full)
    assert model.model.proj_out.weight is model.model.model.decoder.embed_tokens.weight
    float_model = replace(model, int8=False)  # the same weights in float: what bench's float32 precision runs
    assert_same(outputs(float_model), outputs(bundle(read_weights(folder, torch.float32))))


@pytest.mark.real
def test_base_cold_warm_and_uncached_give_the_same_logits_on_speech(real_models, tmp_path, monkeypatch):
    from specvoice.audio import load_audio
    from specvoice.whisper.features import LogMel

    base = real_models["base"]
    monkeypatch.setenv("SPECVOICE_CACHE", str(tmp_path))
    mel = LogMel(load_audio(SPEECH / "whisper_jfk.wav")).window(0, base.model.config.num_mel_bins)
    prompt = base.tokenizer.prompt("en", "transcribe", False)
    said = base.tokenizer.backend.encode(" And so my fellow Americans ask not").ids

    def logits(model: WhisperModel) -> torch.Tensor:
        decoder = WhisperDecoder(model)
        decoder.encode(mel)
        return Session(decoder).feed(prompt + said)

    expected = logits(replace(base, int8=True, folder=None, _tasks={}))
    cold = WhisperModel.from_folder("base", base.folder, int8=True)
    assert torch.equal(logits(cold), expected) and len(list(tmp_path.glob("int8/*"))) == 1
    refuse_to_quantise(monkeypatch)
    assert torch.equal(logits(WhisperModel.from_folder("base", base.folder, int8=True)), expected)


def test_a_shallow_draft_of_an_int8_model_gets_the_float_model_s_layers(folder):
    from specvoice.whisper.shallow import ShallowDraft

    vocabulary = torch.arange(0, 90, 3)
    lean, full = (ShallowDraft(model, (1,), vocabulary) for model in (int8_model(folder), uncached(folder)))
    ours, theirs = lean.state_dict(), full.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[name], theirs[name]) for name in ours)
    assert torch.equal(lean.embed_tokens, full.embed_tokens) and lean.embed_tokens.dtype == torch.float32


def test_a_draft_file_s_int8_layers_are_cached_and_a_warm_load_reads_no_float_weight_of_the_target(folder, tmp_path,
                                                                                                  monkeypatch):
    from specvoice.whisper.shallow import ShallowDecoder, ShallowDraft, draft_vocabulary

    path = tmp_path / "draft.safetensors"
    target = int8_model(folder)
    ShallowDraft(target, (1,), draft_vocabulary(target, 30)).save(path)

    def draft_logits(draft: ShallowDraft, target: WhisperModel) -> torch.Tensor:
        target_decoder = WhisperDecoder(target)
        target_decoder.encode(features(7))
        decoder = ShallowDecoder(draft, target_decoder)
        decoder.encode(features(7))
        return Session(decoder).feed(PROMPT)

    uncached_draft = ShallowDraft.load(path, int8_model(folder))
    uncached_draft.path = None  # no file to name a cache by: quantised from the whole float weights
    expected = draft_logits(uncached_draft, int8_model(folder))
    cold_target = int8_model(folder)
    assert torch.equal(draft_logits(ShallowDraft.load(path, cold_target), cold_target), expected)
    assert len(cache_files()) == 2  # the target's, the draft's
    refuse_to_quantise(monkeypatch)
    warm_target = int8_model(folder)
    warm = ShallowDraft.load(path, warm_target)
    assert torch.equal(draft_logits(warm, warm_target), expected) and len(cache_files()) == 2
    assert warm.head.weight.is_meta and warm.layers[0].fc1.weight.is_meta
    assert warm_target.model.model.decoder.layers[1].fc1.weight.is_meta
