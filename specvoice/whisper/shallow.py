"""A shallow draft for a Whisper target: a few decoder layers of the target's width that read the target's own
encoder output, with an output projection over a small draft vocabulary.

Why it is cheap where a separate small model (tiny.en) is not:
- no encoder of its own: each draft layer was initialised from a target layer and keeps that layer's
  cross-attention key/value projections frozen, so its cross-attention keys and values are the target's own,
  already computed once per window (and the draft reads only the frames that hold audio);
- two layers instead of the target's six, in int8 on the CPU;
- its output projection covers about 20,000 of the 51,865 token ids (FR-Spec's frequency-ranked head: the tokenizer's
  low ids, the BPE's earliest merges, are its most frequent tokens; plus every special and timestamp token),
  not 51,865. The target still verifies over its full vocabulary, so the text is unchanged.

It is trained by `specvoice distill` to predict the target's own greedy tokens (specvoice/distill/); only its
attention (self-attention, cross-attention queries and outputs) and layer norms train, so a draft file holds
those and the vocabulary (6.5 MB for base), and the rest is read from the target.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecvoiceError
from ..engine.cache import StaticKVCache
from ..engine.linear import Quantiser
from .decoder import WhisperDecoder, _layer
from .encoder import layer_norm
from .int8cache import Int8Cache, identity
from .model import WhisperModel

AUDIO_MARGIN = 50  # encoder frames (1 s) past the audio the draft still attends to
OUTSIDE_VOCABULARY = -1e4  # a logit for tokens the draft cannot say: probability 0 after the softmax
SHIPPED = Path(__file__).parent / "drafts"
SHALLOW = "shallow"  # --draft shallow: the draft file that ships for the target
# The target's own weights, never trained: the cross key/value projections (the target's cross keys/values are
# reused), the feed-forward layers and the output rows. Trained too, those learnt the one synthetic voice the
# draft is taught with: on real clips it agreed with the target on 70% of tokens, against 79% with them frozen
# (the same pieces; benchmarks/README.md).
KEPT_FROZEN = ("encoder_attn.k_proj", "encoder_attn.v_proj", "fc1", "fc2")  # and the head, made frozen below


def draft_vocabulary(target: WhisperModel, frequent: int, seen: list[int] = ()) -> torch.Tensor:
    """Sorted token ids the draft can say: the `frequent` lowest text ids, the `seen` ones, every special and
    timestamp token."""
    eot, size = target.tokenizer.eot, target.model.config.vocab_size
    ids = set(range(min(frequent, eot))) | {t for t in seen if t < size} | set(range(eot, size))
    return torch.tensor(sorted(ids), dtype=torch.long)


class ShallowDraft(nn.Module):
    """The draft's own weights (the token and position tables and the cross keys/values are the target's)."""

    def __init__(self, target: WhisperModel, shares: tuple[int, ...], vocabulary: torch.Tensor, lean: bool = False):
        """lean (a draft file loaded to decode): the target's frozen weights (KEPT_FROZEN, the head's rows) stay
        where the target keeps them, unread by an int8 target, until `complete` reads them: a decoder on the CPU
        takes its int8 layers from the draft's int8 cache (int8_layers) and needs none of them."""
        super().__init__()
        self.shares = tuple(shares)
        self._target = target
        self.path: Path | None = None  # the draft file (load)
        # the shared layers' float weights: an int8 target may not have read them
        decoder = (target.model if lean else target.float_weights(*self._shared_layers())).model.decoder
        config = target.model.config
        self.target_name = target.name
        self.name = SHALLOW  # what --draft named it (load_draft sets a file's path)
        self.heads = config.decoder_attention_heads
        self.scaling = (config.d_model // self.heads) ** -0.5
        self.layers = nn.ModuleList(copy.deepcopy(decoder.layers[i]).float() for i in self.shares)
        self.final_norm = copy.deepcopy(decoder.layer_norm).float()
        self.register_buffer("vocabulary", vocabulary.clone())
        # made on the meta device: a random initialisation (40 ms) that the target's rows replace at once
        self.head = nn.Linear(config.d_model, len(vocabulary), bias=False, device="meta")
        self.head.requires_grad_(False)
        if not lean:
            self.head.weight = nn.Parameter(self._head_rows(), requires_grad=False)
        for layer in self.layers:
            for name in KEPT_FROZEN:
                layer.get_submodule(name).requires_grad_(False)
        self._target_tables = decoder.embed_tokens.weight, decoder.embed_positions.weight  # not trained

    def _shared_layers(self) -> list[str]:
        return [f"model.decoder.layers.{i}" for i in self.shares]

    def _head_rows(self) -> torch.Tensor:
        return self._target.model.proj_out.weight.detach()[self.vocabulary].float()

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def complete(self) -> None:
        """Read the target's frozen weights that a lean draft left unread (no-op when none are)."""
        if not any(parameter.is_meta for parameter in self.parameters()):
            return
        decoder = self._target.float_weights(*self._shared_layers()).model.decoder
        for layer, shared in zip(self.layers, self.shares):
            for name in KEPT_FROZEN:
                ours, theirs = layer.get_submodule(name), decoder.layers[shared].get_submodule(name)
                for kind in ("weight", "bias"):
                    if getattr(theirs, kind) is not None:  # the target's own tensor: frozen, never written
                        setattr(ours, kind, nn.Parameter(getattr(theirs, kind).detach().float(), requires_grad=False))
        self.head.weight = nn.Parameter(self._head_rows(), requires_grad=False)

    def int8_layers(self) -> Quantiser:
        """Where a CPU decoder's int8 layers of this draft come from: the draft's int8 cache (a file named by the
        draft file and the target's weights), else quantised from the whole float weights."""
        target_identity = identity(self._target.folder) if self._target.folder is not None else None
        if self.path is None or target_identity is None:
            self.complete()
            return Quantiser()
        stat = self.path.resolve().stat()
        of = json.dumps({"target": target_identity, "draft": str(self.path.resolve()), "size": stat.st_size,
                         "mtime_ns": stat.st_mtime_ns, "shares": self.shares})
        return Int8Cache(self, self._target.folder, of, f"{self.target_name}-{self.path.stem}-draft", self.complete)

    @functools.cached_property
    def embed_tokens(self) -> torch.Tensor:
        """The target's token table in float32, made on training's first use (106 MB for base: a draft that only
        decodes reads the target's own table)."""
        return self._target_tables[0].detach().float()

    @functools.cached_property
    def embed_positions(self) -> torch.Tensor:
        return self._target_tables[1].detach().float()

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What a draft file holds: the vocabulary and everything trained (not the target's frozen weights)."""
        frozen = {name for name, parameter in self.named_parameters() if not parameter.requires_grad}
        return {name: value for name, value in self.state_dict().items() if name not in frozen}

    def logits(self, tokens: torch.Tensor, cross: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Teacher-forced logits [n, draft vocabulary] of a chain from position 0 (for training); `cross`: each
        layer's cross-attention keys and values [heads, frames, head_dim], as the target computed them."""
        self.complete()
        x = self.embed_tokens[tokens] + self.embed_positions[: len(tokens)]
        for layer, (keys, values) in zip(self.layers, cross):
            attention = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q, k, v = (self._split(p(h)) for p in (attention.q_proj, attention.k_proj, attention.v_proj))
            x = x + attention.out_proj(self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True)))
            q = self._split(layer.encoder_attn.q_proj(layer.encoder_attn_layer_norm(x)))
            x = x + layer.encoder_attn.out_proj(self._merge(F.scaled_dot_product_attention(q, keys, values)))
            x = x + layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(x))))
        return self.head(self.final_norm(x))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], self.heads, -1).transpose(0, 1)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(x.shape[1], -1)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        state = {name: value.contiguous().to(torch.float16) if value.is_floating_point() else value.contiguous()
                 for name, value in self.trained_state().items()}
        save_file(state, str(path), metadata={"target": self.target_name, "shares": json.dumps(self.shares)})

    @classmethod
    def load(cls, path: Path, target: WhisperModel) -> "ShallowDraft":
        """A draft file for `target`; one line of error where it is not one, or was trained for another model."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
                state = {name: f.get_tensor(name) for name in f.keys()}
            shares = tuple(json.loads(metadata["shares"]))
        except Exception as exc:  # safetensors raises several types for a file that is not one of its own
            raise SpecvoiceError(f"{path}: not a specvoice draft file ({(str(exc).splitlines() or [''])[0]})") \
                from None
        if metadata.get("target") != target.name:
            raise SpecvoiceError(f"{path}: a draft for {metadata.get('target')!r}, not for the target {target.name!r}")
        vocabulary, eot, size = state["vocabulary"].tolist(), target.tokenizer.eot, target.model.config.vocab_size
        if vocabulary != sorted(set(vocabulary)) or vocabulary[-(size - eot):] != list(range(eot, size)):
            raise SpecvoiceError(f"{path}: not a specvoice draft file (its vocabulary must be sorted token ids "
                                 "ending with every special and timestamp token)")
        draft = cls(target, shares, state["vocabulary"], lean=True)
        missing = draft.load_state_dict({name: value.float() if value.is_floating_point() else value
                                         for name, value in state.items()}, strict=False, assign=True).missing_keys
        frozen = {name for name, parameter in draft.named_parameters() if not parameter.requires_grad}
        if set(missing) - frozen:
            raise SpecvoiceError(f"{path}: not a specvoice draft file (no {sorted(set(missing) - frozen)[0]})")
        draft.path = path
        return draft.eval()


def shipped_draft(target_name: str) -> Path | None:
    """The draft file that ships for a built-in target, if one does."""
    path = SHIPPED / f"{target_name}.safetensors"
    return path if path.exists() else None


class _SubsetHead:
    """The draft's output projection over its vocabulary, spread into full-vocabulary rows (unless `spread` is
    off: OwnVocabulary)."""

    def __init__(self, head: nn.Linear, vocabulary: torch.Tensor, size: int, int8: bool | Quantiser):
        from ..engine.linear import fused

        self.project = fused(head, int8=int8, draft=True).forward
        self.vocabulary, self.size = vocabulary, size
        self.spread = True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spread:
            return self.project(x)
        # index_copy_, not rows[:, vocabulary] = ...: the same rows, 25 us a draft step instead of 40
        return x.new_full((x.shape[0], self.size), OUTSIDE_VOCABULARY).index_copy_(1, self.vocabulary, self.project(x))


class ShallowDecoder(WhisperDecoder):
    """A CachedDecoder over a shallow draft, reading the cross-attention keys/values `target` computed for the
    window (encode after the target's). Approximate by design: int8 on the CPU, only the audio's frames."""

    def __init__(self, draft: ShallowDraft, target: WhisperDecoder, int8: bool | None = None):
        """int8: the linear layers in int8 (default: on the CPU, for float32 weights)."""
        self.target = target
        self.shares = draft.shares
        self.approximate, self.exact = True, False
        self.device, self.dtype = target.device, target.dtype
        if int8 is None:
            int8 = self.device.type == "cpu" and self.dtype == torch.float32
        quantiser = draft.int8_layers() if int8 else False
        layers, final_norm, head = draft.layers, draft.final_norm, draft.head
        if not int8:
            draft.complete()
            if any(p.device != self.device or p.dtype != self.dtype for p in draft.parameters()):
                # copies: the caller's draft stays where it was
                layers, final_norm, head = (copy.deepcopy(module).to(self.device, self.dtype)
                                            for module in (layers, final_norm, head))
        self.heads, self.head_dim = draft.heads, target.head_dim
        # no cross key/value projections: the target's keys and values are read (encode)
        self.layers = [_layer(layer, draft.scaling, quantiser, draft=True, cross_keys=False) for layer in layers]
        self.embed_tokens, self.embed_positions = target.embed_tokens, target.embed_positions
        self.final_norm = layer_norm(final_norm)
        self.output = _SubsetHead(head, draft.vocabulary.to(self.device), target.vocab_size, quantiser)
        if quantiser:
            quantiser.finish()
        self.max_slots, self.vocab_size = target.max_slots, target.vocab_size
        self.cache = StaticKVCache(len(self.layers), self.heads, self.max_slots, self.head_dim, self.device,
                                   self.dtype)
        self.cross_keys, self.cross_values = [], []
        self._cross_queries = None

    def encode(self, features: torch.Tensor, frames: int | None = None) -> None:
        """Take the target's cross keys/values of the shared layers for the window just encoded, cut to the
        encoder frames of `frames` mel frames of audio (and a margin)."""
        keep = audio_frames(frames, self.target.cross_keys[0].shape[1])
        self.cross_keys = [self.target.cross_keys[i][:, :keep].contiguous() for i in self.shares]
        self.cross_values = [self.target.cross_values[i][:, :keep].contiguous() for i in self.shares]


class OwnVocabulary:
    """A ShallowDecoder whose rows cover only the draft's vocabulary, `columns` (their token ids): what the drafter
    picks from (engine/drafter.py), with the logit rules for those columns. A drafted token then fills no
    51,865-wide row, and the rules and softmax run over ~20,000 columns: picking it 0.26 -> 0.18 ms, the decoder
    2.6% faster on long form and 5% on the short clips (2 threads, Xeon)."""

    def __init__(self, decoder: ShallowDecoder):
        self.decoder = decoder
        self.columns: list[int] = decoder.output.vocabulary.tolist()
        self.max_slots, self.vocab_size, self.device = decoder.max_slots, len(self.columns), decoder.device

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        head = self.decoder.output
        head.spread = False
        try:
            return self.decoder.forward(tokens, positions, slots, visible)
        finally:
            head.spread = True

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        self.decoder.move_slots(source, destination)


def audio_frames(mel_frames: int | None, window: int) -> int:
    """Encoder frames the draft reads: those of the audio and a margin (the whole window when not told)."""
    return window if not mel_frames else min(window, mel_frames // 2 + AUDIO_MARGIN)
