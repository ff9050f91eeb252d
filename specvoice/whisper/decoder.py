"""Whisper's text decoder with a preallocated static self-attention cache and per-window cross K/V.

Runs the weights of a transformers `WhisperForConditionalGeneration` with our own forward: no
`generate()`, no dynamic cache objects, nothing reallocated per token.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F

from ..engine.cache import StaticKVCache
from .model import WhisperModel


def quantized_int8(module: torch.nn.Module) -> torch.nn.Module:
    """A copy with every Linear in dynamic int8: ~4x less weight traffic per token on a CPU.

    Only ever used for a draft, whose errors cost acceptance, never correctness.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # quantize_dynamic swaps children only, so a bare Linear goes in a container
        holder = torch.nn.Sequential(copy.deepcopy(module))
        return torch.ao.quantization.quantize_dynamic(holder, {torch.nn.Linear}, dtype=torch.qint8)[0]


def _transposed(weight: torch.Tensor):
    weight_t = weight.detach().t().contiguous()
    return lambda x: x @ weight_t


class WhisperDecoder:
    """Implements engine.decoder.CachedDecoder for one Whisper model and one audio window at a time."""

    def __init__(self, whisper: WhisperModel, max_slots: int | None = None, approximate: bool = False):
        """approximate=True (drafts only): int8 weights on CPU and an encoder that sees only the audio."""
        hf = whisper.model
        self.approximate = approximate
        quantize = approximate and hf.device.type == "cpu" and hf.dtype == torch.float32
        self.decoder = quantized_int8(hf.model.decoder) if quantize else hf.model.decoder
        # The vocabulary projection is most of a decoder pass; MKL runs it about twice as fast for one or two
        # rows with the weight stored transposed (vocab last) than through nn.Linear's layout.
        self.output = quantized_int8(hf.proj_out) if quantize else _transposed(hf.proj_out.weight)
        self.encoder = hf.model.encoder
        config = hf.config
        self.layers = list(self.decoder.layers)
        self.heads = config.decoder_attention_heads
        self.head_dim = config.d_model // self.heads
        self.scaling = self.head_dim ** -0.5
        self.max_slots = max_slots or config.max_target_positions
        self.vocab_size = config.vocab_size
        self.device = hf.device
        self.dtype = hf.dtype
        self.cache = StaticKVCache(len(self.layers), self.heads, self.max_slots, self.head_dim, self.device,
                                   self.dtype)
        self.cross_keys: list[torch.Tensor] = []
        self.cross_values: list[torch.Tensor] = []

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(1, -1, self.heads, self.head_dim).transpose(1, 2)

    @torch.inference_mode()
    def encode(self, features: torch.Tensor, frames: int | None = None) -> None:
        """Encode [1, n_mels, 3000] features and compute every layer's cross-attention K/V, once per window.

        An approximate decoder encodes only the first `frames` mel frames (the audio, not the padding),
        as whisper.cpp's audio_ctx does: much cheaper for short clips, slightly different output.
        """
        if self.approximate and frames:
            keep = 2 * ((frames + 101) // 2)  # a second of padding past the audio, even for the stride-2 conv
            features = features[..., : min(features.shape[-1], keep)]
        encoder = self.encoder
        x = F.gelu(encoder.conv1(features.to(self.device, self.dtype)))
        x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
        x = x + encoder.embed_positions.weight[: x.shape[1]]
        for layer in encoder.layers:
            x = layer(x, None)
        audio = encoder.layer_norm(x)
        self.cross_keys = [self._split_heads(layer.encoder_attn.k_proj(audio)) for layer in self.layers]
        self.cross_values = [self._split_heads(layer.encoder_attn.v_proj(audio)) for layer in self.layers]

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        span = visible.shape[1]
        mask = visible.view(1, 1, *visible.shape)
        x = self.decoder.embed_tokens(tokens) + self.decoder.embed_positions.weight[positions]
        x = x.unsqueeze(0)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q = self._split_heads(attn.q_proj(h) * self.scaling)
            self.cache.write(i, slots, self._split_heads(attn.k_proj(h)), self._split_heads(attn.v_proj(h)))
            a = F.scaled_dot_product_attention(q, *self.cache.read(i, span), attn_mask=mask, scale=1.0)
            x = x + attn.out_proj(a.transpose(1, 2).reshape(x.shape))

            cross = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(x)
            q = self._split_heads(cross.q_proj(h) * self.scaling)
            a = F.scaled_dot_product_attention(q, self.cross_keys[i], self.cross_values[i], scale=1.0)
            x = x + cross.out_proj(a.transpose(1, 2).reshape(x.shape))

            h = layer.final_layer_norm(x)
            x = x + layer.fc2(layer.activation_fn(layer.fc1(h)))
        x = self.decoder.layer_norm(x)
        return self.output(x)[0].float()

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        self.cache.move(source, destination)
