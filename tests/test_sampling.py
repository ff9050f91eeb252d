"""Speculative sampling keeps the target's distribution (beta = 0), and the check can tell when it does not.

The first three tokens after a fixed prompt are sampled thousands of times and compared, with Pearson's
chi-square at the 0.1% level, against exact probabilities from the transformers model itself. Seeds are
fixed, so every run draws the same samples.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import draft_policy, perturbed
from specvoice.engine.drafter import ModelDrafter
from specvoice.engine.lookup import LookupDrafter
from specvoice.engine.sampling import DraftLength, Warp, sample, sample_decode, speculative_sample
from specvoice.engine.speculative import DecodeTask
from specvoice.engine.stats import DecodeStats
from specvoice.lm.decoder import CausalLMDecoder
from test_lm_decoder import tiny_lm

VOCAB = 8  # few cells, so a few thousand samples give the chi-square test real power
PROMPT = [1, 2, 3]
TEMPERATURE = 0.8
RUNS = 2000


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def target_model():
    return tiny_lm("llama", seed=0, vocab=VOCAB, layers=1)


@pytest.fixture(scope="module")
def target(target_model):
    return CausalLMDecoder(target_model, max_slots=16)


@pytest.fixture(scope="module")
def draft_model(target_model):
    """A draft that agrees with the target only part of the time (acceptance about 0.7)."""
    return perturbed(target_model, seed=1, scale=0.15)


@pytest.fixture(scope="module")
def draft(draft_model):
    return CausalLMDecoder(draft_model, max_slots=16)


def exact_under(target_model, warp: Warp) -> torch.Tensor:
    """[V, V, V]: probability that the target's first three tokens after PROMPT are (a, b, c), computed from the
    transformers model's logits."""
    def next_token(prefixes: list[list[int]], first: int) -> torch.Tensor:
        with torch.no_grad():
            logits = target_model(torch.tensor(prefixes)).logits[:, -1]
        # Rows are different prefixes of one length (a warp reads its rows as consecutive positions).
        return torch.cat([warp.probabilities(row.double().unsqueeze(0), first) for row in logits])

    first = next_token([PROMPT], 0)[0]
    second = next_token([PROMPT + [a] for a in range(VOCAB)], 1)
    third = next_token([PROMPT + [a, b] for a in range(VOCAB) for b in range(VOCAB)], 2).view(VOCAB, VOCAB, VOCAB)
    return first[:, None, None] * second[:, :, None] * third


@pytest.fixture(scope="module")
def exact(target_model) -> torch.Tensor:
    return exact_under(target_model, Warp(TEMPERATURE))


def counts_of_first_three(decode, runs: int, seed: int) -> torch.Tensor:
    """[V, V, V] counts of the first three tokens over `runs` decodes drawing from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.zeros(VOCAB, VOCAB, VOCAB, dtype=torch.float64)
    for _ in range(runs):
        a, b, c = decode(generator)
        counts[a, b, c] += 1
    return counts


def marginals(table: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"first token": table.sum(dim=(1, 2)), "first pair": table.sum(dim=2),
            "second pair": table.sum(dim=0), "triple": table}


def chi_square(counts: torch.Tensor, probabilities: torch.Tensor) -> tuple[float, float]:
    """Pearson's statistic of counts against exact probabilities, and its critical value at the 0.1% level.

    The rarest cells are pooled until every cell expects at least 5 counts (where the chi-square
    approximation holds); the quantile is Wilson-Hilferty's, scipy not being a dependency.
    """
    expected, order = (probabilities.flatten() * counts.sum()).sort()
    observed = counts.flatten()[order]
    pooled = max(int((expected < 5).sum()), int((expected.cumsum(0) < 5).sum()) + 1)
    observed = torch.cat([observed[:pooled].sum().view(1), observed[pooled:]])
    expected = torch.cat([expected[:pooled].sum().view(1), expected[pooled:]])
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, critical_value(len(expected) - 1)


def critical_value(df: int) -> float:
    """The chi-square distribution's 99.9% quantile with df degrees of freedom (Wilson-Hilferty)."""
    z = 3.09  # the standard normal's 99.9% quantile
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def mismatches(counts: torch.Tensor, exact: torch.Tensor) -> list[str]:
    """The marginals whose empirical distribution the chi-square test rejects."""
    expected = marginals(exact)
    flagged = []
    for name, observed in marginals(counts).items():
        statistic, critical = chi_square(observed, expected[name])
        if statistic > critical:
            flagged.append(name)
    return flagged


def speculative(target, draft, beta: float, stats: DecodeStats | None = None):
    # Two drafts per round over three tokens: rejection at either draft, residual, bonus and a draftless
    # last round all shape the first three tokens.
    return lambda generator: speculative_sample(target, draft, PROMPT, 3, None, draft_len=2, beta=beta,
                                                warp=Warp(TEMPERATURE), generator=generator, stats=stats)


def test_plain_sampling_draws_from_the_target(target, exact):
    decode = lambda generator: sample(target, PROMPT, 3, None, warp=Warp(TEMPERATURE), generator=generator)
    assert mismatches(counts_of_first_three(decode, RUNS, seed=1), exact) == []


def test_speculative_sampling_keeps_the_target_distribution(target, draft, exact):
    stats = DecodeStats()
    counts = counts_of_first_three(speculative(target, draft, beta=0.0, stats=stats), RUNS, seed=2)
    assert 0.3 < stats.acceptance_rate < 0.9  # both acceptance and rejection happened often
    assert mismatches(counts, exact) == []


@pytest.mark.parametrize("beta, runs", [(1.0, RUNS // 4), (0.1, RUNS)])
def test_the_check_flags_lossy_acceptance(target, draft, exact, beta, runs):
    # beta = 1 accepts every draft, so the first two tokens come from the draft; beta = 0.1 (SSD's tolerance)
    # is a subtler loss. The statistic grows with the number of runs while the critical value does not,
    # so a bias flagged with fewer runs is flagged with RUNS too.
    counts = counts_of_first_three(speculative(target, draft, beta=beta), runs, seed=3)
    assert {"first token", "first pair"} <= set(mismatches(counts, exact))


def test_a_draft_identical_to_the_target_is_always_accepted(target_model, target):
    twin = CausalLMDecoder(target_model, max_slots=16)
    stats = DecodeStats()
    generator = torch.Generator().manual_seed(4)
    for _ in range(50):
        speculative_sample(target, twin, PROMPT, 8, None, draft_len=3, generator=generator, stats=stats)
    assert stats.drafted > 0 and stats.acceptance_rate == 1.0


def test_tolerance_beta_accepts_more_drafts(target, draft):
    rates = []
    for beta in (0.0, 0.3):
        stats = DecodeStats()
        generator = torch.Generator().manual_seed(5)
        for _ in range(100):
            speculative_sample(target, draft, PROMPT, 8, None, draft_len=3, beta=beta, generator=generator,
                               stats=stats)
        rates.append(stats.acceptance_rate)
    assert rates[1] > rates[0] + 0.1


def test_stop_token_and_lengths(target_model, draft_model, target, draft):
    stop = 3
    generator = torch.Generator().manual_seed(6)
    stats = DecodeStats()
    outputs = [speculative_sample(target, draft, PROMPT, 6, stop, draft_len=3, generator=generator, stats=stats)
               for _ in range(30)]
    outputs += [sample(target, PROMPT, 6, stop, generator=generator) for _ in range(30)]
    assert any(output[-1] == stop for output in outputs) and any(stop not in output for output in outputs)
    for output in outputs:
        assert stop not in output[:-1]
        assert len(output) == 6 or output[-1] == stop
    assert stats.tokens == sum(len(output) for output in outputs[:30])
    # Caches of 6 slots hold the prompt and the new tokens but the last one, which nothing reads.
    small_target, small_draft = (CausalLMDecoder(model, max_slots=6) for model in (target_model, draft_model))
    assert len(speculative_sample(small_target, small_draft, PROMPT, 10, None, 2, generator=generator)) == 4
    assert len(sample(small_target, PROMPT, 10, None, generator=generator)) == 4


def forbid_by_parity(logits: torch.Tensor, first: int) -> torch.Tensor:
    """A position-dependent constraint, like Bark's alternating codebooks: even new tokens may not be 0 or 1."""
    even = (torch.arange(len(logits)) + first) % 2 == 0
    return logits.masked_fill(even.unsqueeze(1) & (torch.arange(VOCAB) < 2), float("-inf"))


WARPED = Warp(TEMPERATURE, top_k=6, top_p=0.9, constraint=forbid_by_parity)


def test_speculative_sampling_keeps_a_warped_distribution_with_adaptive_drafts(target_model, target, draft):
    # Constraint, top-k and top-p shape target and draft alike, so the warped target distribution is kept;
    # the adaptive draft length changes the rounds' shapes between runs.
    exact = exact_under(target_model, WARPED)
    assert float(exact[:2].sum()) == 0.0  # the constraint really bites
    stats = DecodeStats()
    decode = lambda generator: speculative_sample(target, draft, PROMPT, 3, None, DraftLength(1, 3), warp=WARPED,
                                                  generator=generator, stats=stats)
    counts = counts_of_first_three(decode, RUNS, seed=7)
    assert 0.3 < stats.acceptance_rate < 0.95
    assert mismatches(counts, exact) == []
    # Power: the unwarped distribution is told apart from these samples.
    assert mismatches(counts, exact_under(target_model, Warp(TEMPERATURE))) != []


def test_greedy_speculative_sampling_is_token_identical_to_greedy(target_model, target, draft):
    greedy = Warp(0.0)
    stats = DecodeStats()
    for seed in range(20):
        prompt = torch.randint(0, VOCAB, (4,), generator=torch.Generator().manual_seed(seed)).tolist()
        plain = sample(target, prompt, 10, None, warp=greedy)
        assert speculative_sample(target, draft, prompt, 10, None, DraftLength(2, 6), warp=greedy,
                                  generator=torch.Generator().manual_seed(seed), stats=stats) == plain
        chain = list(prompt)
        with torch.no_grad():  # and both are the transformers model's own argmax chain
            for _ in range(10):
                chain.append(int(target_model(torch.tensor([chain])).logits[0, -1].argmax()))
        assert plain == chain[len(prompt):]
    assert 0 < stats.accepted < stats.drafted  # drafts were both kept and replaced


def test_draft_length_adapts():
    lengths = DraftLength(4, 6)
    lengths.observe(4, 4)
    assert lengths.next() == 6
    lengths.observe(6, 6)
    assert lengths.next() == 6
    for _ in range(10):
        lengths.observe(lengths.next(), 0)
    assert lengths.next() == 1


def unruled(logits, histories):
    return logits


@pytest.mark.parametrize("kind", ["model", "lookup"])
def test_sampling_with_any_greedy_drafter_keeps_the_target_distribution(target, draft, exact, kind):
    """A greedy drafter's chain is a draft with one-hot q: Whisper's fallback retries stay exact with the
    default pair (other vocabularies, bridged) and with lookup drafts."""
    task = DecodeTask(PROMPT, unruled, stop_token=None, max_new_tokens=3)
    stats = DecodeStats()

    def decode(generator):
        drafter = ModelDrafter(draft, unruled, None, draft_policy(max_tokens=2)) if kind == "model" else \
            LookupDrafter([[5, 5, 5, 5]], anchored=True)
        return sample_decode(target, task, drafter, TEMPERATURE, generator, stats).tokens

    counts = counts_of_first_three(decode, RUNS, seed=7)
    assert 0.05 < stats.acceptance_rate < 0.95 and stats.tokens == 3 * RUNS  # guesses both kept and refused
    assert mismatches(counts, exact) == []
