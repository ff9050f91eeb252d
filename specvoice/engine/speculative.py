"""The greedy decoding loop shared by every method: draft, verify a token tree in one target pass, accept.

With no drafter it is plain greedy decoding (one token per pass). Every emitted token is the target's own
argmax under the same logit rules, so any drafter changes the speed, never the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import ops
from .decoder import CachedDecoder, LogitRules, Session
from .drafter import Drafter, NoDrafter
from .stats import DecodeStats
from .tree import TokenTree


@dataclass
class DecodeTask:
    prompt: list[int]
    rules: LogitRules
    stop_token: int
    max_new_tokens: int
    watch: int | None = None  # a prompt position whose raw logits the caller wants too (e.g. Whisper's no-speech)


@dataclass
class Decoded:
    tokens: list[int]  # emitted after the prompt, the stop token included when reached
    logprob: float  # the sum of the target's log-probabilities of those tokens, under the logit rules
    watched: torch.Tensor | None = None  # raw logits [vocab] at task.watch


def token_budget(decoders: list[CachedDecoder], prompt: list[int], max_new_tokens: int) -> int:
    """New tokens allowed: the request, cut where the caches run out (the last token needs no slot), as Whisper
    stops where its text context ends (a long previous-text prompt leaves less room than max_new_tokens)."""
    if not prompt:
        raise ValueError("the prompt needs at least one token to condition on")
    return max(0, min(max_new_tokens, min(d.max_slots for d in decoders) + 1 - len(prompt)))


def propose_within(budget: int, task: DecodeTask, drafter: Drafter, sequence: list[int],
                   stats: DecodeStats) -> list[list[int]]:
    """The drafter's candidates after `sequence`, within the `budget` of new tokens (from token_budget; the
    target's own token after them included, so a pass never emits past it)."""
    room = budget - (len(sequence) - len(task.prompt)) - 1
    return drafter.propose(sequence, len(task.prompt), room, stats) if room > 0 else []


def prefill_prompt(session: Session, task: DecodeTask) -> torch.Tensor | None:
    """Feed the prompt but its last token (the first pass's root) into a fresh session, all at once: every method
    feeds it alike. The watched position's raw logits where it is among those tokens, else None."""
    fed = task.prompt[:-1]
    watched_here = task.watch is not None and task.watch < len(fed)
    logits = session.prefill(fed, [task.watch] if watched_here else [])
    return logits[0].clone() if watched_here else None


def watched_row(task: DecodeTask, first_pass: torch.Tensor) -> torch.Tensor:
    """The watched position's raw logits from the first pass after prefill_prompt (it starts at the prompt's
    last token)."""
    return first_pass[task.watch - (len(task.prompt) - 1)].clone()


@torch.inference_mode()
def greedy_decode(target: CachedDecoder, task: DecodeTask, drafter: Drafter | None = None,
                  stats: DecodeStats | None = None) -> Decoded:
    """What the target emits after the prompt, greedily; the drafter only changes how fast."""
    drafter = drafter or NoDrafter()
    stats = stats if stats is not None else DecodeStats()
    stats.kernels = ops.active().name
    session = Session(ops.active().static_shapes(target))
    sequence = list(task.prompt)
    sampled_from = len(task.prompt)
    logprob, watched = 0.0, prefill_prompt(session, task)
    budget = token_budget([target], task.prompt, task.max_new_tokens)
    while True:
        candidates = propose_within(budget, task, drafter, sequence, stats)
        # The stem: committed tokens not cached yet (the prompt at first, then the target's last own token).
        tree = TokenTree.build(sequence[len(session):], candidates, max_nodes=target.max_slots - len(session))
        logits = session.verify(tree)
        if task.watch is not None and watched is None:
            watched = watched_row(task, logits)
        histories = [sequence[sampled_from:] + tree.path_tokens(node) for node in range(tree.root, len(tree))]
        verdict = ops.active().greedy_verify(task.rules(logits[tree.root:], histories), tree, task.stop_token)
        predictions, nodes, emitted = verdict.predictions, verdict.nodes, verdict.emitted
        logprob += verdict.logprob
        drafter.observe(tree, predictions, nodes)
        session.accept(tree, nodes)
        sequence.extend(emitted)
        stats.target_passes += 1
        stats.drafted += len(tree) - 1 - tree.root
        stats.accepted += len(nodes)
        stats.tokens += len(emitted)
        if emitted[-1] == task.stop_token or len(sequence) - sampled_from >= budget:
            return Decoded(sequence[sampled_from:], logprob, watched)
