"""Whisper weights read without transformers (whisper/weights.py): the same tensors, the same tokens, and no
transformers import on the way from a folder to a transcript."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import SPEECH, TOKENS, bundle, features, tiny_whisper
from specvoice.engine.speculative import DecodeTask, greedy_decode
from specvoice.whisper.decoder import WhisperDecoder
from specvoice.whisper.rules import WhisperRules
from specvoice.whisper.weights import WhisperWeights, read_weights


def test_read_weights_equal_transformers_and_keep_the_output_projection_tied(tmp_path):
    model = tiny_whisper(3)
    model.save_pretrained(tmp_path)
    ours = read_weights(tmp_path, torch.float32)
    assert isinstance(ours, WhisperWeights)
    theirs, mine = model.state_dict(), ours.state_dict()
    assert set(theirs) == set(mine)
    assert all(torch.equal(theirs[name], mine[name]) for name in theirs)
    assert ours.proj_out.weight is ours.model.decoder.embed_tokens.weight
    assert read_weights(tmp_path, torch.float16).dtype == torch.float16


@pytest.mark.parametrize("seed", range(3))
def test_decoding_from_read_weights_gives_transformers_weights_tokens(seed, tmp_path):
    model = tiny_whisper(seed)
    model.save_pretrained(tmp_path)
    audio = features(seed)
    prompt = [TOKENS.sot, TOKENS.no_timestamps]
    tokens = []
    for weights in (model, read_weights(tmp_path, torch.float32)):
        whisper = bundle(weights)
        decoder = WhisperDecoder(whisper)
        decoder.encode(audio)
        rules = WhisperRules(TOKENS, whisper.suppress_tokens, whisper.begin_suppress_tokens, timestamps=False)
        tokens.append(greedy_decode(decoder, DecodeTask(prompt, rules, TOKENS.eot, 30)).tokens)
    assert tokens[0] == tokens[1]


def test_folders_it_does_not_read_are_left_to_transformers(tmp_path):
    model = tiny_whisper(1)
    model.save_pretrained(tmp_path / "bin")
    torch.save(model.state_dict(), tmp_path / "bin" / "pytorch_model.bin")  # an older checkpoint's file only
    (tmp_path / "bin" / "model.safetensors").unlink()
    assert read_weights(tmp_path / "bin", torch.float32) is None
    model.save_pretrained(tmp_path / "other")
    config = (tmp_path / "other" / "config.json")
    config.write_text(config.read_text().replace('"activation_function": "gelu"', '"activation_function": "relu"'))
    assert read_weights(tmp_path / "other", torch.float32) is None


@pytest.mark.real
def test_a_transcript_imports_neither_transformers_nor_dynamo():
    """Importing them costs a command ~3 s, more than transcribing a short clip."""
    script = (
        "import sys; from specvoice.cli import main; sys.argv = ['specvoice', 'transcribe', "
        f"{str(SPEECH / 'whisper_jfk.wav')!r}, '--language', 'en']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted(m for m in ('transformers', 'torch._dynamo') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ask not what your country" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
