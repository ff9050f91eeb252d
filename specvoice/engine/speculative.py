"""The greedy decoding loop shared by every method: draft, verify a token tree in one target pass, accept.

With no drafter it is plain greedy decoding (one token per pass). Every emitted token is the target's own
argmax under the same logit rules, so any drafter changes the speed, never the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .decoder import CachedDecoder, LogitRules
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
    sequence = list(task.prompt)
    sampled_from = len(task.prompt)
    cached = 0  # slots [0, cached) hold sequence[:cached]; the rest of the sequence is the next stem
    while True:
        generated = len(sequence) - sampled_from
        room = min(task.max_new_tokens - generated - 1, target.max_slots - len(sequence))
        candidates = drafter.propose(sequence, sampled_from, room, stats) if room > 0 else []
        tree = TokenTree.build(sequence[cached:], candidates, max_nodes=target.max_slots - cached)
        logits = target.forward(
            torch.tensor(tree.tokens, device=device),
            torch.tensor(tree.depths, device=device) + cached,
            torch.arange(cached, cached + len(tree), device=device),
            tree.visibility(cached, device),
        )[tree.root:]
        histories = [sequence[sampled_from:] + tree.path_tokens(node) for node in range(tree.root, len(tree))]
        predictions = task.rules(logits, histories).argmax(dim=-1).tolist()
        nodes, emitted = tree.accept(predictions, task.stop_token)
        drafter.observe(tree, predictions, nodes)
        first_draft_slot = cached + tree.root + 1
        if nodes != list(range(tree.root + 1, tree.root + 1 + len(nodes))):  # a branch won: chain order
            target.move_slots(torch.tensor(nodes, device=device) + cached,
                              torch.arange(first_draft_slot, first_draft_slot + len(nodes), device=device))
        cached = len(sequence) + len(nodes)
        sequence.extend(emitted)
        stats.target_passes += 1
        stats.drafted += len(tree) - 1 - tree.root
        stats.accepted += len(nodes)
        stats.tokens += len(emitted)
        if emitted[-1] == task.stop_token or len(sequence) - sampled_from >= task.max_new_tokens:
            return sequence[sampled_from:]
