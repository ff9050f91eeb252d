"""Whisper's prompt: the start-of-transcript sequence, optionally after earlier text (openai/whisper's layout)."""

from __future__ import annotations

import pytest

from conftest import tiny_whisper
from specvoice.whisper.model import WhisperModel
from specvoice.whisper.tokenizer import WhisperTokenizer


@pytest.fixture(scope="module")
def base_tokenizer():
    from specvoice.models import registry

    try:
        folder = registry.files_dir("base")
    except Exception as exc:  # the offline package is an extra
        pytest.skip(f"built-in base tokenizer not installed: {exc}")
    return WhisperTokenizer.from_folder(folder, 51865)


def test_prompt_layout(base_tokenizer):
    t = base_tokenizer
    assert t.prompt("de", "translate", timestamps=False) == [t.sot, t.language_token("de"), t.translate, t.no_timestamps]
    assert t.prompt(None, "transcribe", timestamps=True) == [t.sot, t.language_token("en"), t.transcribe]


def test_previous_text_goes_before_the_start_of_transcript_and_is_cut_to_the_last_223_tokens(base_tokenizer):
    model = WhisperModel("tiny-random", tiny_whisper(0, positions=448), base_tokenizer, (), ())
    plain = model.decode_task("en", "transcribe", False)
    previous = base_tokenizer.encode(" And so my fellow Americans") * 60
    conditioned = model.decode_task("en", "transcribe", False, previous)
    assert model.sample_len == 224 and len(previous) > 223
    assert conditioned.prompt == [base_tokenizer.sot_prev] + previous[-223:] + plain.prompt
    assert conditioned.rules is plain.rules and model.decode_task("en", "transcribe", False) is plain
