"""A loaded Whisper checkpoint and what decoding needs to know about it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import torch

from ..engine.linear import Quantiser
from ..engine.speculative import DecodeTask
from ..errors import SpecvoiceError
from .int8cache import Int8Cache
from .rules import WhisperRules
from .tokenizer import WhisperTokenizer
from .weights import WhisperWeights, read_unread, read_weights


@dataclass(eq=False)
class WhisperModel:
    name: str
    model: torch.nn.Module  # transformers' WhisperForConditionalGeneration, or its modules alone (weights.py)
    tokenizer: WhisperTokenizer
    suppress_tokens: tuple[int, ...]
    begin_suppress_tokens: tuple[int, ...]
    int8: bool = False  # run the linear layers in batch-invariant int8 (CPU, float32 weights)
    # (decoder layer, head) pairs whose cross-attention follows the speech in time: what word timestamps read
    alignment_heads: tuple[tuple[int, int], ...] = ()
    folder: Path | None = None  # where the weights were read from
    _tasks: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_folder(cls, name: str, folder: Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32, int8: bool = False) -> "WhisperModel":
        """Load a transformers-format Whisper folder (config.json, weights, tokenizer).

        int8: the linear layers' float weights are left unread (their int8 layers come from the int8 cache or
        are quantised from the folder a group at a time: whisper/int8cache.py); float_weights reads them."""
        model = read_weights(folder, dtype, linears=not int8) or _transformers_model(folder, dtype)
        if not int8:  # int8 runs on the CPU, where the weights are read; unread ones cannot be moved
            model = model.to(device)
        model = model.eval()
        tokenizer = WhisperTokenizer.from_folder(folder, model.config.vocab_size)
        suppress, begin = _suppression(folder, model.config)
        return cls(name, model, tokenizer, suppress, begin, int8, _alignment_heads(folder), folder)

    def float_weights(self, *modules: str) -> torch.nn.Module:
        """The model, the weights of `modules` (names such as "model.decoder.layers.0"; all of them when none
        are given) in float: for those who need float linear layers of a model loaded for int8."""
        if self.folder is not None and isinstance(self.model, WhisperWeights):
            read_unread(self.model, self.folder, modules)
        return self.model

    def int8_layers(self) -> Quantiser:
        """Where this model's int8 layers come from: its folder's int8 cache, else quantised where built."""
        return Quantiser() if self.folder is None else Int8Cache(self.model, self.folder)

    def transformers_model(self) -> torch.nn.Module:
        """transformers' WhisperForConditionalGeneration of these weights (for its generate(): the bench's peer)."""
        if self.folder is None or hasattr(self.model, "generate"):
            return self.model
        return _transformers_model(self.folder, self.dtype).to(self.device).eval()

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def sample_len(self) -> int:
        """New tokens allowed per 30 s window: half the text context, as openai/whisper (224 for every size)."""
        return self.model.config.max_target_positions // 2

    def timing_heads(self) -> tuple[tuple[int, int], ...]:
        """The heads word timing reads: the recorded alignment heads, else (as openai-whisper) every head of the
        last half of the decoder layers."""
        if self.alignment_heads:
            return self.alignment_heads
        config = self.model.config
        return tuple((layer, head) for layer in range(config.decoder_layers // 2, config.decoder_layers)
                     for head in range(config.decoder_attention_heads))

    def shares_vocabulary(self, other: "WhisperModel") -> bool:
        """Same tokens with the same ids; compares two ~51k-entry vocabularies, so decide it once per pair."""
        return self.model.config.vocab_size == other.model.config.vocab_size and \
            self.tokenizer.backend.get_vocab() == other.tokenizer.backend.get_vocab()

    def decode_task(self, language: str | None, task: str, timestamps: bool,
                    previous: Sequence[int] = ()) -> DecodeTask:
        """Prompt, logit rules and limits for one decoding setup (built once and reused for every window).

        `previous`: tokens of earlier text to condition on (openai/whisper's prompt: <|startofprev|> and at most
        the last sample_len - 1 of them before the start-of-transcript sequence).
        """
        key = (language, task, timestamps)
        if key not in self._tasks:
            rules = WhisperRules(self.tokenizer, self.suppress_tokens, self.begin_suppress_tokens, timestamps)
            self._tasks[key] = DecodeTask(self.tokenizer.prompt(language, task, timestamps), rules,
                                          self.tokenizer.eot, self.sample_len)
        setup = self._tasks[key]
        if not previous:
            return setup
        context = [self.tokenizer.sot_prev, *list(previous)[-(self.sample_len - 1):]]
        return replace(setup, prompt=context + setup.prompt)


def recent(tokens: Sequence[int], count: int) -> list[int]:
    """The last `count` of `tokens`: the earlier text a draft's prompt keeps (none for 0, where tokens[-0:] is all)."""
    return list(tokens)[len(tokens) - min(len(tokens), count):]


def _transformers_model(folder: Path, dtype: torch.dtype) -> torch.nn.Module:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    try:
        return transformers.WhisperForConditionalGeneration.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError) as exc:
        raise SpecvoiceError(f"{folder}: could not load Whisper weights ({(str(exc).splitlines() or [''])[0]})") from None


def _suppression(folder: Path, config) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tokens Whisper never emits, and those it never emits first: specvoice's own record (written when a
    CTranslate2 folder is converted), else generation_config.json, else config.json."""
    own = folder / "specvoice.json"
    if own.exists():
        data = json.loads(own.read_text())
        return tuple(data["suppress_tokens"]), tuple(data["begin_suppress_tokens"])
    generation_path = folder / "generation_config.json"
    generation = json.loads(generation_path.read_text()) if generation_path.exists() else {}
    suppress = generation.get("suppress_tokens") or getattr(config, "suppress_tokens", None) or []
    begin = generation.get("begin_suppress_tokens") or getattr(config, "begin_suppress_tokens", None) or []
    return tuple(suppress), tuple(begin)


def _alignment_heads(folder: Path) -> tuple[tuple[int, int], ...]:
    """The alignment heads the folder records: specvoice's own record of a converted CTranslate2 model, else
    generation_config.json (transformers keeps them there); none when neither has them."""
    for name in ("specvoice.json", "generation_config.json"):
        path = folder / name
        heads = json.loads(path.read_text()).get("alignment_heads") if path.exists() else None
        if heads:
            return tuple((int(layer), int(head)) for layer, head in heads)
    return ()
