"""specvoice's own Whisper decoder (static cache, own forward) gives transformers' greedy tokens."""

from __future__ import annotations

import pytest
import torch

from conftest import TOKENS, bundle, features, tiny_whisper
from hf_reference import hf_greedy
from specvoice.engine.decoder import Session
from specvoice.engine.speculative import DecodeTask, greedy_decode
from specvoice.whisper.decoder import WhisperDecoder
from specvoice.whisper.rules import WhisperRules


@pytest.mark.parametrize("seed", range(6))
def test_greedy_tokens_equal_transformers_generate(seed):
    model = bundle(tiny_whisper(seed))
    audio = features(seed)
    prompt = [TOKENS.sot, TOKENS.no_timestamps]
    expected = hf_greedy(model.model, audio, prompt, model.suppress_tokens, model.begin_suppress_tokens, 30,
                         TOKENS.eot)
    decoder = WhisperDecoder(model)
    decoder.encode(audio)
    rules = WhisperRules(TOKENS, model.suppress_tokens, model.begin_suppress_tokens, timestamps=False)
    assert greedy_decode(decoder, DecodeTask(prompt, rules, TOKENS.eot, 30)).tokens == expected


def test_logits_match_transformers_forward():
    model = tiny_whisper(3)
    audio = features(3)
    tokens = [TOKENS.sot, TOKENS.no_timestamps, 5, 17, 42, 8]
    with torch.no_grad():
        expected = model(input_features=audio, decoder_input_ids=torch.tensor([tokens])).logits[0]
    decoder = WhisperDecoder(bundle(model))
    decoder.encode(audio)
    with torch.inference_mode():
        session = Session(decoder)
        first = session.feed(tokens[:2])
        rest = torch.cat([session.feed([t]) for t in tokens[2:]])  # one token at a time through the cache
    torch.testing.assert_close(torch.cat([first, rest]), expected, rtol=1e-4, atol=1e-4)


def test_rewind_reuses_cache_without_recomputing():
    decoder = WhisperDecoder(bundle(tiny_whisper(4)))
    decoder.encode(features(4))
    with torch.inference_mode():
        session = Session(decoder)
        reference = session.feed([TOKENS.sot, 3, 9, 27])
        keep = session.rewind_to([TOKENS.sot, 3, 9, 50])
        assert keep == 3 and list(session.tokens) == [TOKENS.sot, 3, 9]
        torch.testing.assert_close(session.feed([27]), reference[-1:])


@pytest.mark.parametrize("drafted", [False, True])
def test_log_probability_and_watched_logits_match_a_plain_forward(drafted):
    """The sum of log-probabilities (under the rules) of what greedy emits, and raw logits at a prompt position,
    as transformers' forward over the whole sequence gives them; a draft changes neither."""
    from specvoice.engine.drafter import ModelDrafter
    from conftest import draft_policy

    model = bundle(tiny_whisper(5))
    audio = features(5)
    prompt = [TOKENS.sot, TOKENS.no_timestamps]
    rules = WhisperRules(TOKENS, model.suppress_tokens, model.begin_suppress_tokens, timestamps=False)
    decoder = WhisperDecoder(model)
    decoder.encode(audio)
    drafter = None
    if drafted:
        draft_decoder = WhisperDecoder(model)
        draft_decoder.encode(audio)
        drafter = ModelDrafter(draft_decoder, rules, TOKENS.eot, draft_policy(max_tokens=5))
    result = greedy_decode(decoder, DecodeTask(prompt, rules, TOKENS.eot, 20, watch=0), drafter)
    with torch.no_grad():
        logits = model.model(input_features=audio, decoder_input_ids=torch.tensor([prompt + result.tokens])).logits[0]
    history = [result.tokens[:i] for i in range(len(result.tokens))]
    ruled = rules(logits[len(prompt) - 1: -1].clone(), history)
    expected = torch.log_softmax(ruled, dim=-1)[range(len(result.tokens)), result.tokens].sum()
    assert result.logprob == pytest.approx(float(expected), abs=1e-3)
    torch.testing.assert_close(result.watched, logits[0], rtol=1e-4, atol=1e-4)


def test_int8_tree_rows_equal_single_token_passes_bit_for_bit():
    """At int8 a verified tree (a chain and side branches) gives every node the very logits a one-token pass gives
    the same token after the same prefix, bit for bit: the reference (ar) and every method then agree exactly.
    Base-like widths and a 1500-frame encoder output, where batched matrix products round differently."""
    from specvoice.engine.tree import TokenTree

    model = bundle(tiny_whisper(7, d_model=512, layers=2, positions=128, heads=8, frames=1500), int8=True)
    decoder = WhisperDecoder(model)
    decoder.encode(features(7, frames=3000))
    prefix = [TOKENS.sot, TOKENS.no_timestamps] + [int(t) for t in torch.randint(0, TOKENS.eot, (40,))]
    chain, side = prefix[-10:], prefix[-10:-7] + [5, 9, 11]

    def one_at_a_time(tokens: list[int]) -> torch.Tensor:
        session = Session(decoder)
        with torch.inference_mode():
            return torch.cat([session.feed([token]) for token in tokens])

    with torch.inference_mode():
        session = Session(decoder)
        for token in prefix[:-11]:
            session.feed([token])
        tree = TokenTree.build(prefix[-11:-10], [chain, side], max_nodes=64)  # the stem: one uncached token
        logits = session.verify(tree)
    chain_nodes = list(range(1, 11))
    side_nodes = chain_nodes[:3] + [tree.children[3][5], tree.children[tree.children[3][5]][9],
                                    tree.children[tree.children[tree.children[3][5]][9]][11]]
    assert torch.equal(logits[[0] + chain_nodes], one_at_a_time(prefix)[-11:])
    assert torch.equal(logits[[0] + side_nodes], one_at_a_time(prefix[:-10] + side)[-7:])


def test_a_prompt_is_prefilled_at_once_and_close_to_row_by_row():
    """A prompt but its last token goes in one prefill whose rows attend together (every method feeds it alike);
    the decoding passes then start at the prompt's last token. Its logits and cached keys/values are those of
    row-by-row passes up to rounding."""
    model = bundle(tiny_whisper(8), int8=True)
    rules = WhisperRules(TOKENS, model.suppress_tokens, model.begin_suppress_tokens, timestamps=False)
    prompt = [int(t) for t in torch.randint(0, TOKENS.eot, (30,), generator=torch.Generator().manual_seed(8))]
    prompt += [TOKENS.sot, TOKENS.no_timestamps]
    decoder = WhisperDecoder(model)
    decoder.encode(features(8))
    passes, prefills = [], []
    forward, prefill = decoder.forward, decoder.prefill
    decoder.forward = lambda tokens, *rest: passes.append(len(tokens)) or forward(tokens, *rest)
    decoder.prefill = lambda tokens, start, rows: prefills.append((list(tokens), start, list(rows))) or \
        prefill(tokens, start, rows)
    result = greedy_decode(decoder, DecodeTask(prompt, rules, TOKENS.eot, 10, watch=len(prompt) - 2))
    assert prefills == [(prompt[:-1], 0, [len(prompt) - 2])]
    assert passes[0] == 1 and len(passes) == len(result.tokens)  # one row a pass from the prompt's last token on
    with torch.inference_mode():
        at_once = Session(decoder).prefill(prompt, range(len(prompt)))
        cached = decoder.cache.keys.clone()
        row_by_row = Session(decoder).feed(prompt)
    torch.testing.assert_close(at_once, row_by_row, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cached, decoder.cache.keys, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(result.watched, row_by_row[len(prompt) - 2], rtol=1e-4, atol=1e-4)
