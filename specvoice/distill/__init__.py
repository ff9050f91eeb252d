"""`specvoice distill`: train a shallow draft (whisper/shallow.py) to predict a target's own greedy tokens.

The audio is the project's own: the offline voice speaking public-domain text (corpus/: passages from 26 Project
Gutenberg books, founding documents, fables and everyday sentences; see corpus/SOURCES.md), a few sentences at a
time, each piece at one of three speaking rates, as one of three speakers (pitch and formants scaled) and in one
of three noise levels. No labels: the target's greedy tokens are the answers (teacher.py), and only the draft's
parameters train (train.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..options import DistillOptions
from ..whisper.model import WhisperModel
from ..whisper.shallow import ShallowDraft, draft_vocabulary
from .teacher import Example, passages, teach
from .train import Agreement, agreement, train

HELD_OUT_EVERY = 10  # every tenth example only measures how often the draft agrees with the target

Speak = Callable[[str, float, int], tuple[np.ndarray, int]]  # (text, speed, seed) -> (audio, sample rate)


@dataclass
class Distilled:
    draft: ShallowDraft
    examples: int
    held_out: Agreement  # teacher-forced top-1 agreement with the target on the held-out examples


def gather(target: WhisperModel, speak: Speak, settings: DistillOptions, texts: list[str] | None = None,
           progress: Callable[[int], None] = lambda done: None) -> list[Example]:
    examples = []
    for repeat in range(settings.repeats):
        for example in teach(target, speak, settings.shares, texts or passages(), settings.seed + repeat):
            examples.append(example)
            progress(len(examples))
    return examples


def distill(target: WhisperModel, examples: list[Example], settings: DistillOptions,
            report: Callable[[int, float], None] = lambda epoch, loss: None) -> Distilled:
    """A draft for `target` trained on `examples` (from gather)."""
    held_out = examples[::HELD_OUT_EVERY]
    training = [e for i, e in enumerate(examples) if i % HELD_OUT_EVERY] or examples
    said = [t for e in training for sequence, _ in e.sequences for t in sequence]
    draft = ShallowDraft(target, settings.shares, draft_vocabulary(target, settings.frequent, said))
    size = target.model.config.vocab_size
    train(draft, training, size, settings.epochs, settings.learning_rate, settings.seed, report)
    return Distilled(draft, len(training), agreement(draft, held_out, size))
