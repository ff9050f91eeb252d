"""The real offline Whisper weights on the real clips of ../shared/speech (slower: marked `real`)."""

from __future__ import annotations

import pytest

from hf_reference import hf_greedy
from specvoice.audio import load_audio
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.whisper.features import LogMel

from conftest import SPEECH

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def short_clips(manifest):
    return [(row["id"], load_audio(SPEECH / row["audio"])) for row in manifest if row["seconds"] <= 30]


@pytest.fixture(scope="module")
def greedy_tokens(real_models, short_clips):
    """base's own greedy tokens for every short clip: the reference every method must reproduce."""
    transcriber = Transcriber(real_models["base"], None, DecodingOptions("ar", language="en", timestamps=False))
    return {clip: transcriber.transcribe(audio).tokens for clip, audio in short_clips}


@pytest.mark.parametrize("name", ["base", "tiny.en"])
def test_greedy_equals_transformers_generate_on_real_clips(name, real_models, short_clips, greedy_tokens):
    model = real_models[name]
    tokenizer = model.tokenizer
    transcriber = Transcriber(model, None, DecodingOptions("ar", language="en", timestamps=False))
    prompt = tokenizer.prompt("en", "transcribe", timestamps=False)
    clips = short_clips[:10]
    assert len(clips) == 10
    reference = model.transformers_model()  # transformers' own modules and forward, on the same weights
    for clip, audio in clips:
        ours = greedy_tokens[clip] if name == "base" else transcriber.transcribe(audio).tokens
        # the features specvoice decodes: openai-whisper's (zero features past the audio)
        theirs = hf_greedy(reference, LogMel(audio).window(0, 80), prompt, model.suppress_tokens,
                           model.begin_suppress_tokens, model.sample_len, tokenizer.eot)
        assert ours == [t for t in theirs if t != tokenizer.eot], clip


@pytest.fixture(scope="module")
def greedy_tokens_int8(int8_base, short_clips):
    """base's own greedy tokens at int8: the reference of every method at that precision."""
    transcriber = Transcriber(int8_base, None, DecodingOptions("ar", language="en", timestamps=False))
    return {clip: transcriber.transcribe(audio).tokens for clip, audio in short_clips}


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("method", ["spec", "specasr", "dllm"])
def test_speculative_identical_to_greedy_on_every_short_clip(method, precision, real_models, int8_base, short_clips,
                                                             request):
    target = int8_base if precision == "int8" else real_models["base"]
    expected = request.getfixturevalue("greedy_tokens_int8" if precision == "int8" else "greedy_tokens")
    transcriber = Transcriber(target, real_models["tiny.en"], DecodingOptions(method, language="en", timestamps=False))
    passes = tokens = 0
    for clip, audio in short_clips:
        result = transcriber.transcribe(audio)
        assert result.tokens == expected[clip], clip
        passes += result.stats.target_passes
        tokens += result.stats.tokens
    assert passes < tokens / 2  # the draft really carries most tokens


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_specasr_identical_with_timestamps(precision, real_models, int8_base, short_clips):
    target = int8_base if precision == "int8" else real_models["base"]
    options = dict(language="en", timestamps=True)
    greedy = Transcriber(target, None, DecodingOptions("ar", **options))
    fast = Transcriber(target, real_models["tiny.en"], DecodingOptions("specasr", **options))
    for clip, audio in short_clips[:4]:
        expected = greedy.transcribe(audio)
        assert any(t >= real_models["base"].tokenizer.timestamp_begin for t in expected.tokens)
        assert fast.transcribe(audio).tokens == expected.tokens, clip
