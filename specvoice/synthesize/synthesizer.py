"""Text to audio: split into sentences, speak each with a TTS model, join them with short pauses.

A speaker is either a codec-token language model whose token stages an engine `Sampler` draws (plain `ar`
or speculative `ssd`), or the offline voice (no tokens to sample). The time spent in the token stages is
measured apart from the codec, as SSD's paper reports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..bark import BarkPair, load_bark, voice_presets
from ..engine.sampling import Sampler, Warp
from ..engine.stats import DecodeStats
from ..errors import SpecvoiceError
from ..hibari import HibariVoice
from ..llasa import LlasaPair
from ..models.resolve import ModelUnavailable, hub_folder, is_hub_id
from ..options import DEFAULT_TTS_MODEL, DEFAULT_XCODEC2, OFFLINE_VOICE, SynthesisOptions
from .text import split_sentences

MODEL_FILES = ("*.json", "*.safetensors", "*.txt", "*.npy", "*.jinja")  # Bark's speaker prompts are .npy


@dataclass
class Synthesis:
    audio: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    sentences: list[str]
    stats: DecodeStats = field(default_factory=DecodeStats)
    lm_seconds: float = 0.0  # in the autoregressive token stages (0 for the offline voice)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


class Speaker(Protocol):
    sample_rate: int
    autoregressive: bool
    has_draft: bool

    def speak(self, sentence: str, sampler: Sampler | None, seed: int) -> tuple[np.ndarray, float]:
        """Audio for one sentence and the seconds its token stages took."""

    def reading_notes(self, text: str) -> list[str]:
        """Notes on how the speaker reads `text`; raises where it cannot speak it."""


class MultilingualSpeaker:
    """Bark and Llasa read any script their tokenizers cover: nothing to say before they speak."""

    def reading_notes(self, text: str) -> list[str]:
        return []


class BarkSpeaker(MultilingualSpeaker):
    autoregressive = True

    def __init__(self, pair: BarkPair, voice: str | None):
        self.pair, self.voice = pair, pair.voice(voice)
        self.sample_rate = pair.sample_rate
        self.has_draft = pair.draft is not None

    def speak(self, sentence: str, sampler: Sampler | None, seed: int) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        semantic = self.pair.semantic_tokens(self.pair.text_tokens(sentence), self.voice, sampler)
        coarse = self.pair.coarse_tokens(semantic, self.voice, sampler)
        lm_seconds = time.perf_counter() - start  # each sampling round reads tokens back: the device is synced
        return self.pair.audio(coarse, self.voice, seed), lm_seconds


class LlasaSpeaker(MultilingualSpeaker):
    autoregressive = True

    def __init__(self, pair: LlasaPair, voice: str | None):
        if voice is not None:
            raise SpecvoiceError("--voice: Llasa models take no speaker prompt here (Bark presets are for Bark models)")
        self.pair, self.sample_rate, self.has_draft = pair, pair.sample_rate, pair.draft is not None

    def speak(self, sentence: str, sampler: Sampler | None, seed: int) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        codes = self.pair.speech_codes(sentence, sampler)
        lm_seconds = time.perf_counter() - start
        return self.pair.audio(codes), lm_seconds


class OfflineSpeaker:
    autoregressive = has_draft = False

    def __init__(self, voice: HibariVoice):
        self.voice, self.sample_rate = voice, voice.sample_rate

    def speak(self, sentence: str, sampler: Sampler | None, seed: int) -> tuple[np.ndarray, float]:
        return self.voice.speak(sentence, seed), 0.0

    def reading_notes(self, text: str) -> list[str]:
        return self.voice.reading_notes(text)


class Synthesizer:
    def __init__(self, speaker: Speaker, options: SynthesisOptions, device: torch.device | str = "cpu"):
        self.speaker, self.options, self.device = speaker, options, torch.device(device)

    def with_options(self, options: SynthesisOptions) -> "Synthesizer":
        return Synthesizer(self.speaker, options, self.device)

    def reading_notes(self, text: str) -> list[str]:
        """Notes on how `text` will be read, said before the slow part; raises where it cannot be spoken."""
        return self.speaker.reading_notes(text)

    def sampler(self, stats: DecodeStats, seed: int) -> Sampler | None:
        if not self.speaker.autoregressive:
            return None
        o = self.options
        warp = Warp(o.temperature, o.top_k, o.top_p)
        # No --method: ssd where the speaker has a draft (options.draft_for makes an explicit ssd need one).
        return Sampler(warp, speculative=self.speaker.has_draft and o.method != "ar", beta=o.beta, draft_len=o.draft_len,
                       generator=torch.Generator(self.device).manual_seed(seed), stats=stats)

    def synthesize(self, text: str) -> Synthesis:
        sentences = split_sentences(text)
        if not sentences:
            raise SpecvoiceError("no text to speak (empty input)")
        stats = DecodeStats()
        sampler = self.sampler(stats, self.options.seed)
        pause = np.zeros(int(self.options.pause * self.speaker.sample_rate), dtype=np.float32)
        parts, lm_seconds = [], 0.0
        for i, sentence in enumerate(sentences):
            audio, seconds = self.speaker.speak(sentence, sampler, self.options.seed + i)
            parts += [pause, audio] if parts else [audio]
            lm_seconds += seconds
        audio = np.concatenate(parts).astype(np.float32)
        if not any(len(part) for part in parts[::2]):  # the sentences, not the pauses between them
            raise SpecvoiceError("the voice made no sound for this text (nothing in it that it can read)")
        return Synthesis(audio, self.speaker.sample_rate, sentences, stats, lm_seconds)


def _model_folder(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SpecvoiceError(f"{path}: not a model folder (no config.json)")
        return path
    if is_hub_id(name):
        return hub_folder(name, MODEL_FILES)
    raise SpecvoiceError(f"unknown TTS model {name!r}: use {OFFLINE_VOICE}, a Bark hub id such as {DEFAULT_TTS_MODEL}, "
                         "a Llasa hub id, or a local folder")


def _model_type(folder: Path) -> str:
    import json

    return json.loads((folder / "config.json").read_text()).get("model_type")


def _load_speaker_model(options: SynthesisOptions, voice: str | None, device: str, dtype: torch.dtype) -> Speaker:
    """Bark or Llasa, chosen by the target folder's config; the draft must be of the same family."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _model_folder(options.target)
    family = _model_type(folder)
    if family not in ("bark", "llama"):
        raise SpecvoiceError(f"{options.target}: a {family!r} model; synthesize runs Bark and Llasa (Llama) models "
                             f"(or --model {OFFLINE_VOICE})")
    draft_name = options.draft_for()
    draft_folder = _model_folder(draft_name) if draft_name else None
    if draft_folder is not None and _model_type(draft_folder) != family:
        raise SpecvoiceError(f"draft {draft_name} is a {_model_type(draft_folder)!r} model, the target a {family!r} one: "
                             "their vocabularies differ")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if family == "bark":
        draft = load_bark(draft_folder, device, dtype) if draft_folder else None
        return BarkSpeaker(BarkPair(load_bark(folder, device, dtype), tokenizer, voice_presets(folder), draft), voice)
    from transformers import Xcodec2Model

    load = lambda f: AutoModelForCausalLM.from_pretrained(f, dtype=dtype).to(device).eval()
    codec_folder = folder / "codec" if (folder / "codec" / "config.json").is_file() else hub_folder(DEFAULT_XCODEC2)
    codec = Xcodec2Model.from_pretrained(codec_folder).to(device).eval()  # float32: the codec is small
    return LlasaSpeaker(LlasaPair(load(folder), tokenizer, codec, load(draft_folder) if draft_folder else None), voice)


def load_speaker(options: SynthesisOptions, device: str, dtype: torch.dtype) -> tuple[Speaker, list[str]]:
    """The speaker the options ask for, and notes for the user (the fallback to the offline voice)."""
    if options.model == OFFLINE_VOICE:
        return OfflineSpeaker(HibariVoice(options.voice)), []
    try:
        return _load_speaker_model(options, options.voice, device, dtype), []
    except ModelUnavailable as exc:
        plain = options.model is None and options.method is None and options.draft is None and options.voice is None
        if not plain:
            raise ModelUnavailable(f"{exc}. Bark's weights come from the hub ({DEFAULT_TTS_MODEL}, suno/bark-small) "
                                   f"or a local folder (--model PATH); offline, use --model {OFFLINE_VOICE}") from None
        note = f"{DEFAULT_TTS_MODEL} is not available here (offline, not cached): speaking with the offline voice " \
               f"{OFFLINE_VOICE} instead"
        return OfflineSpeaker(HibariVoice()), [note]
