"""What the draft learns from: audio the project makes (the offline voice speaking public-domain text), the
target's cross-attention keys/values of that audio and the target's own greedy tokens (no labels needed).

Each passage is spoken a few sentences at a time; each piece is decoded three times, as transcription decodes
windows: a short clip without timestamps, and twice as a window of a long file with timestamps, after the text so
far (carried across the corpus as transcription carries it across a file): after a tail of it of a random length
(so the draft meets its output at every position, as a long file's first windows and every window without the
previous text put it), and after all of it (up to 223 tokens, as a long file's later windows are prompted).
Taught without a prompt instead of after the random tail, a draft kept 1.81 tokens a pass on long files decoded
without the previous text, against 3.01 as taught here (benchmarks/README.md).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

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


PLAIN = None  # a context that decodes a window as a short clip: no timestamps, no earlier text


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
    turn, so_far = 0, []
    for passage in texts:
        for text in pieces(passage, rng):
            audio, rate = speak(text, SPEEDS[turn % len(SPEEDS)], seed + turn)
            features = LogMel(varied(audio, rate, turn, seed)[: 30 * SAMPLE_RATE])
            turn += 1
            tail = so_far[len(so_far) - rng.randint(0, len(so_far)):]
            found = example(target, decoder, shares, features.window(0, target.model.config.num_mel_bins),
                            features.frames, "en", (PLAIN, tail, so_far))
            so_far = (so_far + said(target, *found.sequences[-1]))[-target.sample_len:]
            yield found


def said(target: WhisperModel, sequence: list[int], prompt_length: int) -> list[int]:
    """A decode's text tokens, as transcription carries them into the next window's prompt."""
    return [t for t in sequence[prompt_length:] if t != target.tokenizer.eot]


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
            frames: int, language: str | None, contexts: Sequence[Sequence[int] | None]) -> Example:
    """One window's example: `frames` mel frames of audio in the features `window`, decoded once a context: PLAIN
    as a short clip, a token list as a long-form window with timestamps after that text (none if empty)."""
    decoder.encode(window)
    keep = audio_frames(frames, decoder.cross_keys[0].shape[1])
    cross = [(decoder.cross_keys[i][:, :keep].half(), decoder.cross_values[i][:, :keep].half()) for i in shares]
    sequences = []
    for context in contexts:
        task = target.decode_task(language, "transcribe", context is not PLAIN, context or ())
        sequences.append((task.prompt + greedy_decode(decoder, task).tokens, len(task.prompt)))
    return Example(cross, sequences)
