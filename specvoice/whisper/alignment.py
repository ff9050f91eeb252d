"""Where each word of a decoded window was said, as openai-whisper's timing.py finds it.

The decoded text is fed once more to the target's decoder (teacher-forced, without the earlier-text prompt or
timestamps); a few cross-attention heads follow the speech in time. Their attention over the audio frames is
normalised per head, median-filtered and averaged, and dynamic time warping finds the cheapest monotonic
path from tokens to frames. A word starts at the frame where the path reaches its first token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .decoder import WhisperDecoder
from .model import WhisperModel

TOKENS_PER_SECOND = 50  # encoder frames a second: the second convolution halves the 100 mel frames
MEDIAN_FILTER_WIDTH = 7


@dataclass
class WordTiming:
    word: str
    tokens: list[int]
    start: float  # seconds from the window's start
    end: float
    probability: float  # the mean probability of its tokens


def find_alignment(whisper: WhisperModel, decoder: WhisperDecoder, text_tokens: list[int], frames: int,
                   language: str | None, task: str) -> list[WordTiming]:
    """The words of `text_tokens` (a window's text, timestamps left out) with their times, from `decoder`
    holding that window's encoding; `frames`: mel frames of audio in the window."""
    if not text_tokens:
        return []
    tokenizer = whisper.tokenizer
    start = tokenizer.prompt(language, task, timestamps=False)
    logits, scores = decoder.cross_attention_scores(start + text_tokens + [tokenizer.eot], whisper.timing_heads())
    first = len(start) - 1  # the row of <|notimestamps|>, which predicts the first text token
    probabilities = logits[first: first + len(text_tokens), : tokenizer.eot].softmax(dim=-1)
    token_probabilities = probabilities[torch.arange(len(text_tokens)), text_tokens].tolist()
    # rows: <|notimestamps|> and the text tokens (the end-of-text row predicts nothing of the text)
    text_indices, time_indices = dtw(-attention_matrix(scores, frames)[first:-1].double().cpu().numpy())

    words, word_tokens = tokenizer.split_to_words(text_tokens + [tokenizer.eot], language)
    if len(word_tokens) <= 1:
        return []
    boundaries = np.pad(np.cumsum([len(group) for group in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    return [WordTiming(word, group, float(jump_times[i]), float(jump_times[j]),
                       float(np.mean(token_probabilities[i:j])))
            for word, group, i, j in zip(words, word_tokens, boundaries[:-1], boundaries[1:])]


def attention_matrix(scores: torch.Tensor, frames: int) -> torch.Tensor:
    """Cross-attention scores [heads, tokens, encoder frames] -> one [tokens, audio frames] matrix: each
    head's attention over the audio (padding cut off), standardised per frame across the tokens,
    median-filtered along time, then averaged over the heads."""
    weights = scores[:, :, : frames // 2].softmax(dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    return median_filter((weights - mean) / std, MEDIAN_FILTER_WIDTH).mean(dim=0)


def median_filter(x: torch.Tensor, width: int) -> torch.Tensor:
    """Median over a sliding window of odd `width` along the last dimension of [a, b, n], edges reflected."""
    pad = width // 2
    if x.shape[-1] <= pad:  # reflection needs more samples than the padding
        return x
    return F.pad(x, (pad, pad), mode="reflect").unfold(-1, width, 1).sort()[0][..., pad]


def dtw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest monotonic path through cost matrix x [n, m] from (0, 0) to (n - 1, m - 1): its row and
    column indices. openai-whisper's recurrence and tie-breaking (diagonal, then down, else right) with its
    float32 running cost, computed an anti-diagonal at a time (each cell needs only the two before)."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    cost[0, 0] = 0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    for diagonal in range(2, n + m + 1):
        i = np.arange(max(1, diagonal - m), min(n, diagonal - 1) + 1)
        j = diagonal - i
        diagonal_cost, up_cost, left_cost = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
        step = np.where((diagonal_cost < up_cost) & (diagonal_cost < left_cost), 0,
                        np.where((up_cost < diagonal_cost) & (up_cost < left_cost), 1, 2))
        cost[i, j] = x[i - 1, j - 1] + np.choose(step, [diagonal_cost, up_cost, left_cost])
        trace[i, j] = step
    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    trace[0, :] = 2  # on the edges the path can only run along them
    trace[:, 0] = 1
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = int(trace[i, j])
        i, j = i - (step != 2), j - (step != 1)
    rows, columns = np.array(path[::-1]).T
    return rows, columns
