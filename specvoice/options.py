"""Every user-facing choice of the speech pipelines, with its default and its help text, defined once.

After openai/whisper's `DecodingOptions`: the command line, the pipelines, the bench and the tests all
build their settings from these dataclasses, and they are validated here, once, when built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple

from .engine.drafter import DraftPolicy
from .errors import SpecvoiceError
from .whisper.tokenizer import language_code

METHODS = {
    "ar": "plain greedy decoding with the target alone (the reference output)",
    "spec": "vanilla speculative decoding: the draft proposes --draft-len tokens, the target verifies",
    "specasr": "SpecASR: adaptive draft length, draft recycling, two-pass sparse token tree",
    "dllm": "dLLM-ASR-style: the draft's whole transcript is refined in parallel rounds by the target",
}
# What --method auto runs. On the CPU a model draft costs more than the target passes it saves (a tiny.en step
# is 0.4 of an int8 base step, and its encoder runs on every window): ar-int8 is 1.11x faster than specasr-int8
# end to end on the short dev clips and 1.28x on long form (BENCHMARKS.md). On CUDA a pass costs
# about the same for 1 token or 30, so drafting pays.
AUTO_METHOD = {"cpu": "ar", "cuda": "specasr"}
METHOD_CHOICES = {"auto": "ar on the CPU, where a model draft costs more than it saves; specasr on CUDA (or "
                          "whenever --draft is given)", **METHODS}
TASKS = ("transcribe", "translate")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "int8", "float32", "float16", "bfloat16")
KERNELS = ("auto", "on", "off")
DEFAULT_DRAFT = "tiny.en"


def option(default: Any, help: str, **limits: float) -> Any:
    """A dataclass field that also carries its help text and numeric limits (min, max) for the CLI."""
    return field(default=default, metadata={"help": help, **limits})


def describe(cls: type, name: str) -> dict:
    """The help text and limits of one option."""
    return dict(next(f for f in fields(cls) if f.name == name).metadata)


def _check_limits(options: object) -> None:
    for f in fields(options):
        value = getattr(options, f.name)
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if value is None or isinstance(value, bool):
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            raise SpecvoiceError(f"--{f.name.replace('_', '-')} {value}: must be {bounds}")


class Placement(NamedTuple):
    device: str
    dtype: Any  # torch.dtype of the weights as loaded (float32 for int8: quantised when the decoder is built)
    int8: bool
    label: str  # the precision's name: int8, float32, ...


@dataclass(frozen=True)
class ModelOptions:
    """Which weights run, and where."""

    model: str = option("base", "Target model: built-in name (base, tiny.en), local folder (transformers or "
                                "CTranslate2), or hub id.")
    draft: str | None = option(None, f"Draft model for spec/specasr/dllm (default {DEFAULT_DRAFT}). Other "
                                     "vocabularies are bridged through text.")
    device: str = option("auto", "Where to run: auto (CUDA when available), cpu or cuda.")
    dtype: str = option("auto", "Precision (auto: int8 on CPU, float16 on CUDA; synthesize: float32 on CPU). int8 "
                                "(CPU, transcribe): the linear layers in int8 with per-row scales, exactly the same "
                                "for every method; on CPUs with bfloat16 dot products (AVX512-BF16, AMX) the "
                                "encoder's self-attention in bfloat16.")
    threads: int | None = option(None, "CPU threads for PyTorch (and for faster-whisper in the bench).", min=1)
    kernels: str = option("auto", "Triton kernels for the decoding hot paths (attention, cache compaction, "
                                  "verification): auto (on with CUDA), on or off.")

    def __post_init__(self):
        if self.device not in DEVICES:
            raise SpecvoiceError(f"unknown device {self.device!r}: choose from {', '.join(DEVICES)}")
        if self.kernels not in KERNELS:
            raise SpecvoiceError(f"unknown kernels choice {self.kernels!r}: choose from {', '.join(KERNELS)}")
        if self.dtype not in DTYPES:
            raise SpecvoiceError(f"unknown dtype {self.dtype!r}: choose from {', '.join(DTYPES)}")
        _check_limits(self)

    def placement(self) -> "Placement":
        """Where and in which precision the models run; fails where the device is not there."""
        import torch

        name = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        if name == "cuda" and not torch.cuda.is_available():
            raise SpecvoiceError("--device cuda: no CUDA GPU is available to this PyTorch build")
        dtype = ("float16" if name == "cuda" else "int8") if self.dtype == "auto" else self.dtype
        if name == "cpu" and dtype == "float16":
            raise SpecvoiceError("--dtype float16 is not supported on the CPU; use int8, float32 or bfloat16")
        if name == "cuda" and dtype == "int8":
            raise SpecvoiceError("--dtype int8 runs on the CPU only; use float16 on CUDA")
        return Placement(name, torch.float32 if dtype == "int8" else getattr(torch, dtype), dtype == "int8", dtype)

    def kernel_ops(self, device: str):
        """The implementation of the engine's hot operations (engine/ops.py) for models on `device`."""
        import specvoice_kernels

        from .engine.ops import TorchOps, TritonOps

        if self.kernels == "off":
            return TorchOps()
        if self.kernels == "auto":
            return TritonOps() if device == "cuda" and specvoice_kernels.installed() else TorchOps()
        if device != "cuda" and not specvoice_kernels.interpreting():
            raise SpecvoiceError("--kernels on needs a CUDA GPU (or TRITON_INTERPRET=1 in the environment to run "
                                 "the kernels in Triton's CPU interpreter, slowly)")
        if not specvoice_kernels.installed():
            raise SpecvoiceError("--kernels on needs triton: pip install 'specvoice[kernels]'")
        return TritonOps()

    def draft_for(self, method: str) -> str | None:
        """The draft a method runs with: the one asked for, or the default where the method needs one."""
        if method == "ar":
            if self.draft is not None:
                raise SpecvoiceError("--draft needs --method spec, specasr or dllm")
            return None
        return self.draft or DEFAULT_DRAFT


@dataclass(frozen=True)
class DecodingOptions:
    """How one transcript is decoded."""

    method: str = option("auto", "ar: greedy; spec: speculative; specasr: adaptive + recycling + token tree; "
                                 "dllm: parallel refinement of the draft's transcript; auto: ar on the CPU, specasr "
                                 "on CUDA or with --draft. All give identical text.")
    language: str | None = option(None, "Spoken language, as a code (de) or a name (German); detected when omitted.")
    task: str = option("transcribe", "transcribe, or translate to English (multilingual models).")
    timestamps: bool | None = option(None, "Decode segment timestamps (default: on for audio over 30 s and for "
                                           "srt/vtt output).")
    draft_len: int = option(5, "spec: tokens per draft.", min=1, max=64)
    max_draft: int = option(24, "specasr: longest draft.", min=1, max=64)
    confidence: float = option(0.4, "specasr: a draft ends after a token the draft is less sure of than this.",
                               min=0.0, max=1.0)
    recycle: bool = option(True, "specasr: reuse rejected draft tails.")
    tree_positions: int = option(2, "specasr: least-confident positions that get alternative branches "
                                    "(0: no tree).", min=0, max=16)
    tree_alternatives: int = option(1, "specasr: next-best tokens added at each branching position.", min=1, max=8)
    tree_below: float = option(0.6, "specasr: only positions the draft is less sure of than this branch.",
                               min=0.0, max=1.0)
    branch_successor: bool = option(True, "specasr: give every alternative its greedy successor (one draft pass).")
    realign_window: int = option(3, "specasr: how far ahead in a rejected tail a new draft token may re-align.",
                                 min=1, max=16)
    # Whisper's own rules, with openai-whisper's names and defaults.
    temperature: float = option(0.0, "Sampling temperature of the first try (0: greedy, identical for every method).",
                                min=0.0, max=1.0)
    temperature_increment_on_fallback: float = option(0.2, "Retry a failed window at this much higher temperature, "
                                                            "up to 1.0 (0: no retries).", min=0.0, max=1.0)
    best_of: int = option(5, "Samples per sampled try; the likeliest is kept.", min=1, max=16)
    compression_ratio_threshold: float | None = option(2.4, "A window whose text gzip-compresses better than this "
                                                            "(repetition) is retried hotter.")
    logprob_threshold: float | None = option(-1.0, "A window whose average token log-probability is below this is "
                                                   "retried hotter (or silent, see --no-speech-threshold).")
    no_speech_threshold: float | None = option(0.6, "A window is silent when its no-speech probability is over this "
                                                    "and its average log-probability under --logprob-threshold.",
                                               min=0.0, max=1.0)
    condition_on_previous_text: bool = option(True, "Prompt each window with the text before it (off: windows are "
                                                    "independent, less prone to repetition loops).")
    initial_prompt: str | None = option(None, "Text to prompt the first window with (names, spelling, style).")
    vad_filter: bool = option(False, "Skip silence found by Silero VAD and cut windows in pauses (needs the vad extra).")
    word_timestamps: bool = option(False, "Time every word from the cross-attention (openai-whisper's alignment; "
                                          "implies --timestamps): words in json, word-refined segment times.")
    prepend_punctuations: str = option("\"'“¿([{-", "With --word-timestamps: these marks join the word after "
                                                   "them.")
    append_punctuations: str = option("\"'.。,，!！?？:：”)]}、", "With --word-timestamps: these marks join the word "
                                                               "before them.")

    def __post_init__(self):
        if self.method not in METHOD_CHOICES:
            raise SpecvoiceError(f"unknown method {self.method!r}: choose from {', '.join(METHOD_CHOICES)}")
        if self.task not in TASKS:
            raise SpecvoiceError(f"unknown task {self.task!r}: use transcribe or translate")
        if self.language is not None:
            object.__setattr__(self, "language", language_code(self.language))
        if self.word_timestamps and self.timestamps is False:
            raise SpecvoiceError("--word-timestamps needs timestamps: drop --no-timestamps")
        _check_limits(self)

    def on(self, device: str, draft: str | None = None) -> "DecodingOptions":
        """These options with --method auto made concrete for the device the target runs on; a draft the user
        named is used (auto never turns a valid request into an error)."""
        if self.method != "auto":
            return self
        return replace(self, method="specasr" if draft is not None else AUTO_METHOD[device])

    @property
    def needs_draft(self) -> bool:
        if self.method == "auto":
            raise ValueError("--method auto is made concrete with DecodingOptions.on(device) first")
        return self.method != "ar"

    @property
    def temperatures(self) -> tuple[float, ...]:
        """The temperatures each window is tried at, in order (openai-whisper's schedule)."""
        step = self.temperature_increment_on_fallback
        if not step:
            return (self.temperature,)
        count = int((1.0 - self.temperature) / step + 1e-6) + 1
        return tuple(round(self.temperature + i * step, 6) for i in range(count))

    def draft_policy(self) -> DraftPolicy:
        """How the draft model drafts: spec's fixed-length chain, or specasr's (which dllm falls back on)."""
        if self.method == "spec":
            return DraftPolicy(max_tokens=self.draft_len, confidence=0.0, recycle=False, tree_positions=0,
                               tree_alternatives=self.tree_alternatives, tree_below=self.tree_below,
                               branch_successor=False, realign_window=self.realign_window, adaptive_cap=False)
        return DraftPolicy(max_tokens=self.max_draft, confidence=self.confidence, recycle=self.recycle,
                           tree_positions=self.tree_positions, tree_alternatives=self.tree_alternatives,
                           tree_below=self.tree_below, branch_successor=self.branch_successor,
                           realign_window=self.realign_window, adaptive_cap=True)


TTS_METHODS = {
    "ar": "plain sampling from the target (the reference distribution)",
    "ssd": "speculative sampling with a draft: exactly the target's distribution at --beta 0",
}
DEFAULT_TTS_MODEL = "suno/bark"
DEFAULT_TTS_DRAFTS = {"suno/bark": "suno/bark-small", "HKUSTAudio/Llasa-3B": "HKUSTAudio/Llasa-1B",
                      "HKUSTAudio/Llasa-8B": "HKUSTAudio/Llasa-1B"}
DEFAULT_XCODEC2 = "HKUSTAudio/xcodec2-hf"  # Llasa's codec, unless the model folder has its own in codec/
OFFLINE_VOICE = "hibari"


@dataclass(frozen=True)
class SynthesisOptions:
    """What `specvoice synthesize` runs and how it samples; device and dtype are ModelOptions'."""

    model: str | None = option(None, f"TTS model: a Bark or Llasa hub id or folder, or {OFFLINE_VOICE} (the offline voice). "
                                     f"Default {DEFAULT_TTS_MODEL}; when its weights cannot be had, {OFFLINE_VOICE}.")
    draft: str | None = option(None, "Draft model for ssd (default suno/bark-small for suno/bark, Llasa-1B for "
                                     "Llasa-3B/8B); must share the target's vocabularies.")
    method: str | None = option(None, "ar: plain sampling from the target; ssd: speculative sampling, the same "
                                      "distribution at --beta 0 (default ssd where the model has a draft).")
    beta: float = option(0.0, "ssd tolerance: accept a draft token when u < p/q + beta. 0 is exact; > 0 is SSD's "
                              "lossy acceptance (faster, changes the output distribution).", min=0.0, max=1.0)
    draft_len: int | None = option(None, "Draft tokens per target pass (default: adaptive, 4 to 12).", min=1, max=32)
    temperature: float = option(0.7, "Sampling temperature of the token stages (0: greedy; Bark's default 0.7).",
                                min=0.0, max=2.0)
    top_k: int | None = option(None, "Sample only from the k most likely tokens.", min=1)
    top_p: float | None = option(None, "Sample only from the smallest set of tokens with this much probability.",
                                 min=0.0, max=1.0)
    seed: int = option(0, "Random seed: the same seed, text and options give the same audio.", min=0)
    voice: str | None = option(None, "Speaker: a Bark preset of the model (e.g. v2/en_speaker_6) or a .npz speaker "
                                     f"prompt; for {OFFLINE_VOICE}, one of its voices (heart is built in).")
    pause: float = option(0.25, "Seconds of silence between sentences of a long text.", min=0.0, max=5.0)

    def __post_init__(self):
        if self.method is not None and self.method not in TTS_METHODS:
            raise SpecvoiceError(f"unknown method {self.method!r}: choose from {', '.join(TTS_METHODS)}")
        _check_limits(self)
        if self.model == OFFLINE_VOICE:
            for name, value in (("--method", self.method), ("--draft", self.draft)):
                if value is not None:
                    raise SpecvoiceError(f"{name}: the offline voice {OFFLINE_VOICE} is not autoregressive (no token "
                                         "sampling to speculate on); use a Bark model for ar/ssd")
        if self.method == "ar" and self.draft is not None:
            raise SpecvoiceError("--draft needs --method ssd")
        if self.top_p == 0:
            raise SpecvoiceError("--top-p 0 keeps no token: give a value above 0")

    @property
    def target(self) -> str:
        return self.model or DEFAULT_TTS_MODEL

    def draft_for(self) -> str | None:
        """The draft ssd runs with (None for ar, or where the target has no known draft and none was given)."""
        if self.method == "ar":
            return None
        draft = self.draft or DEFAULT_TTS_DRAFTS.get(self.target)
        if draft is None and self.method == "ssd":
            raise SpecvoiceError(f"--method ssd needs --draft for {self.target}")
        return draft
@dataclass(frozen=True)
class ListenOptions:
    """How live audio is taken in and re-decoded (`specvoice listen`)."""

    input_device: str | None = option(None, "Input device: its index or part of its name (see --list-devices); "
                                            "default: the system's default input.")
    step: float = option(1.0, "Seconds of new audio between re-decodes of the buffer.", min=0.1, max=10.0)
    speed: float = option(1.0, "--input: replay pace (2: twice real time; 0: as fast as decoding allows).", min=0.0)
    previous_draft: bool = option(True, "Propose the previous update's hypothesis as a free draft (no model pass).")
    vad: bool = option(True, "Skip silence and end utterances with Silero VAD.")

    def __post_init__(self):
        _check_limits(self)


@dataclass(frozen=True)
class DistillOptions:
    """How `specvoice distill` trains a shallow draft for a target."""

    shares: tuple[int, ...] = option((0, 5), "Target decoder layers the draft's layers start from (comma-separated); "
                                             "the draft reads their cross-attention keys/values.")
    frequent: int = option(4096, "Draft vocabulary: this many of the lowest (most frequent) text token ids, plus "
                                 "every token the target said in training, every special and timestamp token.",
                           min=0)
    repeats: int = option(3, "Times the built-in public-domain corpus is spoken (cut into other pieces each time).",
                          min=1, max=20)
    epochs: int = option(6, "Passes over the spoken corpus.", min=1, max=100)
    learning_rate: float = option(2e-4, "Peak learning rate (one-cycle schedule).", min=1e-6, max=1e-1)
    seed: int = option(0, "Seed of the voice, the cuts and the training order: the same seed, the same draft.")

    def __post_init__(self):
        if not self.shares or len(set(self.shares)) != len(self.shares) or min(self.shares) < 0:
            raise SpecvoiceError(f"--shares {','.join(map(str, self.shares))}: give distinct layer numbers such as 0,5")
        _check_limits(self)
