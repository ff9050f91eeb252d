"""Shared fixtures: tiny random Whisper models built in the test, and the real offline models and clips."""

from __future__ import annotations

import json
import os
import signal
import types
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from specvoice.engine.drafter import DraftPolicy
from specvoice.whisper.model import WhisperModel

SPEECH = Path(os.environ.get("SPECVOICE_SPEECH", Path(__file__).resolve().parents[1] / ".." / "shared" / "speech"))

# Property tests draw fresh examples on every run (the random search stays on, in CI too); a failure prints
# the @reproduce_failure blob that replays exactly that example anywhere, so a CI failure is reproducible from
# its log. HYPOTHESIS_PROFILE=derandomized runs the same examples every time (to bisect a change).
settings.register_profile("random", print_blob=True)
settings.register_profile("derandomized", print_blob=True, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "random"))


def interruptible() -> None:
    """preexec_fn of a command a test will Ctrl-C: SIGINT at its default and unblocked in the child, whatever the
    test process runs with (Python leaves an ignored SIGINT ignored, and a blocked one never arrives)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


VOCAB = 96
TOKENS = types.SimpleNamespace(eot=80, sot=81, no_timestamps=82, timestamp_begin=83)  # 13 timestamps: 83..95


def tiny_whisper(seed: int, vocab: int = VOCAB, d_model: int = 32, layers: int = 2, positions: int = 64,
                 heads: int = 4, frames: int = 20):
    """A randomly initialised WhisperForConditionalGeneration small enough to run hundreds of decodes."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=vocab, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                           encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=2 * d_model,
                           decoder_ffn_dim=2 * d_model, num_mel_bins=8, max_source_positions=frames,
                           max_target_positions=positions, decoder_start_token_id=TOKENS.sot, init_std=0.2,
                           eos_token_id=TOKENS.eot, pad_token_id=TOKENS.eot, bos_token_id=TOKENS.eot)
    # init_std 0.2 (not 0.02) gives peaked attention: the next token really depends on earlier ones
    # (changing the first of 6 tokens changes the 6th prediction about half the time), so a cache bug shows.
    return WhisperForConditionalGeneration(config).eval()


def perturbed(model, seed: int, scale: float):
    """A copy of `model` with noise on its weights: a draft that agrees with the target only sometimes."""
    import copy

    twin = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in twin.parameters():
            spread = parameter.std() if parameter.numel() > 1 else 0.0  # one value has no spread (std() warned)
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale * spread)
    return twin


def bundle(model, tokenizer=TOKENS, int8: bool = False) -> WhisperModel:
    """Suppress two text tokens always and token 0 (the 'blank') at the start, as real Whisper configs do."""
    return WhisperModel("tiny-random", model, tokenizer, (1, 2), (0, TOKENS.eot), int8)


def draft_policy(**changes) -> DraftPolicy:
    """A plain greedy chain of up to 24 tokens, with the given knobs changed."""
    plain = dict(max_tokens=24, confidence=0.0, recycle=False, tree_positions=0, tree_alternatives=1, tree_below=0.8,
                 branch_successor=True, realign_window=3, adaptive_cap=False)
    return DraftPolicy(**{**plain, **changes})


def features(seed: int, frames: int = 40, mels: int = 8) -> torch.Tensor:
    return torch.randn(1, mels, frames, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def one_thread():
    """One PyTorch thread for a module of tiny models: threads cost more than they give, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def manifest() -> list[dict]:
    path = SPEECH / "manifest.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared speech clips)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def real_models():
    from specvoice.models import load_whisper

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    return {name: load_whisper(name) for name in ("base", "tiny.en")}


@pytest.fixture(scope="session")
def int8_base(real_models):
    """base with batch-invariant int8 linears (the CPU default), on the float32 model's weights."""
    from dataclasses import replace

    return replace(real_models["base"], int8=True, _tasks={})
