"""The main promise on real audio past 30 s: spec, specasr and dllm give exactly ar's tokens on the long-form dev
files, window after window (timestamps on, each window prompted with the text before it), at int8 and float32
(slower: marked `real`)."""

from __future__ import annotations

import pytest

from conftest import SPEECH
from specvoice.audio import load_audio
from specvoice.options import DecodingOptions
from specvoice.transcribe import Transcriber
from specvoice.whisper.model import WhisperModel

pytestmark = pytest.mark.real

LONG_FORM = ("joinly_OSR_us_000_0034",)  # 35.5 s of Harvard sentences with pauses: two windows


@pytest.fixture(scope="module")
def long_form(manifest) -> list[tuple[str, object]]:
    rows = {row["id"]: row for row in manifest}
    assert set(LONG_FORM) <= set(rows), "a long-form file of the test is missing from the manifest"
    return [(clip, load_audio(SPEECH / rows[clip]["audio"])) for clip in LONG_FORM]


def target_at(precision: str, real_models, int8_base) -> WhisperModel:
    return int8_base if precision == "int8" else real_models["base"]


def transcribe_seeing_prompts(transcriber: Transcriber, audio):
    """The transcript, and the earlier text each window's decode was prompted with."""
    prompts = []
    decode_task = WhisperModel.decode_task

    def recording(model, language, task, timestamps, previous=()):
        if model is transcriber.target:
            prompts.append(list(previous))
        return decode_task(model, language, task, timestamps, previous)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WhisperModel, "decode_task", recording)
        return transcriber.transcribe(audio), prompts


@pytest.fixture(scope="module")
def greedy(real_models, int8_base, long_form) -> dict:
    """ar's transcript and window prompts of every file, at each precision: what every method must reproduce."""
    found = {}
    for precision in ("float32", "int8"):
        ar = Transcriber(target_at(precision, real_models, int8_base), None, DecodingOptions("ar", language="en"))
        for clip, audio in long_form:
            found[precision, clip] = transcribe_seeing_prompts(ar, audio)
    return found


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_reference_is_greedy_timestamped_and_prompted_with_earlier_text(precision, greedy, real_models):
    timestamp_begin = real_models["base"].tokenizer.timestamp_begin
    for clip in LONG_FORM:
        expected, prompts = greedy[precision, clip]
        assert expected.windows >= 2 and expected.retries == 0, clip  # several windows, every one greedy
        assert any(t >= timestamp_begin for t in expected.tokens), clip
        assert len(prompts) == expected.windows and prompts[0] == [] and all(prompts[1:]), clip


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("method", ["spec", "specasr", "dllm"])
def test_every_method_is_token_identical_to_ar_on_long_form(method, precision, greedy, real_models, int8_base,
                                                             long_form):
    target = target_at(precision, real_models, int8_base)
    fast = Transcriber(target, real_models["tiny.en"], DecodingOptions(method, language="en"))
    for clip, audio in long_form:
        expected, expected_prompts = greedy[precision, clip]
        result, prompts = transcribe_seeing_prompts(fast, audio)
        assert result.tokens == expected.tokens, clip
        assert prompts == expected_prompts, clip
        assert result.segments == expected.segments, clip
        assert result.stats.target_passes < result.stats.tokens / 2, clip  # the draft really carried tokens


@pytest.mark.parametrize("draft_previous", [0, 5, 448])
def test_the_shallow_draft_sees_as_much_earlier_text_as_asked_and_no_token_changes(draft_previous, greedy, int8_base,
                                                                                   long_form):
    """The draft is prompted with the last `draft_previous` tokens of the target's earlier text (a shallow draft is
    the target's own model: both prompts are recorded, the target's first, window by window)."""
    from specvoice.models import load_draft

    draft = load_draft("shallow", int8_base)
    fast = Transcriber(int8_base, draft, DecodingOptions("specasr", language="en", draft_previous=draft_previous))
    for clip, audio in long_form:
        expected, target_prompts = greedy["int8", clip]
        result, prompts = transcribe_seeing_prompts(fast, audio)
        assert result.tokens == expected.tokens, clip
        assert prompts == [seen for previous in target_prompts
                           for seen in (previous, previous[len(previous) - min(len(previous), draft_previous):])], clip
        assert result.stats.accepted > 0, clip
