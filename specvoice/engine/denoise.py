"""dLLM-ASR's loop for a genuinely bidirectional (masked-diffusion) decoder, such as LLaDA or Dream.

Such a decoder scores every position of a partly masked sequence at once, each position seeing all the
others. The prior's confident tokens are kept; its unsure ones start masked, with a few extra masked
positions for insertions. Each round commits every masked position the decoder is sure of (probability
at least `threshold`), and at least the single surest one, so it ends in at most as many rounds as there
are masks; a confidently predicted end of text prunes everything after it (length-adaptive pruning).

Unlike the autoregressive path (prior.py) there is no greedy reference to be identical to: the result is
the denoiser's own. Speech models of this kind are not loadable here; the loop is exercised on tiny
bidirectional models built in the tests.
"""

from __future__ import annotations

from typing import Protocol

import torch

from .stats import DecodeStats


class BidirectionalDenoiser(Protocol):
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [n, vocab] for the n tokens; every position attends to every other."""


def masked_denoise(denoiser: BidirectionalDenoiser, prior: list[int], prior_confidence: list[float],
                   mask_token: int, stop_token: int, threshold: float = 0.9, keep_prior_above: float = 0.9,
                   margin: int = 4, max_rounds: int | None = None, stats: DecodeStats | None = None) -> list[int]:
    stats = stats if stats is not None else DecodeStats()
    tokens = [t if c >= keep_prior_above else mask_token for t, c in zip(prior, prior_confidence)]
    tokens += [mask_token] * margin
    rounds = 0
    while mask_token in tokens:
        rounds += 1
        logits = denoiser(torch.tensor(tokens)).float()
        stats.target_passes += 1
        logits[:, mask_token] = float("-inf")  # a committed position must hold a real token
        probs, predicted = torch.softmax(logits, dim=-1).max(dim=-1)
        masked = torch.tensor([t == mask_token for t in tokens])
        last_round = max_rounds is not None and rounds >= max_rounds
        commit = masked & (probs >= threshold) if not last_round else masked
        if not commit.any():
            commit[torch.where(masked, probs, -1.0).argmax()] = True
        for position in torch.nonzero(commit).flatten().tolist():
            tokens[position] = predicted[position].item()
        stats.accepted += int(commit.sum())
        ends = [i for i, t in enumerate(tokens) if t == stop_token]
        if ends:
            del tokens[ends[0] + 1:]
    stats.tokens += len(tokens)
    return tokens
