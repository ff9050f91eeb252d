"""Bark (suno/bark drafted by suno/bark-small) as a codec-token TTS whose causal stages the engine samples.

Text -> semantic tokens (BarkCausalDecoder, speaker history as extra embeddings) -> coarse EnCodec codes
(two codebooks interleaved, generated in windows with Bark's sliding history) -> fine codes and audio as
transformers does them. The semantic and coarse stages follow transformers' BarkSemanticModel.generate and
BarkCoarseModel.generate step by step (same prompts, same logit processors, same windows), but every token is
drawn by an engine `Sampler`, plain or speculative.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..engine.sampling import Constraint, Sampler
from ..errors import SpecvoiceError
from .decoder import BarkCausalDecoder

VOICE_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")


def _configs(model):
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig, BarkFineGenerationConfig, BarkSemanticGenerationConfig)

    saved = model.generation_config
    return (BarkSemanticGenerationConfig(**(getattr(saved, "semantic_config", None) or {})),
            BarkCoarseGenerationConfig(**(getattr(saved, "coarse_acoustics_config", None) or {})),
            BarkFineGenerationConfig(**(getattr(saved, "fine_acoustics_config", None) or {})),
            getattr(saved, "codebook_size", 1024))


def semantic_constraint(config, vocab_size: int) -> Constraint:
    """transformers' SuppressTokens (only semantic tokens and end-of-semantic) then BarkEosPrioritizer."""
    eos, min_eos_p = config.semantic_pad_token, config.min_eos_p

    def constrain(logits: torch.Tensor, first: int) -> torch.Tensor:
        columns = torch.arange(vocab_size, device=logits.device)
        logits = logits.masked_fill(~((columns < config.semantic_vocab_size) | (columns == eos)), float("-inf"))
        if min_eos_p:
            stop = torch.softmax(logits, dim=-1)[:, eos:eos + 1] > min_eos_p
            logits = torch.where(stop & (columns != eos), float("-inf"), logits)
        return logits

    return constrain


def coarse_constraint(semantic_vocab_size: int, codebook_size: int, vocab_size: int) -> Constraint:
    """transformers' AlternatingCodebooks: even new tokens from the first codebook, odd ones from the second."""

    def constrain(logits: torch.Tensor, first: int) -> torch.Tensor:
        device = logits.device
        codebook = (torch.arange(len(logits), device=device) + first) % 2
        low = (semantic_vocab_size + codebook * codebook_size).unsqueeze(1)
        columns = torch.arange(vocab_size, device=device).unsqueeze(0)
        return logits.masked_fill((columns < low) | (columns >= low + codebook_size), float("-inf"))

    return constrain


class BarkPair:
    """A Bark target, optionally a Bark draft sharing its vocabularies, its tokenizer and speaker prompts."""

    def __init__(self, target, tokenizer, voices: dict[str, dict[str, Path]], draft=None):
        self.target, self.draft, self.tokenizer, self.voices = target, draft, tokenizer, voices
        self.semantic_config, self.coarse_config, self.fine_config, self.codebook_size = _configs(target)
        self.sample_rate = target.generation_config.sample_rate if hasattr(target.generation_config, "sample_rate") \
            else target.codec_model.config.sampling_rate
        self.semantic = [BarkCausalDecoder(target.semantic)]
        self.coarse = [BarkCausalDecoder(target.coarse_acoustics)]
        if draft is not None:
            for stage, name in (("semantic", "semantic"), ("coarse_acoustics", "coarse")):
                ours, theirs = getattr(target, stage).config, getattr(draft, stage).config
                if (ours.input_vocab_size, ours.output_vocab_size) != (theirs.input_vocab_size, theirs.output_vocab_size):
                    raise SpecvoiceError(f"draft and target {name} vocabularies differ ({theirs.output_vocab_size} vs "
                                         f"{ours.output_vocab_size}): the draft must be a Bark model of the same family")
            self.semantic.append(BarkCausalDecoder(draft.semantic))
            self.coarse.append(BarkCausalDecoder(draft.coarse_acoustics))
        # Bark's frame rates: 75 coarse frames of 2 codes per 49.9 semantic tokens.
        self.semantic_to_coarse = (self.coarse_config.coarse_rate_hz / self.semantic_config.semantic_rate_hz
                                   * self.coarse_config.n_coarse_codebooks)

    @property
    def max_text_tokens(self) -> int:
        return self.semantic_config.max_input_semantic_length

    def text_tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def voice(self, name: str | None) -> dict[str, torch.Tensor] | None:
        """A speaker prompt: a preset name of the model (e.g. v2/en_speaker_6) or a Bark .npz file."""
        if name is None:
            return None
        if name in self.voices:
            arrays = {key: np.load(self.voices[name][key]) for key in VOICE_KEYS}
        elif name.endswith(".npz") and Path(name).is_file():
            with np.load(name) as npz:
                if not set(VOICE_KEYS) <= set(npz.files):
                    raise SpecvoiceError(f"{name}: a Bark voice needs {', '.join(VOICE_KEYS)}")
                arrays = {key: npz[key] for key in VOICE_KEYS}
        else:
            known = ", ".join(sorted(self.voices)[:6]) + (", ..." if len(self.voices) > 6 else "")
            raise SpecvoiceError(f"unknown voice {name!r}: use a Bark .npz file"
                                 + (f" or a preset of this model ({known})" if self.voices else ""))
        device = self.target.device
        return {key: torch.from_numpy(np.asarray(value, dtype=np.int64)).to(device) for key, value in arrays.items()}

    def semantic_tokens(self, text_ids: list[int], voice, sampler: Sampler) -> list[int]:
        config, length = self.semantic_config, self.max_text_tokens
        if len(text_ids) > length:
            raise SpecvoiceError(f"a sentence of {len(text_ids)} text tokens is longer than Bark's {length}")
        prompt = ([t + config.text_encoding_offset for t in text_ids] + [config.text_pad_token] * (length - len(text_ids))
                  + [config.semantic_infer_token])
        history = voice["semantic_prompt"][-length:].tolist() if voice is not None else []
        history += [config.semantic_pad_token] * (length - len(history))
        for decoder in self.semantic:
            decoder.condition(history)
        constraint = semantic_constraint(config, self.semantic[0].vocab_size)
        tokens = sampler(*self._pair(self.semantic), prompt, config.max_new_tokens, config.semantic_pad_token,
                         constraint)
        return tokens[:-1] if tokens and tokens[-1] == config.semantic_pad_token else tokens

    def coarse_tokens(self, semantic: list[int], voice, sampler: Sampler) -> list[int]:
        """Interleaved coarse codes (with Bark's vocabulary offsets), window by window as transformers."""
        config, ratio = self.coarse_config, self.semantic_to_coarse
        max_semantic_history = int(np.floor(config.max_coarse_history / ratio))
        wanted = int(round(math.floor(len(semantic) * ratio / config.n_coarse_codebooks) * config.n_coarse_codebooks))
        semantic_history, coarse = self.target.coarse_acoustics.preprocess_histories(
            max_coarse_history=config.max_coarse_history, semantic_to_coarse_ratio=ratio, batch_size=1,
            semantic_generation_config=self.semantic_config, codebook_size=self.codebook_size, history_prompt=voice)
        semantic = semantic_history[0].tolist() + semantic
        coarse, history_length = coarse[0].tolist(), coarse.shape[1]
        constraint = coarse_constraint(self.semantic_config.semantic_vocab_size, self.codebook_size,
                                       self.coarse[0].vocab_size)
        for decoder in self.coarse:
            decoder.condition([])
        generated = 0
        while generated < wanted:
            at = semantic_history.shape[1] + int(round(generated / ratio))
            window = semantic[max(0, at - max_semantic_history):][: config.max_coarse_input_length]
            window += [config.coarse_semantic_pad_token] * (config.max_coarse_input_length - len(window))
            prompt = window + [config.coarse_infer_token] + coarse[-config.max_coarse_history:]
            count = min(config.sliding_window_len, wanted - generated)
            coarse += sampler(*self._pair(self.coarse), prompt, count, None, constraint)
            generated = len(coarse) - history_length
        return coarse[history_length:]

    def _pair(self, decoders: list[BarkCausalDecoder]) -> tuple[BarkCausalDecoder, BarkCausalDecoder | None]:
        return decoders[0], (decoders[1] if len(decoders) > 1 else None)

    @torch.inference_mode()
    def audio(self, coarse: list[int], voice, seed: int) -> np.ndarray:
        """Fine codes (transformers' BarkFineModel.generate, seeded) and EnCodec's waveform, float32."""
        if not coarse:
            return np.zeros(0, dtype=np.float32)
        torch.manual_seed(seed)  # the fine stage samples with torch's global generator
        codes = torch.tensor([coarse], device=self.target.device)
        fine = self.target.fine_acoustics.generate(
            codes, semantic_generation_config=self.semantic_config, coarse_generation_config=self.coarse_config,
            fine_generation_config=self.fine_config, codebook_size=self.codebook_size, history_prompt=voice)
        return self.target.codec_decode(fine)[0].float().cpu().numpy().reshape(-1)

    def codes_per_second(self) -> float:
        return self.coarse_config.coarse_rate_hz * self.coarse_config.n_coarse_codebooks


def voice_presets(folder: Path) -> dict[str, dict[str, Path]]:
    """The speaker prompts a Bark folder lists in speaker_embeddings_path.json (paths inside the folder)."""
    listing = folder / "speaker_embeddings_path.json"
    if not listing.is_file():
        return {}
    presets = {}
    for name, paths in json.loads(listing.read_text()).items():
        if isinstance(paths, dict) and all(key in paths for key in VOICE_KEYS):
            # Paths come from a downloaded file: only relative ones that stay inside the folder (checked
            # lexically; the hub's cache links them to blobs elsewhere).
            relative = [Path(paths[key]) for key in VOICE_KEYS]
            if all(not p.is_absolute() and ".." not in p.parts and (folder / p).is_file() for p in relative):
                presets[name] = dict(zip(VOICE_KEYS, (folder / p for p in relative)))
    return presets


def load_bark(folder: Path, device: str, dtype: torch.dtype):
    """A BarkModel from a local folder, in eval mode where asked."""
    from transformers import BarkModel

    return BarkModel.from_pretrained(folder, dtype=dtype).to(device).eval()
