"""The real offline Whisper weights on the real clips of ../shared/speech (slower: marked `real`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hf_reference import hf_greedy
from specvoice.audio import load_audio
from specvoice.engine.stats import DecodeStats
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
@pytest.mark.parametrize("method", ["spec", "specasr", "dllm"])
def test_every_method_identical_with_timestamps(method, precision, real_models, int8_base, short_clips):
    target = int8_base if precision == "int8" else real_models["base"]
    options = dict(language="en", timestamps=True)
    greedy = Transcriber(target, None, DecodingOptions("ar", **options))
    fast = Transcriber(target, real_models["tiny.en"], DecodingOptions(method, **options))
    for clip, audio in short_clips[:4]:
        expected = greedy.transcribe(audio)
        assert any(t >= real_models["base"].tokenizer.timestamp_begin for t in expected.tokens)
        result = fast.transcribe(audio)
        assert result.tokens == expected.tokens, clip
        assert result.segments == expected.segments, clip


# Each knob far from its default, and what it must change in how the draft works (the tokens never change).
KNOBS = {"max_draft": 2, "confidence": 0.99, "tree_positions": 2, "recycle": False}  # the CPU's tree: none
KNOB_CLIPS = 6


def drafting_totals(transcriber, clips, expected) -> DecodeStats:
    total = DecodeStats()
    for clip, audio in clips:
        result = transcriber.transcribe(audio)
        assert result.tokens == expected[clip], clip
        for name in ("tokens", "target_passes", "draft_passes", "drafted", "accepted"):
            setattr(total, name, getattr(total, name) + getattr(result.stats, name))
    return total


@pytest.fixture(scope="module")
def default_drafting(real_models, short_clips, greedy_tokens) -> DecodeStats:
    options = DecodingOptions("specasr", language="en", timestamps=False)
    return drafting_totals(Transcriber(real_models["base"], real_models["tiny.en"], options),
                           short_clips[:KNOB_CLIPS], greedy_tokens)


@pytest.mark.parametrize("knob", [knob for knob in KNOBS if knob != "recycle"])
def test_each_specasr_knob_keeps_the_tokens_and_changes_the_drafting(knob, real_models, short_clips, greedy_tokens,
                                                                     default_drafting):
    options = DecodingOptions("specasr", language="en", timestamps=False, **{knob: KNOBS[knob]})
    turned = drafting_totals(Transcriber(real_models["base"], real_models["tiny.en"], options),
                             short_clips[:KNOB_CLIPS], greedy_tokens)
    default = default_drafting
    if knob == "max_draft":  # shorter drafts: fewer tokens a pass
        assert turned.mean_accepted_length < default.mean_accepted_length
    elif knob == "confidence":  # chains cut at the first unsure token: more target passes
        assert turned.target_passes > default.target_passes
    else:  # branches: more drafted tokens, and never fewer draft passes (a branch gets its successor in a second
        # draft pass a round only where it has room, which the six clips need not have)
        assert turned.drafted > default.drafted and turned.draft_passes >= default.draft_passes


def test_recycling_saves_draft_passes_where_a_rejected_tail_realigns(real_models, short_clips, greedy_tokens):
    """A recycled tail pays only after a rejection whose old draft lines up again, which some clips never have
    (on one CPU the first six had none, on another they did): clip by clip, recycling never costs a draft pass,
    and the first clip where it saves one ends the test. Long drafts (CUDA's drafting defaults) leave tails to
    recycle; the CPU's stop at the first unsure token."""
    knobs = dict(language="en", timestamps=False, confidence=0.4, tree_positions=2)
    drafting = {recycle: Transcriber(real_models["base"], real_models["tiny.en"],
                                     DecodingOptions("specasr", recycle=recycle, **knobs))
                for recycle in (True, False)}
    for clip in short_clips:
        with_tails, without = (drafting_totals(drafting[recycle], [clip], greedy_tokens) for recycle in (True, False))
        assert with_tails.draft_passes <= without.draft_passes, clip[0]
        if with_tails.draft_passes < without.draft_passes:
            return
    pytest.fail("recycling saved no draft pass on any short clip")


def test_the_specasr_knobs_on_the_command_line(tmp_path, short_clips, greedy_tokens_int8):
    clip, audio = short_clips[0]
    result = subprocess.run([sys.executable, "-m", "specvoice", "transcribe", str(SPEECH / f"{clip}.wav"),
                             "--language", "en", "--method", "specasr", "--max-draft", "2", "--confidence", "0.99",
                             "--tree-positions", "0", "--no-recycle", "--no-timestamps", "--stats", "-o", str(tmp_path),
                             "-f", "json"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / f"{clip}.json").read_text())
    # int8 (the CPU default), without timestamps as the reference decode (the command's default has them)
    assert [t for s in record["segments"] for t in s["tokens"]] == greedy_tokens_int8[clip]
    assert {key: record["options"][key] for key in ("max_draft", "confidence", "tree_positions", "recycle")} == \
        {"max_draft": 2, "confidence": 0.99, "tree_positions": 0, "recycle": False}
    assert "drafted tokens kept" in result.stderr


def transformers_rules(model, prompt: list[int]):
    """transformers' own Whisper logit processors (not specvoice's code), set up as openai-whisper decodes."""
    from transformers import GenerationConfig
    from transformers.generation.logits_process import (LogitsProcessorList, SuppressTokensAtBeginLogitsProcessor,
                                                        SuppressTokensLogitsProcessor, WhisperTimeStampLogitsProcessor)

    tokenizer = model.tokenizer
    config = GenerationConfig(eos_token_id=tokenizer.eot, no_timestamps_token_id=tokenizer.no_timestamps,
                              max_initial_timestamp_index=50)  # openai-whisper's 1.0 s
    return LogitsProcessorList([SuppressTokensLogitsProcessor(list(model.suppress_tokens)),
                                SuppressTokensAtBeginLogitsProcessor(list(model.begin_suppress_tokens), len(prompt)),
                                WhisperTimeStampLogitsProcessor(config, begin_index=len(prompt))])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_timestamp_rules_match_transformers_processors_on_real_logits(temperature, real_models, short_clips):
    """Every position of real timestamped decodes (greedy, and sampled for other histories): specvoice's rules
    and transformers' WhisperTimeStampLogitsProcessor (with its token suppression) make the same logits of
    base's own."""
    from specvoice.engine.decoder import Session
    from specvoice.engine.drafter import NoDrafter
    from specvoice.engine.sampling import sample_decode
    from specvoice.engine.speculative import greedy_decode
    from specvoice.whisper.decoder import WhisperDecoder

    model = real_models["base"]
    begin = model.tokenizer.timestamp_begin
    task = model.decode_task("en", "transcribe", True)
    reference = transformers_rules(model, task.prompt)
    generator = torch.Generator().manual_seed(0)
    forced_stamp = forced_text = 0
    for clip, audio in short_clips[:4]:
        decoder = WhisperDecoder(model)
        decoder.encode(LogMel(audio).window(0, model.model.config.num_mel_bins))
        decoded = greedy_decode(decoder, task) if temperature == 0 else \
            sample_decode(decoder, task, NoDrafter(), temperature, generator)
        tokens = [t for t in decoded.tokens if t != model.tokenizer.eot]
        assert sum(t >= begin for t in tokens) >= 2, clip
        raw = Session(decoder).feed(task.prompt + tokens)[len(task.prompt) - 1:]  # rows predict tokens[i], then EOT
        histories = [tokens[:i] for i in range(len(tokens) + 1)]
        ours = task.rules(raw.clone(), histories)
        for i, history in enumerate(histories):
            theirs = reference(torch.tensor([task.prompt + history]), raw[i: i + 1].clone())[0]
            assert torch.equal(ours[i], theirs), (clip, i)
        forced_stamp += int(torch.isinf(ours[:, :begin]).all(dim=-1).sum())
        forced_text += int(torch.isinf(ours[:, begin:]).all(dim=-1).sum())
    assert forced_stamp > 0 and forced_text > 0  # rows where only timestamps, and only text, were allowed
