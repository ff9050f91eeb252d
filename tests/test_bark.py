"""Bark's causal stages on the engine: greedy output identical to transformers' Bark, speculative sampling at
beta 0 keeps the target's distribution (first tokens against exact probabilities, lengths against plain
sampling, each check shown to flag a lossy sampler), and clear errors for voices, long text and mismatched pairs.
Tiny random Bark models with a small vocabulary layout (tests/tts_models.py)."""

from __future__ import annotations

import pytest
import torch

from conftest import perturbed
from specvoice.bark import BarkPair
from specvoice.bark.model import semantic_constraint
from specvoice.engine.sampling import Sampler, Warp
from specvoice.engine.stats import DecodeStats
from specvoice.errors import SpecvoiceError
from test_sampling import chi_square, critical_value
from tts_models import SEMANTIC, tiny_bark, tiny_bark_tokenizer, voice_arrays

TEXT = "hello world the cat sat on the mat"
RUNS = 800


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models():
    target = tiny_bark(0)
    return target, perturbed(target, seed=1, scale=0.5)  # a draft whose lengths differ from the target's


@pytest.fixture(scope="module")
def pair(models, tmp_path_factory):
    return BarkPair(models[0], tiny_bark_tokenizer(tmp_path_factory.mktemp("tokenizer")), {}, draft=models[1])


@pytest.fixture(scope="module")
def voice(pair):
    return {key: torch.from_numpy(value) for key, value in voice_arrays(3).items()}


def test_greedy_stages_match_transformers_bark(pair, voice):
    target, ids = pair.target, pair.text_tokens(TEXT)
    greedy = Sampler(Warp(0.0), speculative=False)
    semantic = pair.semantic_tokens(ids, voice, greedy)
    length = pair.max_text_tokens
    reference = target.semantic.generate(torch.tensor([ids + [0] * (length - len(ids))]), history_prompt=voice,
                                         attention_mask=torch.tensor([[1] * len(ids) + [0] * (length - len(ids))]),
                                         semantic_generation_config=pair.semantic_config, do_sample=False)
    assert semantic == [t for t in reference[0].tolist() if t != pair.semantic_config.semantic_pad_token]
    coarse = pair.coarse_tokens(semantic, voice, greedy)
    reference_coarse = target.coarse_acoustics.generate(
        reference.clone(), history_prompt=voice, semantic_generation_config=pair.semantic_config,
        coarse_generation_config=pair.coarse_config, codebook_size=pair.codebook_size, do_sample=False)
    assert len(coarse) > pair.coarse_config.sliding_window_len  # more than one window
    assert coarse == reference_coarse[0].tolist()


def test_greedy_speculative_is_token_identical_to_greedy(pair, voice):
    ids = pair.text_tokens(TEXT)
    stats = DecodeStats()
    plain = Sampler(Warp(0.0), speculative=False)
    fast = Sampler(Warp(0.0), speculative=True, stats=stats)
    semantic = pair.semantic_tokens(ids, voice, plain)
    assert pair.semantic_tokens(ids, voice, fast) == semantic
    assert pair.coarse_tokens(semantic, voice, fast) == pair.coarse_tokens(semantic, voice, plain)
    assert stats.target_passes < stats.tokens


def exact_first_two(pair, ids, warp: Warp) -> torch.Tensor:
    """[S+1, S+1]: the probability of the first two semantic tokens (row S: stopped at once), from transformers."""
    config, model = pair.semantic_config, pair.target.semantic
    length = pair.max_text_tokens
    text = torch.tensor([t + config.text_encoding_offset for t in ids] + [config.text_pad_token] * (length - len(ids)))
    embed = model.input_embeds_layer
    prefix = torch.cat([embed(text) + embed(torch.full((length,), config.semantic_pad_token)),
                        embed(torch.tensor([config.semantic_infer_token]))])
    constrained = Warp(warp.temperature, constraint=semantic_constraint(config, pair.semantic[0].vocab_size))
    eos, size = config.semantic_pad_token, SEMANTIC + 1

    def next_token(*tokens: int) -> torch.Tensor:
        with torch.no_grad():
            embeds = torch.cat([prefix, embed(torch.tensor(tokens, dtype=torch.long))]) if tokens else prefix
            logits = model(inputs_embeds=embeds.unsqueeze(0)).logits[0, -1]
        return constrained.probabilities(logits.double().unsqueeze(0), len(tokens))[0, :size]

    first = next_token()
    table = torch.zeros(size, size, dtype=torch.float64)
    table[eos, eos] = first[eos]  # stopped at once: recorded as (eos, eos)
    for a in range(SEMANTIC):
        table[a] = first[a] * next_token(a)
    return table


def first_two_and_lengths(pair, ids, sampler: Sampler, runs: int):
    eos = pair.semantic_config.semantic_pad_token
    table = torch.zeros(SEMANTIC + 1, SEMANTIC + 1, dtype=torch.float64)
    lengths = []
    for _ in range(runs):
        tokens = pair.semantic_tokens(ids, None, sampler) + [eos, eos]
        table[tokens[0], tokens[1]] += 1
        lengths.append(len(tokens) - 2)
    return table, torch.tensor(lengths)


def length_histogram(lengths: torch.Tensor, edges=(0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 30)) -> torch.Tensor:
    return torch.bincount(torch.bucketize(lengths, torch.tensor(edges), right=True), minlength=len(edges) + 1).double()


def homogeneous(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Chi-square two-sample test of two histograms at the 0.1% level."""
    pooled = (a + b) / (a + b).sum()
    both = torch.stack([a, b])
    expected = both.sum(1, keepdim=True) * pooled
    keep = pooled * min(a.sum(), b.sum()) >= 5  # bins where the approximation holds
    statistic = float(((both - expected) ** 2 / expected)[:, keep].sum())
    return statistic <= critical_value(int(keep.sum()) - 1)


def test_speculative_sampling_keeps_bark_semantic_distribution(pair):
    ids = pair.text_tokens(TEXT)
    warp = Warp(1.0)
    exact = exact_first_two(pair, ids, warp)
    generator = torch.Generator().manual_seed(0)
    reference, reference_lengths = first_two_and_lengths(pair, ids, Sampler(warp, False, generator=generator), RUNS)
    stats = DecodeStats()
    exact_sampler = Sampler(warp, True, beta=0.0, generator=generator, stats=stats)
    kept, kept_lengths = first_two_and_lengths(pair, ids, exact_sampler, RUNS)
    lossy, lossy_lengths = first_two_and_lengths(pair, ids, Sampler(warp, True, beta=1.0, generator=generator), RUNS)
    assert 0.3 < stats.acceptance_rate < 0.95
    for counts, faithful in ((reference, True), (kept, True), (lossy, False)):
        statistic, critical = chi_square(counts, exact)
        assert (statistic <= critical) == faithful, (statistic, critical)
    assert homogeneous(length_histogram(reference_lengths), length_histogram(kept_lengths))
    assert not homogeneous(length_histogram(reference_lengths), length_histogram(lossy_lengths))


def test_unknown_voice_too_long_text_and_mismatched_pair(pair, models, tmp_path):
    with pytest.raises(SpecvoiceError, match="unknown voice 'v2/nobody'"):
        pair.voice("v2/nobody")
    with pytest.raises(SpecvoiceError, match="longer than Bark's 256"):
        pair.semantic_tokens(list(range(300)), None, Sampler(Warp(1.0), False))
    from tts_models import tiny_bark as build

    other = build(2)
    other.semantic.lm_head = torch.nn.Linear(32, SEMANTIC + 5, bias=False)
    other.semantic.config.output_vocab_size = SEMANTIC + 5
    with pytest.raises(SpecvoiceError, match="semantic vocabularies differ"):
        BarkPair(models[0], pair.tokenizer, {}, draft=other)
