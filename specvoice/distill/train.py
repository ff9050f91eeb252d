"""Self-distillation: the shallow draft learns to say the target's next greedy token, teacher-forced on the
target's own outputs (teacher.py). Only the draft's small parameters train; the target's are read."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..whisper.shallow import ShallowDraft
from .teacher import Example

IGNORED = -100  # cross_entropy's ignore_index: prompt positions, and tokens outside the draft's vocabulary


@dataclass
class Agreement:
    matched: int = 0
    positions: int = 0

    @property
    def rate(self) -> float:
        return self.matched / max(1, self.positions)


def _labels(draft: ShallowDraft, tokens: torch.Tensor, prompt: int, size: int) -> torch.Tensor:
    """Each position's next token as an index into the draft's vocabulary; prompt positions ignored."""
    index = torch.full((size,), IGNORED, dtype=torch.long)
    index[draft.vocabulary] = torch.arange(len(draft.vocabulary))
    labels = index[tokens[1:]]
    labels[: prompt - 1] = IGNORED
    return labels


def _cross(example: Example) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(k.float(), v.float()) for k, v in example.cross]


def _losses(draft: ShallowDraft, example: Example, size: int, agreement: Agreement | None = None) -> torch.Tensor:
    cross, total = _cross(example), 0.0
    for sequence, prompt in example.sequences:
        tokens = torch.tensor(sequence)
        labels = _labels(draft, tokens, prompt, size)
        logits = draft.logits(tokens[:-1], cross)
        total = total + F.cross_entropy(logits, labels, ignore_index=IGNORED)
        if agreement is not None:
            counted = tokens[1:][prompt - 1:]
            agreement.matched += int((draft.vocabulary[logits[prompt - 1:].argmax(-1)] == counted).sum())
            agreement.positions += len(counted)
    return total


def train(draft: ShallowDraft, examples: list[Example], size: int, epochs: int, learning_rate: float,
          seed: int = 0, report: Callable[[int, float], None] = lambda epoch, loss: None) -> ShallowDraft:
    """Train the draft in place on `examples` (target vocabulary `size`) for `epochs` passes, one example a step."""
    torch.manual_seed(seed)
    order = list(range(len(examples)))
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW([p for p in draft.parameters() if p.requires_grad], lr=learning_rate,
                                  weight_decay=0.0)
    steps = max(1, epochs * len(examples))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps, pct_start=0.1)
    draft.train()
    for epoch in range(epochs):
        rng.shuffle(order)
        total = 0.0
        for i in order:
            loss = _losses(draft, examples[i], size)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        report(epoch + 1, total / max(1, len(order)))
    return draft.eval()


@torch.no_grad()
def agreement(draft: ShallowDraft, examples: list[Example], size: int) -> Agreement:
    """How often the draft's top choice is the target's greedy token (teacher-forced)."""
    counted = Agreement()
    for example in examples:
        _losses(draft, example, size, counted)
    return counted
