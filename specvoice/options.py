"""Every user-facing choice of the speech pipelines, with its default and its help text, defined once.

After openai/whisper's `DecodingOptions`: the command line, the pipelines, the bench and the tests all
build their settings from these dataclasses, and they are validated here, once, when built. Nothing heavy is
imported here (PyTorch, tokenizers): `specvoice --help` and `--version` read this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import SpecvoiceError

if TYPE_CHECKING:
    from .engine.drafter import DraftPolicy


class OptionError(SpecvoiceError):
    """A bad option value or combination: a usage error, exit status 2 as for typer's own."""


METHODS = {
    "ar": "plain greedy decoding with the target alone (the reference output)",
    "spec": "vanilla speculative decoding: the draft proposes --draft-len tokens, the target verifies",
    "specasr": "SpecASR: adaptive draft length, draft recycling, two-pass sparse token tree",
    "dllm": "dLLM-ASR-style: the draft's whole transcript is refined in parallel rounds by the target",
}
# What --method auto runs: specasr on CUDA, where a pass costs about the same for 1 token or 30. On the CPU, specasr
# with the shallow draft that ships for the model (no encoder of its own, a step 0.3-0.4 of a target step) once a
# command has AUTO_DRAFT_SECONDS of audio, else ar: loading the draft costs a command ~0.1 s (its int8 layers
# cached on disk) and drafting saves ~3-4 ms of decoding a second of audio, so a 35.5 s file came out even and
# JFK (11 s) 3% slower, the 231 s file 10% faster and 16 clips (98 s) in one command 6% (BENCHMARKS.md).
AUTO_METHOD = {"cpu": "ar", "cuda": "specasr"}
AUTO_DRAFT_SECONDS = 60.0
# specasr's drafting where the user sets none. On the CPU a verify pass costs more with every row and a draft
# step a third of a target step, so a draft stops at the first token it is less than 0.8 sure of and no tree
# branches: on the short dev clips that took 0.71x of the decoder time of 0.4 with 2 branching positions with a
# shallow draft, 0.80x with tiny.en, and 0.68x on long form (BENCHMARKS.md). On CUDA a pass costs about the same
# for 1 row or 30: long drafts and a tree.
DRAFTING = {"cpu": {"confidence": 0.8, "tree_positions": 0}, "cuda": {"confidence": 0.4, "tree_positions": 2}}
METHOD_CHOICES = {"auto": "specasr on CUDA, with --draft, or on the CPU for a minute of audio or more where a "
                          "shallow draft ships for the model; else ar", **METHODS}
TASKS = ("transcribe", "translate")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "int8", "float32", "float16", "bfloat16")
KERNELS = ("auto", "on", "off")
DEFAULT_DRAFT = "tiny.en"


# The groups `--help` shows options in (typer's rich_help_panel).
PANEL_MODELS = "Models and method"
PANEL_TRANSCRIPT = "Transcript"
PANEL_RULES = "Whisper's decoding rules"
PANEL_DRAFTING = "Drafting knobs"
PANEL_RUNTIME = "Where it runs"
PANEL_OUTPUT = "Output"
PANEL_SAMPLING = "Sampling"
PANEL_LIVE = "Live input"
PANEL_TEXT = "Text"
PANEL_BATCH = "Many files"
PANEL_BENCH = "What is measured"


def option(default: Any, help: str, panel: str | None = None, command_help: dict[str, str] | None = None,
           **limits: float) -> Any:
    """A dataclass field that also carries its help text, its help group and numeric limits (min, max) for the
    CLI; `command_help` words the help differently for a command where the option means something else."""
    return field(default=default, metadata={"help": help, "panel": panel, "command_help": command_help or {},
                                            **limits})


def describe(cls: type, name: str, command: str | None = None) -> dict:
    """The help text (as `command` shows it), help group and limits of one option."""
    meta = dict(next(f for f in fields(cls) if f.name == name).metadata)
    meta["help"] = meta.pop("command_help").get(command, meta["help"])
    return meta


def _check_limits(options: object) -> None:
    for f in fields(options):
        value = getattr(options, f.name)
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if value is None or isinstance(value, bool):
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            raise OptionError(f"--{f.name.replace('_', '-')} {value}: must be {bounds}")


def _language_code(language: str) -> str:
    from .whisper.tokenizer import language_code  # reads transformers' language names: only when one is given

    try:
        return language_code(language)
    except SpecvoiceError as exc:
        raise OptionError(str(exc)) from None


class Placement(NamedTuple):
    device: str
    dtype: Any  # torch.dtype of the weights as loaded (float32 for int8: quantised when the decoder is built)
    int8: bool
    label: str  # the precision's name: int8, float32, ...


@dataclass(frozen=True)
class ModelOptions:
    """Which weights run, and where."""

    model: str = option("base", "Target: base, tiny.en, a transformers or CTranslate2 folder, or a hub id.",
                        PANEL_MODELS)
    draft: str | None = option(None, f"Draft for spec/specasr/dllm: a model (another vocabulary is bridged through "
                                     f"text), shallow or a draft file (default: on the CPU the shallow draft that "
                                     f"ships for base, else {DEFAULT_DRAFT}).", PANEL_MODELS,
                               command_help={"bench": f"Draft for the methods that need one, as transcribe takes it "
                                                      f"(default: on the CPU the shallow draft that ships for base, "
                                                      f"else {DEFAULT_DRAFT}); transformers' assisted generation "
                                                      f"needs a model (--draft {DEFAULT_DRAFT})."})
    device: str = option("auto", "auto (CUDA when available), cpu or cuda.", PANEL_RUNTIME)
    dtype: str = option("auto", "Precision. auto: int8 on the CPU, float16 on CUDA. int8 (CPU): linear layers in "
                                "int8 with per-row scales, the same text for every method.", PANEL_RUNTIME,
                        command_help={"synthesize": "Precision: auto (float32 on the CPU, float16 on CUDA), "
                                                    "float32, float16 or bfloat16."})
    threads: int | None = option(None, "CPU threads for PyTorch.", PANEL_RUNTIME, min=1,
                                 command_help={"bench": "CPU threads for PyTorch and faster-whisper."})
    kernels: str = option("auto", "Triton kernels for attention, cache compaction and verification: auto (on "
                                  "with CUDA), on or off.", PANEL_RUNTIME)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise OptionError(f"unknown device {self.device!r}: choose from {', '.join(DEVICES)}")
        if self.kernels not in KERNELS:
            raise OptionError(f"unknown kernels choice {self.kernels!r}: choose from {', '.join(KERNELS)}")
        if self.dtype not in DTYPES:
            raise OptionError(f"unknown dtype {self.dtype!r}: choose from {', '.join(DTYPES)}")
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
                raise OptionError("--draft needs --method spec, specasr or dllm")
            return None
        return self.draft if self.draft is not None else self.default_draft()

    def drafts_shallow(self) -> bool:
        """Whether drafting runs the shallow draft that ships for the model (none named, on the CPU)."""
        from .whisper.shallow import SHALLOW

        return self.draft is None and self.default_draft() == SHALLOW

    def default_draft(self) -> str:
        """The draft where none is named: on the CPU the shallow draft that ships for the model, else tiny.en."""
        from .whisper.shallow import SHALLOW, shipped_draft

        return SHALLOW if self.placement().device == "cpu" and shipped_draft(self.model) else DEFAULT_DRAFT


@dataclass(frozen=True)
class DecodingOptions:
    """How one transcript is decoded."""

    method: str = option("auto", "ar: greedy; spec: speculative; specasr: adaptive drafts, recycling, token "
                                 "tree; dllm: parallel refinement of the draft's text; auto: specasr on CUDA, "
                                 "with --draft, or on the CPU for a minute of audio or more (base), else ar. "
                                 "All give the same text.", PANEL_MODELS)
    language: str | None = option(None, "Spoken language: a code (de) or a name (German); detected when omitted.",
                                  PANEL_TRANSCRIPT)
    task: str = option("transcribe", "transcribe, or translate to English (multilingual models).", PANEL_TRANSCRIPT)
    timestamps: bool | None = option(None, "Segment timestamps (default: on for audio over 30 s).", PANEL_TRANSCRIPT,
                                     command_help={"transcribe": "Decode with segment timestamps (default: on, as "
                                                                 "openai-whisper; off: plain text in 30 s windows)."})
    draft_len: int = option(5, "spec: tokens per draft.", PANEL_DRAFTING, min=1, max=64)
    max_draft: int = option(24, "specasr: longest draft.", PANEL_DRAFTING, min=1, max=64)
    confidence: float | None = option(None, "specasr: a draft ends after a token the draft is less sure of than "
                                            "this (default: 0.8 on the CPU, 0.4 on CUDA).", PANEL_DRAFTING,
                                      min=0.0, max=1.0)
    recycle: bool = option(True, "specasr: reuse rejected draft tails.", PANEL_DRAFTING)
    tree_positions: int | None = option(None, "specasr: least-confident positions that get alternative branches "
                                              "(0: no tree; default: 0 on the CPU, 2 on CUDA).", PANEL_DRAFTING,
                                        min=0, max=16)
    tree_alternatives: int = option(1, "specasr: next-best tokens added at each branching position.", min=1, max=8)
    tree_below: float = option(0.6, "specasr: only positions the draft is less sure of than this branch.",
                               min=0.0, max=1.0)
    branch_successor: bool = option(True, "specasr: give every alternative its greedy successor (one draft pass).")
    realign_window: int = option(3, "specasr: how far ahead in a rejected tail a new draft token may re-align.",
                                 min=1, max=16)
    draft_previous: int = option(0, "Tokens of the text before a window that the draft is prompted with (the "
                                     "target: all of it, up to 223).", PANEL_DRAFTING, min=0, max=448)
    # Whisper's own rules, with openai-whisper's names and defaults.
    temperature: float = option(0.0, "Temperature of the first try (0: greedy, the same text for every method).",
                                PANEL_RULES, min=0.0, max=1.0)
    temperature_increment_on_fallback: float = option(0.2, "Retry a failed window this much hotter, up to 1.0 "
                                                            "(0: no retries).", PANEL_RULES, min=0.0, max=1.0)
    best_of: int = option(5, "Samples per sampled try; the likeliest is kept.", PANEL_RULES, min=1, max=16)
    compression_ratio_threshold: float | None = option(2.4, "Retry a window whose text gzip-compresses better "
                                                            "than this (repetition).", PANEL_RULES)
    logprob_threshold: float | None = option(-1.0, "Retry a window whose mean token log-probability is below "
                                                   "this (or skip it as silent, see --no-speech-threshold).",
                                             PANEL_RULES)
    no_speech_threshold: float | None = option(0.6, "A window is silent when its no-speech probability is over "
                                                    "this and --logprob-threshold failed.", PANEL_RULES,
                                               min=0.0, max=1.0)
    condition_on_previous_text: bool = option(True, "Prompt each window with the text before it (off: windows "
                                                    "independent, fewer repetition loops).", PANEL_RULES)
    initial_prompt: str | None = option(None, "Text to prompt the first window with (names, spelling, style).",
                                        PANEL_RULES)
    vad_filter: bool = option(False, "Skip silence (Silero VAD) and cut windows in pauses (needs the vad extra).",
                              PANEL_TRANSCRIPT)
    word_timestamps: bool = option(False, "Time every word (openai-whisper's alignment; implies --timestamps): "
                                          "words in json, word-refined segment times.", PANEL_TRANSCRIPT)
    prepend_punctuations: str = option("\"'“¿([{-", "With --word-timestamps: marks that join the next word.",
                                       PANEL_TRANSCRIPT)
    append_punctuations: str = option("\"'.。,，!！?？:：”)]}、", "With --word-timestamps: marks that join the "
                                                               "word before.", PANEL_TRANSCRIPT)

    def __post_init__(self):
        if self.method not in METHOD_CHOICES:
            raise OptionError(f"unknown method {self.method!r}: choose from {', '.join(METHOD_CHOICES)}")
        if self.task not in TASKS:
            raise OptionError(f"unknown task {self.task!r}: use transcribe or translate")
        if self.language is not None:
            object.__setattr__(self, "language", _language_code(self.language))
        if self.word_timestamps and self.timestamps is False:
            raise OptionError("--word-timestamps needs timestamps: drop --no-timestamps")
        _check_limits(self)

    def on(self, device: str, draft: str | None = None, shallow_draft_seconds: float = 0.0) -> "DecodingOptions":
        """These options made concrete for the device the target runs on: --method auto (a draft the user named
        is used: auto never turns a valid request into an error) and the drafting knobs left unset.
        shallow_draft_seconds: the command's seconds of audio where a shallow draft ships for its model (else 0)."""
        concrete = {name: value for name, value in DRAFTING[device].items() if getattr(self, name) is None}
        if self.method == "auto":
            drafts = draft is not None or shallow_draft_seconds >= AUTO_DRAFT_SECONDS
            concrete["method"] = "specasr" if drafts else AUTO_METHOD[device]
        return replace(self, **concrete) if concrete else self

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
        from .engine.drafter import DraftPolicy

        if self.method == "spec":
            return DraftPolicy(max_tokens=self.draft_len, confidence=0.0, recycle=False, tree_positions=0,
                               tree_alternatives=self.tree_alternatives, tree_below=self.tree_below,
                               branch_successor=False, realign_window=self.realign_window, adaptive_cap=False)
        if self.confidence is None or self.tree_positions is None:
            raise ValueError("specasr's drafting defaults depend on the device: DecodingOptions.on(device) first")
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
                                     f"Default {DEFAULT_TTS_MODEL}; when its weights cannot be had, {OFFLINE_VOICE}.",
                               PANEL_MODELS, command_help={"bench": f"tts: the model that speaks: a Bark or Llasa hub "
                                                                    f"id or folder, or {OFFLINE_VOICE} (default "
                                                                    f"{DEFAULT_TTS_MODEL}; when its weights cannot be "
                                                                    f"had, {OFFLINE_VOICE})."})
    draft: str | None = option(None, "Draft model for ssd (default suno/bark-small for suno/bark, Llasa-1B for "
                                     "Llasa-3B/8B); must share the target's vocabularies.", PANEL_MODELS,
                               command_help={"bench": "tts: draft model for ssd (default suno/bark-small for "
                                                      "suno/bark, Llasa-1B for Llasa-3B/8B)."})
    method: str | None = option(None, "ar: plain sampling from the target; ssd: speculative sampling, the same "
                                      "distribution at --beta 0 (default ssd where the model has a draft).", PANEL_MODELS)
    beta: float = option(0.0, "ssd tolerance: accept a draft token when u < p/q + beta. 0 is exact; > 0 is SSD's "
                              "lossy acceptance (faster, changes the output distribution).", PANEL_SAMPLING, min=0.0,
                      max=1.0)
    draft_len: int | None = option(None, "Draft tokens per target pass (default: adaptive, 4 to 12).",
                                   PANEL_SAMPLING, min=1, max=32)
    temperature: float = option(0.7, "Sampling temperature of the token stages (0: greedy; Bark's default 0.7).",
                                PANEL_SAMPLING, min=0.0, max=2.0)
    top_k: int | None = option(None, "Sample only from the k most likely tokens.", PANEL_SAMPLING, min=1)
    top_p: float | None = option(None, "Sample only from the smallest set of tokens with this much probability.",
                                 PANEL_SAMPLING, min=0.0, max=1.0)
    seed: int = option(0, "Random seed: the same seed, text and options give the same audio.", PANEL_SAMPLING,
                    min=0)
    voice: str | None = option(None, "Speaker: a Bark preset of the model (e.g. v2/en_speaker_6) or a .npz speaker "
                                     f"prompt; for {OFFLINE_VOICE}, one of its voices (heart is built in).",
                               PANEL_MODELS)
    pause: float = option(0.25, "Seconds of silence between sentences of a long text.", PANEL_OUTPUT,
                          min=0.0, max=5.0)

    def __post_init__(self):
        if self.method is not None and self.method not in TTS_METHODS:
            raise OptionError(f"unknown method {self.method!r}: choose from {', '.join(TTS_METHODS)}")
        _check_limits(self)
        if self.model == OFFLINE_VOICE:
            for name, value in (("--method", self.method), ("--draft", self.draft)):
                if value is not None:
                    raise OptionError(f"{name}: the offline voice {OFFLINE_VOICE} is not autoregressive (no token "
                                         "sampling to speculate on); use a Bark model for ar/ssd")
        if self.method == "ar" and self.draft is not None:
            raise OptionError("--draft needs --method ssd")
        if self.top_p == 0:
            raise OptionError("--top-p 0 keeps no token: give a value above 0")

    @property
    def target(self) -> str:
        return self.model or DEFAULT_TTS_MODEL

    def draft_for(self) -> str | None:
        """The draft ssd runs with (None for ar, or where the target has no known draft and none was given)."""
        if self.method == "ar":
            return None
        draft = self.draft or DEFAULT_TTS_DRAFTS.get(self.target)
        if draft is None and self.method == "ssd":
            raise OptionError(f"--method ssd needs --draft for {self.target}")
        return draft
@dataclass(frozen=True)
class BatchOptions:
    """How a transcribe run over many files is carried out: resumed, and spread over Ray workers."""

    workers: int | None = option(None, "Spread the inputs over this many Ray workers, each holding the models once "
                                       "(needs --output-dir, and Ray: specvoice's cluster extra). Without "
                                       "--ray-address a local Ray is started for the run and stopped after it.", PANEL_BATCH,
                                     min=1)
    ray_address: str | None = option(None, "With --workers: join this Ray cluster (host:port, or auto) instead of "
                                           "starting a local one (default: $RAY_ADDRESS).", PANEL_BATCH)
    resume: bool = option(False, "Skip the inputs whose output files are all there: the same command finishes an "
                                 "interrupted run.", PANEL_BATCH)

    def __post_init__(self):
        _check_limits(self)
        if self.ray_address is not None and self.workers is None:
            raise OptionError("--ray-address needs --workers")

    def check(self, output_dir: object) -> None:
        """--workers and --resume work on output files: refuse them without an output folder."""
        for flag, given in (("--workers", self.workers is not None), ("--resume", self.resume)):
            if given and output_dir is None:
                raise OptionError(f"{flag} needs --output-dir (the transcripts are written there)")


@dataclass(frozen=True)
class ListenOptions:
    """How live audio is taken in and re-decoded (`specvoice listen`)."""

    input_device: str | None = option(None, "Microphone: its index or part of its name (see --list-devices); "
                                            "default: the system's default input.", PANEL_LIVE)
    step: float = option(1.0, "Seconds of new audio between re-decodes of the buffer.", PANEL_LIVE, min=0.1,
                         max=10.0, command_help={"bench": "stream: seconds of new audio between re-decodes of the "
                                                          "buffer."})
    speed: float = option(1.0, "--input: replay pace (2: twice real time; 0: as fast as decoding allows).",
                          PANEL_LIVE, min=0.0,
                          command_help={"bench": "stream: pace each clip is replayed at (2: twice real time; 0: as "
                                                 "fast as decoding allows)."})
    previous_draft: bool = option(True, "Propose the previous update's hypothesis as a free draft (no model "
                                        "pass).", PANEL_LIVE)
    vad: bool = option(True, "Skip silence and end utterances with Silero VAD.", PANEL_LIVE)

    def __post_init__(self):
        _check_limits(self)


@dataclass(frozen=True)
class DistillOptions:
    """How `specvoice distill` trains a shallow draft for a target."""

    shares: tuple[int, ...] = option((0, 5), "Target decoder layers the draft's layers start from (comma-separated); "
                                             "the draft reads their cross-attention keys/values.")
    frequent: int = option(16384, "Draft vocabulary: this many of the lowest (most frequent) text token ids, plus "
                                  "every token the target said in training, every special and timestamp token.",
                           min=0)
    repeats: int = option(1, "Times the built-in public-domain corpus is spoken (cut into other pieces each time).",
                          min=1, max=20)
    epochs: int = option(5, "Passes over the spoken corpus.", min=1, max=100)
    learning_rate: float = option(2e-4, "Peak learning rate (one-cycle schedule).", min=1e-6, max=1e-1)
    seed: int = option(0, "Seed of the voice, the cuts and the training order: the same seed, the same draft.")

    def __post_init__(self):
        if not self.shares or len(set(self.shares)) != len(self.shares) or min(self.shares) < 0:
            raise OptionError(f"--shares {','.join(map(str, self.shares))}: give distinct layer numbers such as 0,5")
        _check_limits(self)
