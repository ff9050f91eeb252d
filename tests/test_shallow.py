"""The shallow draft (whisper/shallow.py): whatever it drafts, the target's greedy tokens come out; its decoding
path computes what it was trained on; its files load (and refuse the wrong target); distillation trains it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from conftest import TOKENS, bundle, draft_policy, features, perturbed, tiny_whisper
from specvoice.engine.decoder import Session
from specvoice.engine.drafter import ModelDrafter
from specvoice.engine.speculative import DecodeTask, greedy_decode
from specvoice.engine.stats import DecodeStats
from specvoice.errors import SpecvoiceError
from specvoice.whisper.decoder import WhisperDecoder
from specvoice.whisper.rules import WhisperRules
from specvoice.whisper.shallow import OwnVocabulary, ShallowDecoder, ShallowDraft, draft_vocabulary
from test_engine_identity import policies, rules_for

TARGETS = {seed: tiny_whisper(seed) for seed in range(2)}


def shallow(target, shares, frequent: int, noise: float = 0.0, seed: int = 0) -> ShallowDraft:
    draft = ShallowDraft(target, shares, draft_vocabulary(target, frequent))
    if noise:
        draft.load_state_dict(perturbed(draft, seed, noise).state_dict())
    return draft


def decode(target, draft: ShallowDraft | None, policy, timestamps: bool, eot_boost: float, max_new: int,
           audio_seed: int, int8: bool | None = None, frames: int | None = None):
    audio = features(audio_seed)
    target_decoder = WhisperDecoder(target)
    target_decoder.encode(audio)
    prompt = [TOKENS.sot] if timestamps else [TOKENS.sot, TOKENS.no_timestamps]
    rules = rules_for(target, timestamps, eot_boost)
    task = DecodeTask(prompt, rules, TOKENS.eot, max_new)
    drafter, stats = None, DecodeStats()
    if draft is not None:
        draft_decoder = ShallowDecoder(draft, target_decoder, int8=int8)
        draft_decoder.encode(audio, frames)
        drafter = ModelDrafter(draft_decoder, rules, TOKENS.eot, policy)
    return greedy_decode(target_decoder, task, drafter, stats).tokens, stats


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1), shares=st.sampled_from([(0,), (1,), (0, 1)]), frequent=st.sampled_from([0, 20, 80]),
       noise=st.sampled_from([0.0, 0.3]), policy=policies, timestamps=st.booleans(),
       eot_boost=st.sampled_from([0.0, 0.3, 2.0]), max_new=st.integers(1, 40), audio_seed=st.integers(0, 1000),
       int8=st.booleans(), target_int8=st.booleans(), frames=st.sampled_from([None, 4, 40]))
def test_shallow_draft_gives_the_greedy_tokens(seed, shares, frequent, noise, policy, timestamps, eot_boost, max_new,
                                               audio_seed, int8, target_int8, frames):
    """Any shallow draft (any layers, vocabulary, noise, precision, frames seen): exactly ar's tokens."""
    target = bundle(TARGETS[seed], int8=target_int8)
    draft = shallow(target, shares, frequent, noise, seed)
    expected, _ = decode(target, None, None, timestamps, eot_boost, max_new, audio_seed)
    got, stats = decode(target, draft, policy, timestamps, eot_boost, max_new, audio_seed, int8, frames)
    assert got == expected
    assert stats.tokens == len(expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1), frequent=st.sampled_from([0, 20, 80]), noise=st.sampled_from([0.0, 0.3]),
       timestamps=st.booleans(), audio_seed=st.integers(0, 1000))
def test_drafting_among_the_draft_s_own_tokens_proposes_what_its_full_rows_propose(seed, frequent, noise, timestamps,
                                                                                    audio_seed):
    """The drafter picks from rows over the draft's vocabulary alone, under the rules for those columns, and maps
    what it picks back to token ids: the same chain as from the full rows (timestamps and the end among them)."""
    target = bundle(TARGETS[seed])
    audio = features(audio_seed)
    target_decoder = WhisperDecoder(target)
    target_decoder.encode(audio)
    decoder = ShallowDecoder(shallow(target, (1,), frequent, noise, seed), target_decoder)
    decoder.encode(audio)
    rules = WhisperRules(TOKENS, target.suppress_tokens, target.begin_suppress_tokens, timestamps)
    prompt = [TOKENS.sot] if timestamps else [TOKENS.sot, TOKENS.no_timestamps]
    own = OwnVocabulary(decoder)
    chains = [ModelDrafter(view, view_rules, TOKENS.eot, draft_policy()).propose(prompt, len(prompt), 24, DecodeStats())
              for view, view_rules in ((decoder, rules), (own, rules.over(own.columns)))]
    assert chains[0] == chains[1]
    assert not timestamps or chains[0][0][0] >= TOKENS.timestamp_begin  # a timestamp first: an id past the text


def test_a_shallow_draft_that_is_the_whole_target_is_always_accepted():
    """Every target layer, the whole vocabulary, the target's head: the draft is the target, so every drafted
    token is kept (a wrong cache, cross-attention or head in the draft's own decoding path shows here)."""
    target = bundle(TARGETS[0])
    draft = shallow(target, (0, 1), TOKENS.eot)
    expected, plain = decode(target, None, None, False, 0.0, 40, 7)
    got, stats = decode(target, draft, draft_policy(max_tokens=8), False, 0.0, 40, 7, int8=False)
    assert got == expected and len(expected) == 40
    assert stats.acceptance_rate == 1.0 and stats.target_passes == 5


def test_decoding_path_computes_the_training_logits():
    """The draft's cached decoding (float) gives, over its vocabulary, the logits training teaches."""
    target = bundle(TARGETS[1])
    draft = shallow(target, (1,), 30, noise=0.3, seed=3)
    target_decoder = WhisperDecoder(target)
    target_decoder.encode(features(5))
    decoder = ShallowDecoder(draft, target_decoder, int8=False)
    decoder.encode(None, None)
    tokens = [TOKENS.sot, TOKENS.no_timestamps, 5, 17, 3, 40]
    cached = Session(decoder).feed(tokens)[:, draft.vocabulary]
    cross = [(target_decoder.cross_keys[1], target_decoder.cross_values[1])]
    with torch.no_grad():
        trained = draft.logits(torch.tensor(tokens), cross)
    assert torch.allclose(cached, trained, atol=1e-4)
    outside = torch.ones(target.model.config.vocab_size, dtype=torch.bool)
    outside[draft.vocabulary] = False
    assert bool((Session(decoder).feed(tokens)[:, outside] < -1e3).all())


def test_draft_file_round_trip_and_refusals(tmp_path):
    target = bundle(TARGETS[0])
    draft = shallow(target, (1,), 30, noise=0.3)
    path = tmp_path / "draft.safetensors"
    draft.save(path)
    loaded = ShallowDraft.load(path, target)
    assert loaded.shares == (1,) and torch.equal(loaded.vocabulary, draft.vocabulary)
    trained = draft.trained_state()
    assert trained.keys() == loaded.trained_state().keys()
    assert all(torch.allclose(value, trained[name], atol=1e-2) for name, value in loaded.trained_state().items())
    # the frozen weights (output rows, feed-forward, cross keys/values) are not in the file: the target's are read
    fresh = shallow(target, (1,), 30).state_dict()
    frozen = fresh.keys() - trained.keys()
    assert {"head.weight", "layers.0.fc1.weight", "layers.0.encoder_attn.k_proj.weight"} <= frozen
    assert loaded.head.weight.is_meta  # read when asked (complete); a CPU decoder reads the draft's int8 cache
    loaded.complete()
    assert all(torch.equal(loaded.state_dict()[name], fresh[name]) for name in frozen)
    other = bundle(TARGETS[1])
    other.name = "another"
    with pytest.raises(SpecvoiceError, match="a draft for 'tiny-random', not for the target 'another'"):
        ShallowDraft.load(path, other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a draft")
    with pytest.raises(SpecvoiceError, match="not a specvoice draft file"):
        ShallowDraft.load(junk, target)
    # without the timestamp tokens, the drafter could not rule or pick among the draft's own tokens
    no_timestamps = ShallowDraft(target, (1,), torch.arange(0, TOKENS.timestamp_begin))
    no_timestamps.save(junk)
    with pytest.raises(SpecvoiceError, match="vocabulary must be sorted token ids ending with every special"):
        ShallowDraft.load(junk, target)


def tiny_examples(target, shares, count: int) -> list:
    """What teacher.example records, for a tiny model: its cross keys/values and its own greedy tokens."""
    from specvoice.distill.teacher import Example

    decoder = WhisperDecoder(target)
    examples = []
    for seed in range(count):
        decoder.encode(features(seed))
        task = DecodeTask([TOKENS.sot, TOKENS.no_timestamps], rules_for(target, False, 0.3), TOKENS.eot, 20)
        tokens = task.prompt + greedy_decode(decoder, task).tokens
        cross = [(decoder.cross_keys[i].half(), decoder.cross_values[i].half()) for i in shares]
        examples.append(Example(cross, [(tokens, len(task.prompt))]))
    return examples


def test_distillation_teaches_a_tiny_draft_the_targets_tokens(one_thread):
    """The training behind `specvoice distill`, in seconds: the draft's agreement with the target rises."""
    from specvoice.distill import distill
    from specvoice.distill.train import agreement
    from specvoice.options import DistillOptions

    target = bundle(TARGETS[0])
    settings = DistillOptions(shares=(1,), frequent=40, epochs=30, learning_rate=3e-3)
    examples = tiny_examples(target, settings.shares, 20)
    untrained = ShallowDraft(target, settings.shares, draft_vocabulary(target, settings.frequent))
    before = agreement(untrained, examples, target.model.config.vocab_size)
    result = distill(target, examples, settings)
    after = agreement(result.draft, examples, target.model.config.vocab_size)
    assert result.examples == 18 and result.held_out.positions > 0
    assert after.positions == before.positions
    assert after.rate > before.rate + 0.3
    trained = result.draft.trained_state().keys()
    assert not any("fc1" in name or "fc2" in name or name == "head.weight" for name in trained)
    fresh = ShallowDraft(target, settings.shares, result.draft.vocabulary).state_dict()  # the target's weights
    assert all(torch.equal(value, fresh[name]) for name, value in result.draft.state_dict().items()
               if name not in trained)


@pytest.mark.real
def test_shipped_draft_loads_offline_and_gives_the_greedy_tokens(int8_base, manifest):
    """The draft that ships for base loads from the package (no download: HF_HUB_OFFLINE in the test run changes
    nothing for it) and, on real clips, short and long form, specasr with it gives exactly ar's tokens."""
    from conftest import SPEECH
    from specvoice.audio import load_audio
    from specvoice.models import load_draft
    from specvoice.options import DecodingOptions
    from specvoice.transcribe import Transcriber
    from specvoice.whisper.shallow import SHALLOW, shipped_draft

    assert shipped_draft("base") is not None and shipped_draft("tiny.en") is None
    draft = load_draft(SHALLOW, int8_base)
    assert isinstance(draft, ShallowDraft) and draft.name == SHALLOW
    long_form = min((row for row in manifest if row["seconds"] > 30), key=lambda row: row["seconds"])
    clips = [row for row in manifest if row["seconds"] <= 30][:4] + [long_form]
    for row in clips:
        audio = load_audio(SPEECH / row["audio"])
        for timestamps in (False, True):
            options = dict(language="en", timestamps=timestamps)
            expected = Transcriber(int8_base, None, DecodingOptions("ar", **options)).transcribe(audio).tokens
            got = Transcriber(int8_base, draft, DecodingOptions("specasr", **options)).transcribe(audio)
            assert got.tokens == expected, (row["id"], timestamps)
            assert got.stats.accepted > 0, row["id"]


@pytest.mark.real
def test_the_teacher_decodes_each_piece_three_ways_carrying_the_text_across_passages(int8_base):
    """distill's teacher, on real speech standing in for the voice: each piece decoded as a short clip, and with
    timestamps after a tail of the earlier pieces' text and after all of it (across passages, as transcription
    carries a file's text)."""
    from conftest import SPEECH
    from specvoice.audio import load_audio
    from specvoice.distill.teacher import teach

    jfk = load_audio(SPEECH / "whisper_jfk.wav")
    thirds = np.array_split(jfk, 3)
    examples = list(teach(int8_base, lambda text, speed, seed: (thirds[seed % 3], 16000), (0, 5),
                          ["One sentence. Another one.", "A third passage."], seed=0))
    assert len(examples) >= 2
    tokenizer, so_far = int8_base.tokenizer, []
    for example in examples:
        (plain, plain_prompt), (after_tail, tail_prompt), (later, later_prompt) = example.sequences
        assert plain[:plain_prompt] == int8_base.decode_task("en", "transcribe", False).prompt
        tails = [int8_base.decode_task("en", "transcribe", True, so_far[start:]).prompt
                 for start in range(len(so_far) + 1)]
        assert after_tail[:tail_prompt] in tails
        assert later[:later_prompt] == int8_base.decode_task("en", "transcribe", True, so_far).prompt
        assert plain[-1] == after_tail[-1] == later[-1] == tokenizer.eot
        if not so_far:
            assert later == after_tail  # nothing earlier: both are a first window
        so_far += [t for t in later[later_prompt:] if t != tokenizer.eot]
    assert len(so_far) > 10 and any(t >= tokenizer.timestamp_begin for t in so_far)


# A value the options refuse is a usage error (exit 2, as every command's); a draft that cannot be had exits 1.
@pytest.mark.parametrize("args, words, code", [
    (("distill", "-o", "draft.pt"), ("draft.pt", ".safetensors"), 2),
    (("distill", "-o", "d.safetensors", "--shares", "0,x"), ("--shares", "0,x"), 2),
    (("distill", "-o", "d.safetensors", "--shares", "1,1"), ("--shares 1,1", "distinct"), 2),
    (("distill", "-o", "d.safetensors", "--epochs", "0"), ("--epochs",), 2),
    (("transcribe", "CLIP", "--method", "specasr", "--draft", "missing.safetensors"), ("missing.safetensors",), 1),
    (("transcribe", "CLIP", "-m", "tiny.en", "--method", "specasr", "--draft", "shallow"), ("tiny.en", "distill"), 1),
])
def test_distill_and_draft_file_bad_input_is_one_line(tmp_path, args, words, code):
    from conftest import SPEECH
    from test_cli import assert_one_line_error, specvoice

    args = [str(SPEECH / "whisper_jfk.wav") if arg == "CLIP" else arg for arg in args]
    result = specvoice(*args, cwd=tmp_path)
    assert_one_line_error(result, *words)
    assert result.returncode == code
    assert not list(tmp_path.glob("*.safetensors*"))
