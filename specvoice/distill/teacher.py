"""What the draft learns from: audio the project makes (the offline voice speaking public-domain text), the
target's cross-attention keys/values of that audio and the target's own greedy tokens (no labels needed).

Each passage is spoken a few sentences at a time; each piece is decoded twice as transcription decodes it: a
short clip (no timestamps, no earlier text) and a long-form window (timestamps, prompted with the previous
piece's tokens).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from ..audio.load import to_model_rate
from ..engine.speculative import greedy_decode
from ..whisper.decoder import WhisperDecoder
from ..whisper.features import LogMel
from ..whisper.model import WhisperModel
from ..whisper.shallow import audio_frames

CORPUS = Path(__file__).parent / "corpus.txt"
SPEEDS = (0.9, 1.0, 1.15)  # the voice's speaking rates, one per piece in turn


@dataclass
class Example:
    cross: list[tuple[torch.Tensor, torch.Tensor]]  # shared layers' cross keys/values [heads, frames, d], float16
    sequences: list[tuple[list[int], int]]  # (prompt + the target's greedy tokens, len(prompt))


def passages(path: Path = CORPUS) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def pieces(passage: str, rng: random.Random, longest: int = 3) -> list[str]:
    """The passage in runs of 1 to `longest` sentences."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", passage) if s]
    out = []
    while sentences:
        take = rng.randint(1, longest)
        out.append(" ".join(sentences[:take]))
        sentences = sentences[take:]
    return out


def teach(target: WhisperModel, speak: Callable[[str, float, int], tuple[np.ndarray, int]], shares: tuple[int, ...],
          texts: list[str], seed: int = 0) -> Iterator[Example]:
    """Examples for each passage of `texts`; `speak(text, speed, seed)` -> (audio, sample rate)."""
    decoder = WhisperDecoder(target)
    rng = random.Random(seed)
    turn = 0
    for passage in texts:
        previous: list[int] = []
        for text in pieces(passage, rng):
            audio, rate = speak(text, SPEEDS[turn % len(SPEEDS)], seed + turn)
            turn += 1
            features = LogMel(to_model_rate(audio, rate)[: 30 * SAMPLE_RATE])
            found = example(target, decoder, shares, features.window(0, target.model.config.num_mel_bins),
                            features.frames, "en", previous)
            long_form, prompt_length = found.sequences[1]
            previous = [t for t in long_form[prompt_length:] if t != target.tokenizer.eot]
            yield found


def example(target: WhisperModel, decoder: WhisperDecoder, shares: tuple[int, ...], window: torch.Tensor,
            frames: int, language: str | None, previous: list[int]) -> Example:
    """One window's example: `frames` mel frames of audio in the features `window`, decoded as a short clip and
    as a long-form window after the `previous` text."""
    decoder.encode(window)
    keep = audio_frames(frames, decoder.cross_keys[0].shape[1])
    cross = [(decoder.cross_keys[i][:, :keep].half(), decoder.cross_values[i][:, :keep].half()) for i in shares]
    sequences = []
    for timestamps, context in ((False, ()), (True, previous)):
        task = target.decode_task(language, "transcribe", timestamps, context)
        sequences.append((task.prompt + greedy_decode(decoder, task).tokens, len(task.prompt)))
    return Example(cross, sequences)
