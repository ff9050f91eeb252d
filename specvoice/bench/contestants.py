"""What the bench measures: anything that turns a clip into text and says how long that took.

specvoice's own methods are here; the tools people use instead are in peers.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..options import DecodingOptions
from ..transcribe import Transcriber
from ..whisper.model import WhisperModel

TOKENS = "tokens"
NORMALISED_TEXT = "normalised text"


@dataclass
class Run:
    text: str
    tokens: list[int] | None  # target-vocabulary tokens, end-of-text stripped; None where a tool hides them
    seconds: float  # end to end from 16 kHz samples: features, encoder(s), decoding
    decoder_seconds: float | None  # decoding alone; None where a tool does not expose it
    emitted: int | None = None  # tokens the target emitted, end-of-text included
    target_passes: int | None = None  # forward passes of the target's decoder
    peak_mib: float | None = None  # a contestant in a process of its own reports its own peak memory


class Contestant(Protocol):
    name: str
    identical_by: str  # how its output is compared with its reference's: TOKENS or NORMALISED_TEXT
    identical_to: str | None  # the contestant it must agree with (None: the bench's reference, the first one)
    peer: bool  # another tool (measured after specvoice's own methods), not a --method

    def skip_reason(self, seconds: float) -> str | None:
        """Why a clip this long cannot be measured fairly, or None."""

    def run(self, audio: np.ndarray) -> Run: ...


def synchronize(device: torch.device) -> None:
    """CUDA runs asynchronously: a clock read without this would time the launch, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_greedy(method: str) -> DecodingOptions:
    """How the bench decodes with specvoice. timestamps=None: off up to 30 s, on for long audio. Plain greedy
    otherwise (no fallback, no previous-text prompt, no no-speech rule), as the peers are run: the measure of
    identity stays strict and every contestant does the same work."""
    return DecodingOptions(method, language="en", timestamps=None, temperature_increment_on_fallback=0.0,
                           condition_on_previous_text=False, no_speech_threshold=None)


class SpecvoiceMethod:
    """One --method at one precision, with its Transcriber built once and reused for every clip; its tokens
    must equal those of `ar` at the same precision."""

    identical_by = TOKENS
    peer = False

    def __init__(self, method: str, target: WhisperModel, draft: WhisperModel | None, precision: str):
        self.name = f"{method}-{precision}"
        self.identical_to = f"ar-{precision}"
        self.device = target.device
        self.transcriber = Transcriber(target, draft, plain_greedy(method))

    def skip_reason(self, seconds: float) -> str | None:
        return None

    def run(self, audio: np.ndarray) -> Run:
        began = time.perf_counter()
        result = self.transcriber.transcribe(audio)
        synchronize(self.device)
        seconds = time.perf_counter() - began
        return Run(result.text, result.tokens, seconds, result.decoder_seconds, result.stats.tokens,
                   result.stats.target_passes)
