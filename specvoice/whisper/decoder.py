"""Whisper's text decoder with a preallocated static self-attention cache and per-window cross K/V.

Runs the weights of a transformers `WhisperForConditionalGeneration` with our own forward: no
`generate()`, no dynamic cache objects, nothing reallocated per token. The projections that read the same
input are fused (q|k|v, and every layer's cross k|v), in float or, on the CPU, in batch-invariant int8
(engine/linear.py), so a verified tree gets exactly the logits single-token passes would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..engine import ops
from ..engine.alike import attend_alike, transposed_keys
from ..engine.cache import StaticKVCache
from ..engine.decoder import Session, chain_visibility
from ..engine.linear import Quantiser, fused
from .encoder import LayerSteps, Step, WhisperEncoder, layer_norm, layer_steps, split_heads
from .model import WhisperModel


@dataclass
class _Layer(LayerSteps):
    """A decoder layer: the steps an encoder layer has, and its cross-attention's."""

    cross_norm: Step
    cross_q: Step  # pre-scaled
    cross_kv: Step | None  # k | v of the encoder output, once per window (None: read from another decoder)
    cross_out: Step


def _layer(layer: torch.nn.Module, scaling: float, int8: bool | Quantiser, draft: bool = False,
           cross_keys: bool = True) -> _Layer:
    """draft: as encoder.layer_steps takes it; the cross keys/values, once per window, stay row by row.
    cross_keys=False: a layer that reads another decoder's cross keys/values (a shallow draft) has no cross_kv."""
    cross = layer.encoder_attn
    return _Layer(
        **vars(layer_steps(layer, scaling, int8, draft)),
        cross_norm=layer_norm(layer.encoder_attn_layer_norm),
        cross_q=fused(cross.q_proj, int8=int8, scale=scaling, draft=draft).forward,
        cross_kv=fused(cross.k_proj, cross.v_proj, int8=int8).forward if cross_keys else None,
        cross_out=fused(cross.out_proj, int8=int8, draft=draft).forward,
    )


def _slots_seen(visible: torch.Tensor) -> list[slice | torch.Tensor]:
    """Each query row's visible slots, in slot order: a slice for a chain row, an index for a side branch."""
    rows = []
    for seen in visible.cpu().numpy():
        slots = seen.nonzero()[0]
        chain = len(slots) == 0 or slots[-1] == len(slots) - 1
        rows.append(slice(0, len(slots)) if chain else torch.from_numpy(slots).to(visible.device))
    return rows


def _attend_each(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                 slots: list[slice | torch.Tensor]) -> torch.Tensor:
    """Self-attention of each query row over exactly its own cached slots, one call per row.

    A row then gets bit for bit what a single-token pass gives the same token: same shapes, same order of
    summation (a batched call changes both with the masked-out slots, whose number differs row by row). The
    slots are few, so a row costs little; cross-attention, over every frame alike, batches (engine/alike.py).
    """
    # Each step for every row before the next step: a layer's keys are then read by every row while still in cache.
    scores = [q[:, i: i + 1] @ keys[:, seen].transpose(1, 2) for i, seen in enumerate(slots)]
    weights = [torch.softmax(row, dim=-1) for row in scores]
    rows = [row @ values[:, seen] for row, seen in zip(weights, slots)]
    return rows[0] if len(rows) == 1 else torch.cat(rows, dim=1)


class WhisperDecoder:
    """Implements engine.decoder.CachedDecoder for one Whisper model and one audio window at a time."""

    def __init__(self, whisper: WhisperModel, max_slots: int | None = None, approximate: bool = False):
        """approximate=True (drafts only): int8 weights on the CPU, a lone row's cheaper numerics (engine/linear.py's
        DraftInt8Linear, the tanh GELU) and an encoder that sees only the audio."""
        hf = whisper.model
        config = hf.config
        self.approximate = approximate
        int8 = whisper.int8 or (approximate and hf.device.type == "cpu" and hf.dtype == torch.float32)
        int8 = int8 and whisper.int8_layers()  # where the int8 layers come from (an int8 model's cache)
        hf = hf if int8 else whisper.float_weights()  # float layers need every float weight
        decoder = hf.model.decoder
        self.heads = config.decoder_attention_heads
        self.head_dim = config.d_model // self.heads
        scaling = self.head_dim ** -0.5
        self.layers = [_layer(layer, scaling, int8, draft=approximate) for layer in decoder.layers]
        self.exact = whisper.int8 and not approximate
        self.embed_tokens, self.embed_positions = decoder.embed_tokens, decoder.embed_positions.weight
        self.final_norm = layer_norm(decoder.layer_norm)
        self.output = fused(hf.proj_out, int8=int8, draft=approximate)
        self.encoder = WhisperEncoder(hf.model.encoder, int8)
        if int8:
            int8.finish()
        self.max_slots = max_slots or config.max_target_positions
        self.vocab_size = config.vocab_size
        self.device = hf.device
        self.dtype = hf.dtype
        self.cache = StaticKVCache(len(self.layers), self.heads, self.max_slots, self.head_dim, self.device,
                                   self.dtype)
        self.cross_keys: list[torch.Tensor] = []
        self.cross_values: list[torch.Tensor] = []
        self._cross_queries: dict[int, torch.Tensor] | None = None  # filled per layer while word timing asks

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return split_heads(x, self.heads)

    @torch.inference_mode()
    def encode(self, features: torch.Tensor, frames: int | None = None) -> None:
        """Encode [1, n_mels, 3000] features and compute every layer's cross-attention K/V, once per window.

        An approximate decoder encodes only the first `frames` mel frames (the audio, not the padding),
        as whisper.cpp's audio_ctx does: much cheaper for short clips, slightly different output.
        """
        if self.approximate and frames:
            keep = 2 * ((frames + 101) // 2)  # a second of padding past the audio, even for the stride-2 conv
            features = features[..., : min(features.shape[-1], keep)]
        # The previous window's keys/values go before this one's are made, and each layer's projection is laid
        # out before the next is computed: all layers' projections alive at once held ~50 MB more at the peak.
        self.cross_keys, self.cross_values = [], []
        audio = self.encoder(features.to(self.device, self.dtype))
        # Contiguous per head: a head's keys as a strided view made every decoding step's cross-attention
        # matmuls ~6x slower (BLAS copies or walks the strides on each call). An exact decoder's keys are
        # transposed in memory, the layout whose rows attend_alike batches.
        key_layout = transposed_keys if self.exact else torch.Tensor.contiguous
        for layer in self.layers:
            keys, values = layer.cross_kv(audio).chunk(2, dim=-1)
            self.cross_keys.append(key_layout(self._heads(keys)))
            self.cross_values.append(self._heads(values).contiguous())

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        return self._pass(tokens, positions, slots, visible, per_row=self.exact)

    def prefill(self, tokens: list[int], start: int, rows: Sequence[int]) -> torch.Tensor:
        """A chain every method feeds alike (a prompt) at slots start..; logits of `rows` only.

        Its rows are never compared with a single-token pass, so they attend all at once: a 200-token prompt
        (previous text) cost 166 ms a window row by row, 46 decoding steps of base int8.
        """
        tokens = torch.as_tensor(tokens, dtype=torch.long, device=self.device)
        slots = torch.arange(start, start + len(tokens), device=self.device)
        return self._pass(tokens, slots, slots, chain_visibility(start, len(tokens), self.device), per_row=False,
                          rows=rows)

    @torch.inference_mode()
    def _pass(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, visible: torch.Tensor,
              per_row: bool, rows: Sequence[int] | None = None) -> torch.Tensor:
        """per_row: each row attends on its own, getting the bits a one-row pass gives it (exact decoders);
        rows: the rows whose logits are wanted (default: all)."""
        span = visible.shape[1]
        if per_row:  # each row over exactly its own slots; cross-attention over every frame, rows alike
            own_slots = _slots_seen(visible)
        x = self.embed_tokens(tokens) + self.embed_positions[positions]
        for i, layer in enumerate(self.layers):
            q, k, v = layer.qkv(layer.self_norm(x)).chunk(3, dim=-1)
            self.cache.write(i, slots, self._heads(k), self._heads(v))
            keys, values = self.cache.read(i, span)  # [1, heads, span, d]
            if per_row:
                a = _attend_each(self._heads(q), keys[0], values[0], own_slots)
            else:
                a = ops.active().attention(self._heads(q), keys[0], values[0], visible)
            x = x + layer.self_out(a.transpose(0, 1).reshape(x.shape))

            q = layer.cross_q(layer.cross_norm(x))
            if self._cross_queries is not None:
                self._cross_queries[i] = q
            if per_row:
                a = attend_alike(self._heads(q), self.cross_keys[i], self.cross_values[i])
            else:
                a = ops.active().attention(self._heads(q), self.cross_keys[i], self.cross_values[i], None)
            x = x + layer.cross_out(a.transpose(0, 1).reshape(x.shape))

            x = x + layer.fc2(layer.activation(layer.fc1(layer.ffn_norm(x))))
        if rows is not None:
            x = x[list(rows)]
        return self.output(self.final_norm(x)).float()

    @torch.inference_mode()
    def cross_attention_scores(self, tokens: Sequence[int],
                               heads: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass over a whole sequence (from slot 0): its logits [n, vocab] and, for each
        (layer, head) in `heads`, that head's cross-attention scores before the softmax [len(heads), n, frames].

        For word timestamps, after decoding: every method asks it alike, so its rows attend all at once (a prefill).
        The queries are kept for this pass only; the decoding steps keep none.
        """
        queries: dict[int, torch.Tensor] = {}
        self._cross_queries = queries
        try:
            logits = Session(self).prefill(list(tokens), range(len(tokens)))
        finally:
            self._cross_queries = None
        scores = [self._heads(queries[layer])[head] @ self.cross_keys[layer][head].T for layer, head in heads]
        return logits, torch.stack(scores).float()

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        self.cache.move(source, destination)
