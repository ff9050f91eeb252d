"""Speculative sampling (Leviathan et al. / Chen et al.; SSD's tolerance for codec-token TTS), and the reference.

Notation: p is the TARGET's next-token distribution, q the DRAFT's (the issue writes min(1, q/p) with the
names swapped; the rule is the same). Each round the draft samples `draft_len` tokens x_i ~ q; one target
pass scores them all; x_i is accepted when r_i < min(1, p(x_i) / q(x_i)) + beta with r_i ~ U[0, 1). At the
first rejection the target's token is drawn from norm(max(0, p - q)); when every draft is accepted a bonus
token is drawn from p. With beta = 0 the output is distributed exactly as sampling from the target alone;
beta > 0 (SSD's tolerance) accepts more drafts and is lossy by design.

A `Warp` (a logit constraint, temperature, top-k, top-p) shapes p and q the same way before the accept
test, so exactness holds for the warped target distribution. Temperature 0 makes both one-hot: a draft is
then accepted exactly when it is the target's argmax, so the output is token-identical to greedy `sample`.

Everything in a round stays on the device; one .tolist() per round reads back the drafts, how many were
accepted and the target's own token. Rolling back is free: slots past the committed tokens are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from . import ops
from .decoder import CachedDecoder, Session, forward_chain
from .drafter import Drafter
from .ops import draw
from .speculative import DecodeTask, Decoded, prefill_prompt, propose_within, token_budget, watched_row
from .stats import DecodeStats


# A constraint: (raw logits [n, vocab], index among the new tokens of row 0) -> logits with forbidden tokens at
# -inf. Deterministic in the logits, so applying it to p and q alike keeps speculative sampling exact.
Constraint = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class Warp:
    """How raw logits become the distribution sampled from, in transformers' order: constraint, temperature,
    top-k, top-p. The same warp is applied to target and draft."""

    temperature: float = 1.0  # 0: greedy (a one-hot distribution on the argmax)
    top_k: int | None = None
    top_p: float | None = None
    constraint: Constraint | None = None

    def probabilities(self, logits: torch.Tensor, first: int = 0) -> torch.Tensor:
        """[n, vocab] distributions for rows whose first is new token number `first`."""
        if self.constraint is not None:
            logits = self.constraint(logits, first)
        if self.temperature == 0:
            return torch.zeros_like(logits).scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            ordered, order = torch.sort(logits, dim=-1, descending=True)
            before = torch.softmax(ordered, dim=-1).cumsum(dim=-1) - torch.softmax(ordered, dim=-1)
            # Keep the smallest head whose mass reaches top_p: a token goes when the mass before it already does.
            logits = logits.masked_fill(torch.zeros_like(logits, dtype=torch.bool).scatter_(
                -1, order, before >= self.top_p), float("-inf"))
        return torch.softmax(logits, dim=-1)


ADAPTIVE_START, ADAPTIVE_LONGEST = 4, 12


class DraftLength:
    """Tokens to draft next round: transformers' assisted-generation heuristic (+2 after a fully accepted
    round, -1 otherwise, between 1 and `longest`). It depends only on earlier rounds, so exactness holds."""

    def __init__(self, start: int, longest: int, adaptive: bool = True):
        self.current, self.longest, self.adaptive = start, longest, adaptive

    def next(self) -> int:
        return self.current

    def observe(self, drafted: int, accepted: int) -> None:
        if self.adaptive and drafted:
            change = 2 if accepted == drafted else -1
            self.current = max(1, min(self.longest, self.current + change))


def _propose(session: Session, sequence: list[int], count: int, warp: Warp, first: int,
             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` tokens sampled from the draft after `sequence` (new token number `first` onwards), and the
    distributions q they came from.

    The draft's cache ends up holding all of them but the last; the caller commits those to the
    session once it has read them back.
    """
    decoder = session.decoder
    tokens = torch.empty(count, dtype=torch.long, device=decoder.device)
    probs = torch.empty(count, decoder.vocab_size, device=decoder.device)
    keep = session.rewind_to(sequence)
    feed, start = sequence[keep:], keep
    for i in range(count):
        probs[i] = warp.probabilities(forward_chain(decoder, feed, start)[-1:], first + i)[0]
        tokens[i] = draw(probs[i], generator)
        feed, start = tokens[i: i + 1], start + len(feed)
    if count:
        session.commit(sequence[keep:])
    return tokens, probs


def _finish(tokens: list[int], stop_token: int | None) -> tuple[list[int], bool]:
    """Tokens up to and including the first stop token, and whether there was one."""
    if stop_token is not None and stop_token in tokens:
        return tokens[: tokens.index(stop_token) + 1], True
    return tokens, False


@torch.inference_mode()
def speculative_sample(target: CachedDecoder, draft: CachedDecoder, prompt: list[int], max_new_tokens: int,
                       stop_token: int | None, draft_len: int | DraftLength, beta: float = 0.0,
                       warp: Warp = Warp(), generator: torch.Generator | None = None,
                       stats: DecodeStats | None = None) -> list[int]:
    """Tokens sampled after the prompt (stop token included when reached); see the module docstring.

    draft_len: a fixed number of drafts per round, or an adaptive DraftLength. Decoding also stops where
    either cache runs out of slots.
    """
    if draft.vocab_size != target.vocab_size:
        raise ValueError(f"draft vocabulary {draft.vocab_size} != target vocabulary {target.vocab_size}")
    stats = stats if stats is not None else DecodeStats()
    lengths = draft_len if isinstance(draft_len, DraftLength) else DraftLength(draft_len, draft_len, adaptive=False)
    stats.kernels = ops.active().name
    target_session, draft_session = Session(target), Session(draft)
    budget = token_budget([target, draft], prompt, max_new_tokens)
    sequence = list(prompt)
    while (generated := len(sequence) - len(prompt)) < budget:
        count = min(lengths.next(), budget - generated - 1)  # the round also emits the target's own token
        drafted, draft_probs = _propose(draft_session, sequence, count, warp, generated, generator)
        keep = target_session.rewind_to(sequence)
        uncached = torch.tensor(sequence[keep:], device=target.device)  # the last token (the prompt at first)
        logits = forward_chain(target, torch.cat([uncached, drafted]), keep)
        target_probs = warp.probabilities(logits[-count - 1:], generated)
        verdict = ops.active().speculative_verify(target_probs, draft_probs, drafted, beta, generator)
        *guesses, accepted, token = torch.cat([drafted, *verdict]).tolist()
        # Both caches now hold the guesses they were fed; the next rewind_to drops the rejected ones.
        target_session.commit(sequence[keep:] + guesses)
        draft_session.commit(guesses[:-1])
        emitted, stopped = _finish(guesses[:accepted] + [token], stop_token)
        sequence.extend(emitted)
        lengths.observe(count, accepted)
        stats.target_passes += 1
        stats.draft_passes += count
        stats.drafted += count
        stats.accepted += accepted
        stats.tokens += len(emitted)
        if stopped:
            break
    return sequence[len(prompt):]


@torch.inference_mode()
def sample(target: CachedDecoder, prompt: list[int], max_new_tokens: int, stop_token: int | None,
           warp: Warp = Warp(), generator: torch.Generator | None = None,
           stats: DecodeStats | None = None) -> list[int]:
    """Plain ancestral sampling from the target alone: the distribution speculative_sample must keep."""
    stats = stats if stats is not None else DecodeStats()
    session = Session(target)
    emitted: list[int] = []
    feed = list(prompt)
    for _ in range(token_budget([target], prompt, max_new_tokens)):
        logits = session.feed(feed)[-1]
        stats.target_passes += 1
        token = draw(warp.probabilities(logits.unsqueeze(0), len(emitted))[0], generator).item()
        emitted.append(token)
        stats.tokens += 1
        if token == stop_token:
            break
        feed = [token]
    return emitted


@dataclass
class Sampler:
    """One way of drawing a model's tokens, handed to adapters that run several sampling calls per request
    (Bark's stages and windows): plain sampling from the target, or speculative sampling with a draft."""

    warp: Warp
    speculative: bool
    beta: float = 0.0
    draft_len: int | None = None  # None: adaptive, from ADAPTIVE_START up to ADAPTIVE_LONGEST drafts
    generator: torch.Generator | None = None
    stats: DecodeStats | None = None

    def __call__(self, target: CachedDecoder, draft: CachedDecoder | None, prompt: list[int], max_new_tokens: int,
                 stop_token: int | None, constraint: Constraint | None = None) -> list[int]:
        warp = Warp(self.warp.temperature, self.warp.top_k, self.warp.top_p, constraint)
        if not self.speculative:
            return sample(target, prompt, max_new_tokens, stop_token, warp, self.generator, self.stats)
        lengths = DraftLength(ADAPTIVE_START, ADAPTIVE_LONGEST) if self.draft_len is None else self.draft_len
        return speculative_sample(target, draft, prompt, max_new_tokens, stop_token, lengths, self.beta, warp,
                                  self.generator, self.stats)


@torch.inference_mode()
def sample_decode(target: CachedDecoder, task: DecodeTask, drafter: Drafter, temperature: float,
                  generator: torch.Generator | None = None, stats: DecodeStats | None = None) -> Decoded:
    """Sample at `temperature` from the target under the task's logit rules, accelerated by any drafter.

    The drafter's main chain is a draft whose q is one-hot (a greedy guess is a sure thing for the draft),
    so the rule above accepts each guess x with probability p(x) and otherwise draws from p without x:
    exactly the target's distribution, whatever the drafter (a model of another vocabulary, a lookup).
    The log-probability is the target's at temperature 1 under the rules, as Whisper's fallback test reads it.
    """
    stats = stats if stats is not None else DecodeStats()
    session = Session(target)
    sequence, sampled_from = list(task.prompt), len(task.prompt)
    logprob, watched = 0.0, prefill_prompt(session, task)
    budget = token_budget([target], task.prompt, task.max_new_tokens)
    while True:
        candidates = propose_within(budget, task, drafter, sequence, stats)
        chain = candidates[0] if candidates else []
        keep = session.rewind_to(sequence)
        logits = forward_chain(target, sequence[keep:] + chain, keep)
        if task.watch is not None and watched is None:
            watched = watched_row(task, logits)
        decoded = sequence[sampled_from:]
        ruled = task.rules(logits[len(logits) - len(chain) - 1:], [decoded + chain[:i] for i in range(len(chain) + 1)])
        drafted = torch.tensor(chain, dtype=torch.long, device=target.device)
        one_hot = torch.nn.functional.one_hot(drafted, ruled.shape[-1]).to(ruled.dtype)
        verdict = ops.active().speculative_verify(Warp(temperature).probabilities(ruled), one_hot, drafted, 0.0,
                                                  generator)
        accepted, token = (int(x) for x in verdict)
        emitted, stopped = _finish(chain[:accepted] + [token], task.stop_token)
        logprob += float(torch.log_softmax(ruled[: len(emitted)], dim=-1)[range(len(emitted)), emitted].sum())
        session.commit(sequence[keep:] + chain)  # the next rewind_to drops the rejected guesses
        sequence.extend(emitted)
        stats.target_passes += 1
        stats.drafted += len(chain)
        stats.accepted += min(accepted, len(emitted))
        stats.tokens += len(emitted)
        if stopped or len(sequence) - sampled_from >= budget:
            return Decoded(sequence[sampled_from:], logprob, watched)
