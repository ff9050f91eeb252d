"""Lookup drafts (no model pass): exact whatever they propose, and nearly free passes when they know the answer."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from conftest import TOKENS, bundle, draft_policy, features, perturbed
from specvoice.engine.drafter import ModelDrafter
from specvoice.engine.lookup import LookupDrafter, MergedDrafter
from specvoice.engine.speculative import DecodeTask, greedy_decode
from specvoice.engine.stats import DecodeStats
from specvoice.whisper.decoder import WhisperDecoder
from test_dllm import corrupt
from test_engine_identity import TARGETS, decode, rules_for

PROMPT = [TOKENS.sot, TOKENS.no_timestamps]


def decode_with(target, drafter, max_new, audio_seed, eot_boost=0.0):
    decoder = WhisperDecoder(target)
    decoder.encode(features(audio_seed))
    stats = DecodeStats()
    task = DecodeTask(PROMPT, rules_for(target, False, eot_boost), TOKENS.eot, max_new)
    return greedy_decode(decoder, task, drafter, stats).tokens, stats


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2), max_new=st.integers(1, 40), audio_seed=st.integers(0, 1000), edits=st.integers(0, 10),
       anchored=st.booleans(), longest=st.integers(1, 5), candidates=st.integers(1, 3), with_model=st.booleans(),
       enough=st.sampled_from([None, 1, 4]))
def test_lookup_drafts_equal_greedy(seed, max_new, audio_seed, edits, anchored, longest, candidates, with_model,
                                    enough):
    target = bundle(TARGETS[seed])
    expected, _ = decode(target, None, None, False, 0.3, max_new, audio_seed)
    lookup = LookupDrafter([corrupt(expected, edits, audio_seed)], anchored=anchored, longest_match=longest,
                           candidates=candidates)
    drafter = lookup
    if with_model:
        model_decoder = WhisperDecoder(bundle(perturbed(target.model, seed, 0.3)))
        model_decoder.encode(features(audio_seed))
        drafter = MergedDrafter(lookup, ModelDrafter(model_decoder, rules_for(target, False, 0.3), TOKENS.eot,
                                                     draft_policy(max_tokens=6, recycle=True)), enough=enough)
    got, stats = decode_with(target, drafter, max_new, audio_seed, eot_boost=0.3)
    assert got == expected
    assert stats.tokens == len(expected)


def test_a_previous_hypothesis_that_is_the_answer_costs_one_pass():
    target = bundle(TARGETS[0])
    expected, plain = decode(target, None, None, False, 0.0, 40, 7)
    got, stats = decode_with(target, LookupDrafter([expected], anchored=True), 40, 7)
    assert got == expected and plain.target_passes == 40
    assert stats.target_passes == 1 and stats.draft_passes == 0


def test_longest_match_wins_and_the_latest_occurrence_comes_first():
    drafter = LookupDrafter([[1, 2, 3, 9, 9, 5, 2, 3, 4, 7]], longest_match=3, candidates=2)
    # "2 3" occurs twice: the later occurrence (followed by 4 7) first, then the earlier (followed by 9 9)
    assert drafter.propose([0, 8, 2, 3], 1, budget=2, stats=DecodeStats()) == [[4, 7], [9, 9]]
    # "5 2 3" only occurs once: the longer match alone, even though "2 3" has two
    assert drafter.propose([0, 5, 2, 3], 1, budget=3, stats=DecodeStats()) == [[4, 7]]
    # the decoded tokens are searched too (prompt lookup), but not their own last n-gram
    assert LookupDrafter([]).propose([0, 6, 1, 6], 1, budget=2, stats=DecodeStats()) == [[1, 6]]
    assert LookupDrafter([[6, 6]], anchored=True).propose([0], 1, budget=5, stats=DecodeStats()) == [[6, 6]]
    assert LookupDrafter([[6, 6]]).propose([0], 1, budget=5, stats=DecodeStats()) == []
