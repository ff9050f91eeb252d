"""Llasa through lm/decoder.py on tiny random Llama + X-codec2 models: the model card's prompt, speculative
sampling at beta 0 keeps the first speech token's distribution (beta 1 is flagged), greedy ssd equals ar,
codes decode to audio of 320 samples per code at 16 kHz."""

from __future__ import annotations

import pytest
import torch

from conftest import perturbed
from specvoice.engine.sampling import Sampler, Warp
from specvoice.engine.stats import DecodeStats
from specvoice.llasa import SPEECH_START, LlasaPair
from test_sampling import chi_square
from tts_models import tiny_llasa, tiny_llasa_tokenizer, tiny_xcodec2

RUNS = 1500


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair():
    tokenizer = tiny_llasa_tokenizer()
    target = tiny_llasa(0, len(tokenizer))
    return LlasaPair(target, tokenizer, tiny_xcodec2(0), perturbed(target, seed=1, scale=0.3))


def test_prompt_is_the_model_cards(pair):
    text = pair.tokenizer.decode(pair.prompt("hello world"))
    assert text.endswith(SPEECH_START)
    assert "convert the text to speech : <|TEXT_UNDERSTANDING_START|> hello world <|TEXT_UNDERSTANDING_END|>" in text


def test_first_token_distribution_is_kept_and_beta_one_is_flagged(pair):
    prompt = pair.prompt("the cat sat")
    warp = Warp(1.0)
    with torch.no_grad():  # the transformers model's own forward, not our cache
        hidden = pair.decoder.body(torch.tensor([prompt])).last_hidden_state
        exact = warp.probabilities(pair.decoder.lm_head(hidden)[0, -1:].double())[0]
    generator = torch.Generator().manual_seed(0)
    verdicts = []
    stats = DecodeStats()
    for beta in (0.0, 1.0):
        sampler = Sampler(warp, True, beta=beta, draft_len=1, generator=generator, stats=stats)
        counts = torch.zeros(len(exact), dtype=torch.float64)
        for _ in range(RUNS):
            counts[sampler(pair.decoder, pair.draft, prompt, 2, None)[0]] += 1
        statistic, critical = chi_square(counts, exact)
        verdicts.append(statistic <= critical)
    assert verdicts == [True, False]
    assert 0.2 < stats.acceptance_rate < 0.95


def test_greedy_ssd_equals_ar_and_transformers_and_decodes_to_audio(pair):
    plain = pair.speech_codes("hello world", Sampler(Warp(0.0), False))
    assert pair.speech_codes("hello world", Sampler(Warp(0.0), True)) == plain
    prompt = pair.prompt("hello world")
    model = pair.decoder.body, pair.decoder.lm_head
    chain = list(prompt)
    with torch.no_grad():  # the transformers modules' own greedy chain, no cache
        while len(chain) < 2048 and (len(chain) == len(prompt) or chain[-1] != pair.end):
            chain.append(int(model[1](model[0](torch.tensor([chain])).last_hidden_state)[0, -1].argmax()))
            if len(chain) - len(prompt) >= 200:
                break
    theirs = [t - pair.first_code for t in chain[len(prompt):] if pair.first_code <= t < pair.first_code + pair.codes]
    assert plain[: len(theirs)] == theirs and len(plain) > 0
    audio = pair.audio(plain)
    assert pair.sample_rate == 16000 and len(audio) == 320 * len(plain)
