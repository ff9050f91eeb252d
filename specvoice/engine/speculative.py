"""The greedy decoding loop shared by every method: draft, verify a token tree in one target pass, accept.

With no drafter it is plain greedy decoding (one token per pass). Every emitted token is the target's own
argmax under the same logit rules, so any drafter changes the speed, never the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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


@torch.inference_mode()
def greedy_decode(target: CachedDecoder, task: DecodeTask, drafter: Drafter | None = None,
                  stats: DecodeStats | None = None) -> list[int]:
    """Tokens the target emits after the prompt (stop token included when reached)."""
    drafter = drafter or NoDrafter()
    stats = stats if stats is not None else DecodeStats()
    device = target.device
    session = Session(target)
    if len(task.prompt) > 1:
        session.feed(task.prompt[:-1])
    sequence = list(task.prompt)
    sampled_from = len(task.prompt)
    while True:
        start = len(session.tokens)  # the root (last token) goes to this slot
        generated = len(sequence) - sampled_from
        room = min(task.max_new_tokens - generated, target.max_slots - start) - 1
        candidates = drafter.propose(sequence, sampled_from, room, stats) if room > 0 else []
        tree = TokenTree.build(sequence[-1], candidates, max_nodes=target.max_slots - start)
        logits = target.forward(
            torch.tensor(tree.tokens, device=device),
            torch.tensor(tree.depths, device=device) + start,
            torch.arange(start, start + len(tree), device=device),
            tree.visibility(start, device),
        )
        histories = [sequence[sampled_from:] + tree.path_tokens(node) for node in range(len(tree))]
        predictions = task.rules(logits, histories).argmax(dim=-1).tolist()
        nodes, emitted = tree.accept(predictions, task.stop_token)
        drafter.observe(tree, predictions, nodes)
        if nodes != list(range(1, len(nodes) + 1)):  # a branch won: move its rows to chain order
            target.move_slots(torch.tensor(nodes, device=device) + start,
                              torch.arange(start + 1, start + 1 + len(nodes), device=device))
        session.tokens.extend([sequence[-1]] + emitted[:-1])
        sequence.extend(emitted)
        stats.target_passes += 1
        stats.drafted += len(tree) - 1
        stats.accepted += len(nodes)
        stats.tokens += len(emitted)
        if emitted[-1] == task.stop_token or len(sequence) - sampled_from >= task.max_new_tokens:
            return sequence[sampled_from:]
