"""The tools people use instead of specvoice, run greedily on the same weights so only the decoding differs:
transformers `generate()` (plus its assisted generation when the pair shares a vocabulary) and faster-whisper.

Each builder returns either a contestant or the note that says why that peer is not in the table.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path

import numpy as np
import torch
from transformers.generation.utils import GenerationMixin

from ..models import ctranslate2_folder
from ..whisper.features import WINDOW_SAMPLES, WINDOW_SECONDS, log_mel
from ..whisper.model import WhisperModel
from ..whisper.shallow import ShallowDraft
from .contestants import NORMALISED_TEXT, TOKENS, Run, synchronize
from .faster_whisper_command import decoding_options

COMPUTE_TYPES = ("int8", "float32")  # faster-whisper on the CPU: its recommended setting, and full precision
PEERS = ("transformers", *(f"faster-whisper-{compute_type}" for compute_type in COMPUTE_TYPES))


class _GenerateProbe:
    """While generate() runs: counts the target decoder's forward passes and clocks the encoders, so
    decoder-only time and passes per token mean the same as for specvoice's methods."""

    def __init__(self, target: torch.nn.Module, encoders: list[torch.nn.Module]):
        self.target = target
        self.encoders = encoders
        self.passes = 0
        self.encoder_seconds = 0.0
        self._started = 0.0
        self._handles = []

    def _count(self, *_):
        self.passes += 1

    def _start(self, *_):
        synchronize(self.target.device)
        self._started = time.perf_counter()

    def _stop(self, *_):
        synchronize(self.target.device)
        self.encoder_seconds += time.perf_counter() - self._started

    def __enter__(self) -> "_GenerateProbe":
        self._handles.append(self.target.model.decoder.register_forward_hook(self._count))
        for encoder in self.encoders:
            self._handles += [encoder.register_forward_pre_hook(self._start), encoder.register_forward_hook(self._stop)]
        return self

    def __exit__(self, *_) -> None:
        for handle in self._handles:
            handle.remove()


class TransformersGenerate:
    """GenerationMixin.generate, greedy, with specvoice's prompt and token suppression (as tests/hf_reference.py).

    Whisper's own generate() override is bypassed on purpose: it adds long-form logic that would make
    this a comparison of pipelines rather than of decoding.
    """

    peer = True
    identical_by = TOKENS
    identical_to = None

    def __init__(self, target: WhisperModel, assistant: WhisperModel | None = None):
        self.name = "transformers-assisted" if assistant else "transformers"
        self.target = target
        # transformers' own modules and forward (specvoice reads the same weights without them)
        self.model = target.transformers_model()
        self.assistant_model = assistant.transformers_model() if assistant else None
        self.prompt = target.tokenizer.prompt("en", "transcribe", timestamps=False)

    def skip_reason(self, seconds: float) -> str | None:
        if seconds > WINDOW_SECONDS:
            return f"generate() decodes one {WINDOW_SECONDS} s window; longer clips need transformers' long-form pipeline"
        return None

    def run(self, audio: np.ndarray) -> Run:
        model, assistant, eot = self.model, self.assistant_model, self.target.tokenizer.eot
        extra = {"assistant_model": assistant} if assistant else {}
        encoders = [model.model.encoder] + ([assistant.model.encoder] if assistant else [])
        began = time.perf_counter()
        features = log_mel(audio, model.config.num_mel_bins).to(model.device, model.dtype)
        with _GenerateProbe(model, encoders) as probe, torch.inference_mode():
            decoding_began = time.perf_counter()
            output = GenerationMixin.generate(
                model, input_features=features, decoder_input_ids=torch.tensor([self.prompt], device=model.device),
                do_sample=False, num_beams=1, max_new_tokens=self.target.sample_len, suppress_tokens=list(self.target.suppress_tokens),
                begin_suppress_tokens=list(self.target.begin_suppress_tokens), eos_token_id=eot, pad_token_id=eot,
                **extra,
            )
            synchronize(model.device)
        ended = time.perf_counter()
        generated = output[0, len(self.prompt):].tolist()
        tokens = [t for t in generated if t != eot]
        return Run(self.target.tokenizer.decode(tokens).strip(), tokens, ended - began,
                   ended - decoding_began - probe.encoder_seconds, len(generated), probe.passes)


class FasterWhisper:
    """faster-whisper (CTranslate2) at beam 1 with temperature fallback and silence skipping off: plain greedy.

    It runs in a process of its own, as its users run it. In the bench's process, CTranslate2's and PyTorch's
    thread pools compete for the cores: once faster-whisper had run there, specvoice's `ar` took 22% longer for
    the rest of the process (11.5 s -> 14.0 s on the 33 short dev clips), and faster-whisper itself ran at a
    different speed than alone, so neither side was measured as a user would see it.
    """

    peer = True
    identical_by = NORMALISED_TEXT  # its own log-mel and kernels: token identity is not expected
    identical_to = None

    def __init__(self, folder: Path, device: torch.device, compute_type: str):
        import multiprocessing

        self.name = f"faster-whisper-{compute_type}"
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no PyTorch threads inherited
        self._connection, child = context.Pipe()
        self._worker = context.Process(target=_serve_faster_whisper, daemon=True,
                                       args=(child, str(folder), device.type, compute_type, torch.get_num_threads()))
        self._worker.start()
        child.close()
        self._connection.recv()  # the model is loaded
        weakref.finalize(self, _stop_worker, self._connection, self._worker)

    def skip_reason(self, seconds: float) -> str | None:
        return None

    def run(self, audio: np.ndarray) -> Run:
        self._connection.send(audio)
        text, seconds, peak_mib = self._connection.recv()
        return Run(text, None, seconds, None, peak_mib=peak_mib)


def _stop_worker(connection, worker) -> None:
    connection.close()  # the worker's recv() ends with EOFError: it returns
    worker.join(timeout=10)


def _serve_faster_whisper(connection, folder: str, device: str, compute_type: str, threads: int) -> None:
    """The worker process: load the model once, then transcribe each array received, timed here (the transfer
    is not the tool's time), until the bench's end closes the pipe."""
    from faster_whisper import WhisperModel as FasterWhisperModel

    from .memory import PeakMemory

    model = FasterWhisperModel(folder, device=device, compute_type=compute_type, cpu_threads=threads)
    memory = PeakMemory(torch.device(device))
    connection.send("ready")
    while True:
        try:
            audio = connection.recv()
        except EOFError:
            return
        memory.reset()
        began = time.perf_counter()
        # as specvoice's contestants: timestamps only for long audio
        segments, _ = model.transcribe(audio, **decoding_options(timestamps=len(audio) > WINDOW_SAMPLES))
        text = "".join(segment.text for segment in segments).strip()  # the generator does the decoding
        seconds = time.perf_counter() - began
        connection.send((text, seconds, memory.peak_mib()))


def transformers_peers(target: WhisperModel, draft: WhisperModel | ShallowDraft | None) -> tuple[list, list[str]]:
    peers, notes = [TransformersGenerate(target)], []
    if draft is None:
        notes.append("transformers-assisted skipped: no draft model (no method here needs one)")
    elif isinstance(draft, ShallowDraft):
        notes.append("transformers-assisted skipped: assisted generation takes a Whisper model as its assistant, "
                     "not a shallow draft")
    elif not target.shares_vocabulary(draft):
        notes.append(f"transformers-assisted skipped: {target.name} and {draft.name} have different vocabularies, "
                     "which assisted generation cannot bridge")
    elif target.model.config.num_mel_bins != draft.model.config.num_mel_bins:
        notes.append(f"transformers-assisted skipped: {target.name} and {draft.name} take different log-mel features")
    else:
        peers.append(TransformersGenerate(target, draft))
    return peers, notes


def faster_whisper_peers(compute_types: list[str], model_name: str, device: torch.device) -> tuple[list, list[str]]:
    """faster-whisper at each compute type, on the CTranslate2 weights behind MODEL_NAME."""
    folder, why_not = faster_whisper_folder(model_name)
    if folder is None:
        return [], [why_not]
    return [FasterWhisper(folder, device, compute_type) for compute_type in compute_types], []


def faster_whisper_folder(model_name: str) -> tuple[Path | None, str | None]:
    """The CTranslate2 weights faster-whisper runs for MODEL_NAME, or None and the note that says why it cannot."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return None, "faster-whisper skipped: not installed (pip install 'specvoice[bench]')"
    folder = ctranslate2_folder(model_name)
    if folder is None:
        return None, (f"faster-whisper skipped: {model_name} is not a CTranslate2 model, so faster-whisper cannot "
                      "run the same weights")
    return folder, None
