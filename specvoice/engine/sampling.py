"""Speculative sampling (Leviathan et al. / Chen et al.; SSD's tolerance for codec-token TTS), and the reference.

Notation: p is the TARGET's next-token distribution, q the DRAFT's (the issue writes min(1, q/p) with the
names swapped; the rule is the same). Each round the draft samples `draft_len` tokens x_i ~ q; one target
pass scores them all; x_i is accepted when r_i < min(1, p(x_i) / q(x_i)) + beta with r_i ~ U[0, 1). At the
first rejection the target's token is drawn from norm(max(0, p - q)); when every draft is accepted a bonus
token is drawn from p. With beta = 0 the output is distributed exactly as sampling from the target alone;
beta > 0 (SSD's tolerance) accepts more drafts and is lossy by design.

Everything in a round stays on the device; one .tolist() per round reads back the drafts, how many were
accepted and the target's own token. Rolling back is free: slots past the committed tokens are ignored.
"""

from __future__ import annotations

import torch

from . import ops
from .decoder import CachedDecoder, Session, forward_chain
from .ops import draw
from .stats import DecodeStats


def _probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits / temperature, dim=-1)


def _propose(session: Session, sequence: list[int], count: int, temperature: float,
             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` tokens sampled from the draft after `sequence`, and the distributions q they came from.

    The draft's cache ends up holding all of them but the last; the caller commits those to the
    session once it has read them back.
    """
    decoder = session.decoder
    tokens = torch.empty(count, dtype=torch.long, device=decoder.device)
    probs = torch.empty(count, decoder.vocab_size, device=decoder.device)
    keep = session.rewind_to(sequence)
    feed, start = sequence[keep:], keep
    for i in range(count):
        probs[i] = _probabilities(forward_chain(decoder, feed, start)[-1], temperature)
        tokens[i] = draw(probs[i], generator)
        feed, start = tokens[i: i + 1], start + len(feed)
    if count:
        session.commit(sequence[keep:])
    return tokens, probs


def _budget(decoders: list[CachedDecoder], prompt: list[int], max_new_tokens: int) -> int:
    """New tokens allowed: the request, cut where the caches run out (the last token needs no slot)."""
    if not prompt:
        raise ValueError("the prompt needs at least one token to condition on")
    return max(0, min(max_new_tokens, min(d.max_slots for d in decoders) + 1 - len(prompt)))


def _finish(tokens: list[int], stop_token: int | None) -> tuple[list[int], bool]:
    """Tokens up to and including the first stop token, and whether there was one."""
    if stop_token is not None and stop_token in tokens:
        return tokens[: tokens.index(stop_token) + 1], True
    return tokens, False


@torch.inference_mode()
def speculative_sample(target: CachedDecoder, draft: CachedDecoder, prompt: list[int], max_new_tokens: int,
                       stop_token: int | None, draft_len: int, beta: float = 0.0, temperature: float = 1.0,
                       generator: torch.Generator | None = None, stats: DecodeStats | None = None) -> list[int]:
    """Tokens sampled after the prompt (stop token included when reached); see the module docstring.

    temperature must be > 0 (greedy decoding is speculative.greedy_decode). Decoding also stops where
    either cache runs out of slots.
    """
    if draft.vocab_size != target.vocab_size:
        raise ValueError(f"draft vocabulary {draft.vocab_size} != target vocabulary {target.vocab_size}")
    stats = stats if stats is not None else DecodeStats()
    stats.kernels = ops.active().name
    target_session, draft_session = Session(target), Session(draft)
    budget = _budget([target, draft], prompt, max_new_tokens)
    sequence = list(prompt)
    while (generated := len(sequence) - len(prompt)) < budget:
        count = min(draft_len, budget - generated - 1)  # the round also emits the target's own token
        drafted, draft_probs = _propose(draft_session, sequence, count, temperature, generator)
        keep = target_session.rewind_to(sequence)
        uncached = torch.tensor(sequence[keep:], device=target.device)  # the last token (the prompt at first)
        logits = forward_chain(target, torch.cat([uncached, drafted]), keep)
        target_probs = _probabilities(logits[-count - 1:], temperature)
        verdict = ops.active().speculative_verify(target_probs, draft_probs, drafted, beta, generator)
        *guesses, accepted, token = torch.cat([drafted, *verdict]).tolist()
        # Both caches now hold the guesses they were fed; the next rewind_to drops the rejected ones.
        target_session.commit(sequence[keep:] + guesses)
        draft_session.commit(guesses[:-1])
        emitted, stopped = _finish(guesses[:accepted] + [token], stop_token)
        sequence.extend(emitted)
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
           temperature: float = 1.0, generator: torch.Generator | None = None,
           stats: DecodeStats | None = None) -> list[int]:
    """Plain ancestral sampling from the target alone: the distribution speculative_sample must keep."""
    stats = stats if stats is not None else DecodeStats()
    session = Session(target)
    emitted: list[int] = []
    feed = list(prompt)
    for _ in range(_budget([target], prompt, max_new_tokens)):
        logits = session.feed(feed)[-1]
        stats.target_passes += 1
        token = draw(_probabilities(logits, temperature), generator).item()
        emitted.append(token)
        stats.tokens += 1
        if token == stop_token:
            break
        feed = [token]
    return emitted
