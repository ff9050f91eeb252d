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

CORPUS = Path(__file__).parent / "corpus"  # one public-domain source a file, one passage a line
SPEEDS = (0.9, 1.0, 1.15)  # the voice's speaking rates, one per piece in turn
# One voice made many: the audio is read as if recorded at the voice's rate times a shift, which scales its pitch
# and formants together (a longer or shorter vocal tract, as VTLP augments ASR training data), and some pieces get
# white noise at a signal-to-noise ratio in dB. Each combination comes round in turn with each speaking rate.
VOICE_SHIFTS = (1.0, 0.88, 1.12)
NOISE_SNRS = (None, 25.0, 15.0)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')])\s+")  # also after a closing quote: dialogue


@dataclass
class Example:
    cross: list[tuple[torch.Tensor, torch.Tensor]]  # shared layers' cross keys/values [heads, frames, d], float16
    sequences: list[tuple[list[int], int]]  # (prompt + the target's greedy tokens, len(prompt))


def passages(folder: Path = CORPUS) -> list[str]:
    """Every passage of the folder's text files, file by file in name order."""
    return [line.strip() for path in sorted(folder.glob("*.txt")) for line in path.read_text().splitlines()
            if line.strip()]


def pieces(passage: str, rng: random.Random, longest: int = 3) -> list[str]:
    """The passage in runs of 1 to `longest` sentences."""
    sentences = [s for s in SENTENCE_END.split(passage) if s]
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
            features = LogMel(varied(audio, rate, turn, seed)[: 30 * SAMPLE_RATE])
            turn += 1
            found = example(target, decoder, shares, features.window(0, target.model.config.num_mel_bins),
                            features.frames, "en", previous)
            long_form, prompt_length = found.sequences[1]
            previous = [t for t in long_form[prompt_length:] if t != target.tokenizer.eot]
            yield found


def varied(audio: np.ndarray, rate: int, turn: int, seed: int) -> np.ndarray:
    """The piece at the model's rate as another speaker says it, in the noise of the `turn`'s combination."""
    shift = VOICE_SHIFTS[turn // len(SPEEDS) % len(VOICE_SHIFTS)]
    snr = NOISE_SNRS[turn // (len(SPEEDS) * len(VOICE_SHIFTS)) % len(NOISE_SNRS)]
    audio = to_model_rate(audio, round(rate * shift))
    if snr is not None:
        noise = np.random.default_rng([seed, turn]).standard_normal(len(audio)).astype(np.float32)
        audio = audio + noise * np.sqrt(np.mean(audio ** 2) / 10 ** (snr / 10))
    return audio


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
