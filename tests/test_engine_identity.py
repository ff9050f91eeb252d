"""Every drafter gives exactly the target's greedy tokens: property tests over tiny random models."""

from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st

from conftest import TOKENS, bundle, draft_policy, features, perturbed, tiny_whisper
from specvoice.engine.drafter import Drafter, DraftPolicy, ModelDrafter
from specvoice.engine.speculative import DecodeTask, greedy_decode
from specvoice.engine.stats import DecodeStats
from specvoice.whisper.decoder import WhisperDecoder
from specvoice.whisper.rules import WhisperRules

TARGETS = {seed: tiny_whisper(seed) for seed in range(3)}


def rules_for(model, timestamps: bool, eot_boost: float):
    whisper_rules = WhisperRules(TOKENS, model.suppress_tokens, model.begin_suppress_tokens, timestamps)

    def rules(logits, histories):
        # Push end-of-text up as the output grows, so drafts and verified trees contain it.
        growth = torch.tensor([len(h) for h in histories], dtype=logits.dtype).unsqueeze(1)
        logits[:, TOKENS.eot: TOKENS.eot + 1] += eot_boost * growth
        return whisper_rules(logits, histories)

    return rules


class Watched(Drafter):
    """A drafter passed through, keeping every verified tree and the nodes the target accepted in it."""

    def __init__(self, drafter: Drafter, passes: list):
        self.drafter, self.passes = drafter, passes

    def propose(self, sequence, sampled_from, budget, stats):
        return self.drafter.propose(sequence, sampled_from, budget, stats)

    def observe(self, tree, predictions, accepted):
        self.passes.append((tree, list(accepted)))
        self.drafter.observe(tree, predictions, accepted)


def decode(target, draft, policy: DraftPolicy | None, timestamps: bool, eot_boost: float, max_new: int,
           audio_seed: int, approximate: bool = False, watch: list | None = None):
    """Greedy tokens and stats; with a draft, `watch` (if given) receives every (tree, accepted nodes) verified."""
    audio = features(audio_seed)
    target_decoder = WhisperDecoder(target)
    target_decoder.encode(audio)
    prompt = [TOKENS.sot] if timestamps else [TOKENS.sot, TOKENS.no_timestamps]
    task = DecodeTask(prompt, rules_for(target, timestamps, eot_boost), TOKENS.eot, max_new)
    drafter, stats = None, DecodeStats()
    if policy is not None:
        draft_decoder = WhisperDecoder(draft, approximate=approximate)
        draft_decoder.encode(audio, frames=audio.shape[-1] // 2)
        drafter = Watched(ModelDrafter(draft_decoder, rules_for(draft, timestamps, eot_boost), TOKENS.eot, policy),
                          watch if watch is not None else [])
    return greedy_decode(target_decoder, task, drafter, stats).tokens, stats


policies = st.builds(
    draft_policy,
    max_tokens=st.integers(1, 12),
    confidence=st.sampled_from([0.0, 0.2, 0.5, 0.9]),
    recycle=st.booleans(),
    tree_positions=st.integers(0, 4),
    tree_alternatives=st.integers(1, 3),
    tree_below=st.sampled_from([0.3, 0.8, 1.01]),
    realign_window=st.integers(1, 4),
)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2), draft_kind=st.sampled_from(["same", "noisy", "independent"]), policy=policies,
       timestamps=st.booleans(), eot_boost=st.sampled_from([0.0, 0.3, 2.0]), max_new=st.integers(1, 40),
       audio_seed=st.integers(0, 1000), approximate=st.booleans(), int8=st.booleans())
def test_speculative_equals_greedy(seed, draft_kind, policy, timestamps, eot_boost, max_new, audio_seed, approximate,
                                   int8):
    """At int8 too: the reference then runs at int8, and a verified tree must give exactly its tokens."""
    target = bundle(TARGETS[seed], int8=int8)
    draft = {"same": target, "noisy": bundle(perturbed(target.model, seed, 0.3)),
             "independent": bundle(TARGETS[(seed + 1) % 3])}[draft_kind]
    expected, _ = decode(target, None, None, timestamps, eot_boost, max_new, audio_seed)
    got, stats = decode(target, draft, policy, timestamps, eot_boost, max_new, audio_seed, approximate)
    assert got == expected
    assert stats.tokens == len(expected)


def test_draft_always_right_needs_few_target_passes():
    target = bundle(TARGETS[0])
    expected, plain = decode(target, None, None, False, 0.0, 40, 7)
    got, stats = decode(target, target, draft_policy(max_tokens=8), False, 0.0, 40, 7)
    assert got == expected and len(expected) == 40
    assert plain.target_passes == 40
    assert stats.target_passes == 5  # 8 drafted + 1 own token per pass
    assert stats.acceptance_rate == 1.0


def test_draft_always_wrong_still_exact():
    target = bundle(TARGETS[0])
    wrong = bundle(TARGETS[1])
    expected, _ = decode(target, None, None, False, 0.0, 30, 3)
    got, stats = decode(target, wrong, draft_policy(max_tokens=4, tree_positions=2, tree_alternatives=2,
                                                   tree_below=1.01), False, 0.0, 30, 3)
    assert got == expected
    # the premise: an unrelated model drafted trees on every pass and the target kept none of their tokens
    assert stats.drafted >= 2 * len(expected) and stats.accepted == 0
    assert stats.target_passes == len(expected)


def test_tree_with_one_node():
    """The smallest tree: one drafted position holding the chain's token and one alternative beside it."""
    target = bundle(TARGETS[2])
    expected, _ = decode(target, None, None, True, 0.0, 30, 11)
    passes: list = []
    got, stats = decode(target, bundle(perturbed(target.model, 5, 0.2)),
                        draft_policy(max_tokens=1, tree_positions=1, tree_alternatives=1, tree_below=1.01),
                        True, 0.0, 30, 11, watch=passes)
    assert got == expected
    # the premise: every tree was one node deep, with at most the two candidates there, and the target took
    # the chain's token on some passes and the alternative on others
    assert len(passes) == stats.target_passes
    assert all(set(tree.parents[tree.root + 1:]) <= {tree.root} and len(tree) - tree.root - 1 <= 2
               for tree, _ in passes)
    taken = [tree.tokens[accepted[0]] for tree, accepted in passes if accepted]
    chain_first = [tree.tokens[tree.root + 1] for tree, accepted in passes if accepted]
    assert any(t == c for t, c in zip(taken, chain_first)) and any(t != c for t, c in zip(taken, chain_first))


class Scripted(Drafter):
    """Proposes the given answer from where the decode stands, then tokens past its end of text."""

    def __init__(self, answer: list[int], past_the_end: list[int]):
        self.answer, self.past_the_end = answer, past_the_end

    def propose(self, sequence, sampled_from, budget, stats):
        return [(self.answer[len(sequence) - sampled_from:] + self.past_the_end)[:budget]]


def test_eot_inside_draft_stops_exactly():
    target = bundle(TARGETS[1])
    expected, _ = decode(target, None, None, False, 2.0, 40, 5)
    assert expected[-1] == TOKENS.eot and len(expected) < 40
    passes: list = []
    got, stats = decode(target, target, draft_policy(max_tokens=12), False, 2.0, 40, 5, watch=passes)
    assert got == expected
    # the premise: the last pass verified a draft holding end-of-text right after the tokens it accepted
    tree, accepted = passes[-1]
    assert accepted and tree.children[accepted[-1]].get(TOKENS.eot) is not None
    # a draft that runs on past end-of-text: the decode stops at it all the same
    decoder = WhisperDecoder(target)
    decoder.encode(features(5))
    task = DecodeTask([TOKENS.sot, TOKENS.no_timestamps], rules_for(target, False, 2.0), TOKENS.eot, 40)
    stats = DecodeStats()
    assert greedy_decode(decoder, task, Scripted(expected, [5, 6, 7]), stats).tokens == expected
    assert stats.target_passes == 1


class OracleBehindDecoy:
    """Knows the answer but puts it second, behind a wrong chain, so the winning path is always a branch."""

    def __init__(self, answer: list[int], prompt_len: int, length: int):
        self.answer, self.prompt_len, self.length = answer, prompt_len, length

    def propose(self, sequence, sampled_from, budget, stats):
        done = len(sequence) - sampled_from
        right = self.answer[done: done + min(budget, self.length)]
        decoy = [(t + 1) % TOKENS.eot for t in right]
        return [decoy, decoy[:1] + right[1:], right]

    def observe(self, tree, predictions, accepted):
        pass


def decode_behind_decoy(target, max_new: int) -> tuple[list[int], list[int], DecodeStats]:
    """Greedy tokens, and the same decoded with OracleBehindDecoy (6 tokens a pass): (expected, got, stats)."""
    expected, _ = decode(target, None, None, False, 0.0, max_new, 9)
    decoder = WhisperDecoder(target)
    decoder.encode(features(9))
    task = DecodeTask([TOKENS.sot, TOKENS.no_timestamps], rules_for(target, False, 0.0), TOKENS.eot, max_new)
    stats = DecodeStats()
    return expected, greedy_decode(decoder, task, OracleBehindDecoy(expected, 2, 6), stats).tokens, stats


def test_winning_branch_is_compacted_into_place():
    expected, got, stats = decode_behind_decoy(bundle(TARGETS[0]), 40)
    assert got == expected
    assert stats.target_passes == -(-len(expected) // 7)  # 6 accepted + 1 own token per pass


def decode_after(target, draft, policy: DraftPolicy | None, prompt: list[int], audio_seed: int,
                 temperature: float = 0.0) -> list[int]:
    """Tokens after a long `prompt` (Whisper's previous-text prompt), end-of-text never chosen: the output runs
    until no token is allowed."""
    from specvoice.engine.sampling import sample_decode

    audio = features(audio_seed)
    target_decoder = WhisperDecoder(target)
    target_decoder.encode(audio)
    task = DecodeTask(prompt, rules_for(target, False, -5.0), TOKENS.eot, 224)
    drafter = Drafter()
    if policy is not None:
        draft_decoder = WhisperDecoder(draft)
        draft_decoder.encode(audio)
        drafter = ModelDrafter(draft_decoder, rules_for(draft, False, -5.0), TOKENS.eot, policy)
    if temperature:
        return sample_decode(target_decoder, task, drafter, temperature, torch.Generator().manual_seed(0)).tokens
    return greedy_decode(target_decoder, task, drafter).tokens


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2), policy=policies, prompt_length=st.integers(2, 64), audio_seed=st.integers(0, 1000))
def test_a_prompt_that_leaves_less_room_than_max_new_tokens_ends_the_output_where_the_context_ends(
        seed, policy, prompt_length, audio_seed):
    """A 223-token previous-text prompt and 224 new tokens overflow Whisper's 448 positions: the output stops at
    the last position (it raised IndexError one past it, in the middle of a user's long file), with the same
    tokens whatever drafts them, and fallback sampling stops there too."""
    target = bundle(TARGETS[seed])
    prompt = [TOKENS.sot] + [t % TOKENS.eot for t in range(prompt_length - 2)] + [TOKENS.no_timestamps]
    room = target.model.config.max_target_positions + 1 - len(prompt)  # the last token needs no slot
    expected = decode_after(target, None, None, prompt, audio_seed)
    assert len(expected) == room and TOKENS.eot not in expected
    assert decode_after(target, bundle(perturbed(target.model, seed, 0.3)), policy, prompt, audio_seed) == expected
    assert len(decode_after(target, None, None, prompt, audio_seed, temperature=1.0)) == room
