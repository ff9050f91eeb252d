"""Bark's causal GPT stages (semantic and coarse) over a preallocated static KV cache.

Runs the weights of a transformers `BarkCausalModel` with our own forward, as lm/decoder.py does for Llama:
no `generate()`, nothing reallocated per token. Bark's semantic stage sums two embeddings at each of its
first 256 positions (the text and the speaker's semantic history); `condition` gives those extra embeddings
once per request, so the engine still sees a plain token prompt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine.cache import StaticKVCache


class BarkCausalDecoder:
    """Implements engine.decoder.CachedDecoder for one Bark semantic or coarse model."""

    def __init__(self, model: torch.nn.Module, max_slots: int | None = None):
        config = model.config
        self.model = model
        self.layers = list(model.layers)
        self.heads = config.num_heads
        self.hidden = config.hidden_size
        self.head_dim = self.hidden // self.heads
        self.max_slots = max_slots or config.block_size
        self.vocab_size = config.output_vocab_size
        self.device = model.device
        self.dtype = model.dtype
        self.cache = StaticKVCache(len(self.layers), self.heads, self.max_slots, self.head_dim, self.device,
                                   self.dtype)
        self._extra = torch.zeros(self.max_slots, self.hidden, device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def condition(self, prefix_tokens: list[int]) -> None:
        """Add the embeddings of `prefix_tokens` to positions 0.. (Bark's speaker history); [] for none."""
        self._extra.zero_()
        if prefix_tokens:
            tokens = torch.tensor(prefix_tokens, device=self.device)
            self._extra[: len(prefix_tokens)] = self.model.input_embeds_layer(tokens)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(1, x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        n, span = visible.shape
        x = (self.model.input_embeds_layer(tokens) + self.model.position_embeds_layer(positions)
             + self._extra[positions]).unsqueeze(0)
        for i, layer in enumerate(self.layers):
            q, k, v = layer.attn.att_proj(layer.layernorm_1(x)).split(self.hidden, dim=2)
            self.cache.write(i, slots, self._split_heads(k), self._split_heads(v))
            a = F.scaled_dot_product_attention(self._split_heads(q), *self.cache.read(i, span),
                                               attn_mask=visible.view(1, 1, n, span))
            x = x + layer.attn.out_proj(a.transpose(1, 2).reshape(1, n, self.hidden))
            x = x + layer.mlp(layer.layernorm_2(x))
        return self.model.lm_head(self.model.layernorm_final(x))[0].float()

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        self.cache.move(source, destination)
