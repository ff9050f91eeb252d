"""dllm (prior-guided parallel refinement) is token-identical to greedy on tiny random models."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from conftest import TOKENS, bundle, draft_policy, features, perturbed
from specvoice.engine.drafter import ModelDrafter
from specvoice.engine.prior import PriorRefiner
from specvoice.engine.speculative import DecodeTask, greedy_decode
from specvoice.engine.stats import DecodeStats
from specvoice.whisper.decoder import WhisperDecoder
from test_engine_identity import TARGETS, decode, rules_for


def refine(target, prior, timestamps, eot_boost, max_new, audio_seed, fallback_policy=None, **knobs):
    audio = features(audio_seed)
    decoder = WhisperDecoder(target)
    decoder.encode(audio)
    draft_decoder = WhisperDecoder(target)
    draft_decoder.encode(audio)
    prompt = [TOKENS.sot] if timestamps else [TOKENS.sot, TOKENS.no_timestamps]
    rules = rules_for(target, timestamps, eot_boost)
    fallback = ModelDrafter(draft_decoder, rules, TOKENS.eot, fallback_policy or draft_policy(max_tokens=6, recycle=True))
    refiner = PriorRefiner(lambda stats: list(prior), TOKENS.eot, fallback, **knobs)
    stats = DecodeStats()
    tokens = greedy_decode(decoder, DecodeTask(prompt, rules, TOKENS.eot, max_new), refiner, stats).tokens
    return tokens, stats, refiner


def corrupt(tokens, edits, seed):
    """Substitute, insert and delete tokens: a prior as wrong as a weak ASR hypothesis."""
    import random

    rng = random.Random(seed)
    out = list(tokens)
    for _ in range(edits):
        kind, at = rng.choice("sid"), rng.randrange(len(out) + 1)
        if kind == "s" and at < len(out):
            out[at] = rng.randrange(TOKENS.eot)
        elif kind == "i":
            out.insert(at, rng.randrange(TOKENS.eot))
        elif out and at < len(out):
            del out[at]
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2), timestamps=st.booleans(), eot_boost=st.sampled_from([0.0, 0.3]),
       max_new=st.integers(1, 40), audio_seed=st.integers(0, 1000), edits=st.integers(0, 8),
       margin=st.integers(0, 6), weak_rounds=st.integers(1, 4), max_rounds=st.integers(1, 40))
def test_refinement_equals_greedy(seed, timestamps, eot_boost, max_new, audio_seed, edits, margin, weak_rounds,
                                  max_rounds):
    target = bundle(TARGETS[seed])
    expected, _ = decode(target, None, None, timestamps, eot_boost, max_new, audio_seed)
    prior = corrupt(expected, edits, audio_seed)
    got, stats, _ = refine(target, prior, timestamps, eot_boost, max_new, audio_seed, margin=margin,
                           weak_rounds=weak_rounds, max_rounds=max_rounds)
    assert got == expected
    assert stats.tokens == len(expected)


def test_prior_from_another_model_still_exact():
    target = bundle(TARGETS[1])
    expected, _ = decode(target, None, None, False, 0.3, 40, 21)
    noisy_prior, _ = decode(bundle(perturbed(target.model, 2, 0.3)), None, None, False, 0.3, 40, 21)
    got, _, _ = refine(target, noisy_prior, False, 0.3, 40, 21)
    assert got == expected


def test_perfect_prior_converges_in_one_round():
    target = bundle(TARGETS[0])
    expected, _ = decode(target, None, None, False, 0.0, 30, 4)
    got, stats, refiner = refine(target, expected, False, 0.0, 30, 4)
    assert got == expected and stats.target_passes == 1 and not refiner.fell_back


def test_one_wrong_token_is_fixed_in_the_same_round_as_the_rest():
    target = bundle(TARGETS[0])
    expected, _ = decode(target, None, None, False, 0.0, 30, 4)
    prior = list(expected)
    prior[10] = (prior[10] + 1) % TOKENS.eot  # substitution: realigned tail rides along in round 2
    got, stats, _ = refine(target, prior, False, 0.0, 30, 4)
    assert got == expected and stats.target_passes == 2


def test_hopeless_prior_falls_back_to_drafting():
    target = bundle(TARGETS[2])
    expected, _ = decode(target, None, None, False, 0.0, 40, 8)
    got, stats, refiner = refine(target, [5] * 40, False, 0.0, 40, 8, weak_rounds=2)
    assert got == expected and refiner.fell_back
