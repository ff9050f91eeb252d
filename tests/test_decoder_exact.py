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
    assert greedy_decode(decoder, DecodeTask(prompt, rules, TOKENS.eot, 30)) == expected


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
