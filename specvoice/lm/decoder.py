"""Decoder-only causal LMs of the Llama/Qwen2 family over a preallocated static KV cache.

Runs the weights of a transformers `LlamaForCausalLM` or `Qwen2ForCausalLM` (RMSNorm, rotary position
embeddings, grouped-query attention, SwiGLU MLP) with our own forward, as whisper/decoder.py does for
Whisper: no `generate()`, no dynamic cache objects, nothing reallocated per token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from ..engine.cache import StaticKVCache


class CausalLMDecoder:
    """Implements engine.decoder.CachedDecoder for one Llama/Qwen2-style causal LM."""

    def __init__(self, model: torch.nn.Module, max_slots: int | None = None):
        config = model.config
        self.body = model.model
        self.lm_head = model.lm_head
        self.layers = list(self.body.layers)
        if any(getattr(layer.self_attn, "sliding_window", None) for layer in self.layers):
            raise ValueError("sliding-window attention is not supported: every slot is attended to")
        attention = self.layers[0].self_attn
        self.head_dim = attention.head_dim
        self.scaling = attention.scaling
        self.kv_heads = config.num_key_value_heads
        self.groups = config.num_attention_heads // self.kv_heads
        self.max_slots = max_slots or config.max_position_embeddings
        self.vocab_size = config.vocab_size
        self.device = model.device
        self.dtype = model.dtype
        self.cache = StaticKVCache(len(self.layers), self.kv_heads, self.max_slots, self.head_dim, self.device,
                                   self.dtype)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(1, x.shape[1], -1, self.head_dim).transpose(1, 2)

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        n, span = visible.shape
        # Grouped-query attention without copying the cache per layer: the query heads that share a kv head
        # are stacked along the query axis ([1, kv_heads, groups * n, head_dim]), so the mask repeats per group.
        mask = visible.repeat(self.groups, 1).view(1, 1, self.groups * n, span)
        x = self.body.embed_tokens(tokens).unsqueeze(0)
        cos, sin = self.body.rotary_emb(x, positions.unsqueeze(0))
        for i, layer in enumerate(self.layers):
            attention = layer.self_attn
            h = layer.input_layernorm(x)
            q, k = apply_rotary_pos_emb(self._split_heads(attention.q_proj(h)),
                                        self._split_heads(attention.k_proj(h)), cos, sin)
            self.cache.write(i, slots, k, self._split_heads(attention.v_proj(h)))
            q = q.reshape(1, self.kv_heads, self.groups * n, self.head_dim)
            a = F.scaled_dot_product_attention(q, *self.cache.read(i, span), attn_mask=mask, scale=self.scaling)
            a = a.view(1, -1, n, self.head_dim).transpose(1, 2).reshape(1, n, -1)
            x = x + attention.o_proj(a)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.lm_head(self.body.norm(x))[0].float()

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        self.cache.move(source, destination)
