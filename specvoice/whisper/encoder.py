"""Whisper's audio encoder with our own layer forward: q|k|v as one projection, the linear layers in float or
in batch-invariant int8 (engine/linear.py), and self-attention in float32, or, in int8 mode on a CPU with
bfloat16 dot products, in bfloat16 (PyTorch's fused kernel where the CPU has AMX tiles, else blocks of queries).

The encoder runs once per 30 s window and every decoding method reads the same output, so its precision
changes no method's agreement with `ar`; it is about speed at an unchanged WER.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..engine.linear import Quantiser, fused

Step = Callable[[torch.Tensor], torch.Tensor]
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # q, k, v [heads, n, d] -> [n, heads * d]

# Queries per bfloat16 block: a block's scores (heads x 150 x 1500 in base) stay in the last-level cache
# between the two products; 100-200 measured alike on a Zen 4 core, 50 and below pay per-call overhead.
QUERY_BLOCK = 150
# Frames per feed-forward block: a window's whole hidden layer (1500 x 2048 in base, twice: fc1's output and its
# GELU) was 24 MB at the command's peak. Rows are independent in every step, so blocks change no bit.
FEED_FORWARD_BLOCK = 500


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), where a bfloat16 matmul runs ~4x
    a float32 one; elsewhere bfloat16 is emulated and slower than float32."""
    return amx_tiles() or _cpu_has("_is_avx512_bf16_supported")


def amx_tiles() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later), which PyTorch's fused CPU attention uses
    for bfloat16."""
    return _cpu_has("_is_amx_tile_supported")


def _cpu_has(probe: str) -> bool:
    return getattr(torch.cpu, probe, lambda: False)()


def float32_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """PyTorch's fused attention in the inputs' precision; q is pre-scaled. Contiguous heads: SDPA is markedly
    slower on strided ones."""
    heads, n, d = q.shape
    out = F.scaled_dot_product_attention(q.contiguous()[None], k.contiguous()[None], v.contiguous()[None],
                                         scale=1.0)
    return out[0].transpose(0, 1).reshape(n, heads * d)


def fused_bfloat16_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same fused attention with bfloat16 inputs (products accumulate in float32). With AMX tiles its flash
    kernel is 2.6x the query blocks below (6.8 against 17.7 ms a layer of base, 2 threads, a Xeon with AMX), and
    a little closer to float32 (3.7e-3 against 5.3e-3 relative distance); without AMX not measured. Each head made
    contiguous as it is narrowed: a bfloat16 copy that kept the heads' strides was copied again (8.4 against 9.8 ms
    a layer)."""
    return float32_attention(*(t.to(torch.bfloat16, memory_format=torch.contiguous_format) for t in (q, k, v))).float()


def bfloat16_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention with bfloat16 inputs, scores and weights (products accumulate in float32, the softmax runs in
    float32), a block of queries at a time. On a Zen 4 CPU 2.1x PyTorch's float32 SDPA for a 1500-frame
    window (12 against 25 ms a layer of base); WER on the dev clips unchanged (BENCHMARKS.md)."""
    heads, n, d = q.shape
    q, v = q.to(torch.bfloat16), v.to(torch.bfloat16, memory_format=torch.contiguous_format)
    keys_t = k.to(torch.bfloat16).transpose(1, 2).contiguous()  # [heads, d, n]: what the first product reads
    out = torch.empty(n, heads, d, dtype=torch.bfloat16, device=q.device)  # rows in the order out_proj reads
    for start in range(0, n, QUERY_BLOCK):
        weights = torch.softmax(torch.bmm(q[:, start: start + QUERY_BLOCK], keys_t), dim=-1)
        torch.bmm(weights, v, out=out[start: start + QUERY_BLOCK].transpose(0, 1))
    return out.view(n, heads * d).float()


@dataclass
class LayerSteps:
    """A Whisper layer's self-attention and feed-forward norms and (fused) projections, as their bound
    `forward`s: nn.Module's call machinery (hooks) costs ~1.5% of a decoding step for nothing here. The
    decoder's layers add their cross-attention (decoder.py)."""

    self_norm: Step
    qkv: Step  # q (pre-scaled) | k | v
    self_out: Step
    ffn_norm: Step
    fc1: Step
    fc2: Step
    activation: Step


def layer_norm(module: torch.nn.LayerNorm) -> Step:
    """A LayerNorm as one call of PyTorch's operator (the same kernel, the same bits): the module's call and
    F.layer_norm's checks cost ~8 us a norm, ~2% of a decoding step (cProfile, 2 threads, Xeon)."""
    return functools.partial(torch.layer_norm, normalized_shape=module.normalized_shape, weight=module.weight,
                             bias=module.bias, eps=module.eps)


def layer_steps(layer: torch.nn.Module, scaling: float, int8: bool | Quantiser, draft: bool = False) -> LayerSteps:
    """draft: a draft decoder's layer, which may trade exactness for speed (engine/linear.py's DraftInt8Linear,
    the tanh GELU)."""
    attention = layer.self_attn
    return LayerSteps(
        layer_norm(layer.self_attn_layer_norm),
        fused(attention.q_proj, attention.k_proj, attention.v_proj, int8=int8, scale=scaling, draft=draft).forward,
        fused(attention.out_proj, int8=int8, draft=draft).forward,
        layer_norm(layer.final_layer_norm),
        fused(layer.fc1, int8=int8, draft=draft).forward,
        fused(layer.fc2, int8=int8, draft=draft).forward,
        _activation(layer.activation_fn, draft),
    )


def _activation(module: torch.nn.Module, draft: bool) -> Step:
    """A draft's exact GELU runs as its tanh approximation: half the time a step (2048 values: 4 against 8 us),
    within 1e-3 of it, which moves no draft's tokens measurably."""
    if draft and isinstance(module, torch.nn.GELU) and module.approximate == "none":
        return functools.partial(F.gelu, approximate="tanh")
    return module.forward


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[n, heads * d] -> [heads, n, d]"""
    return x.view(x.shape[0], heads, -1).transpose(0, 1)


def _cpu_int8_attention() -> Attention:
    """The int8 encoder's attention on this CPU: bfloat16 where it multiplies bfloat16 natively (fused where it
    has AMX tiles, else in query blocks: on a Zen 4 those were 2.1x float32 SDPA), else float32."""
    if not native_bfloat16():
        return float32_attention
    return fused_bfloat16_attention if amx_tiles() else bfloat16_attention


class WhisperEncoder:
    """[1, n_mels, frames] log-mel features -> [frames / 2, d_model] audio states, for one window."""

    def __init__(self, encoder: torch.nn.Module, int8: bool | Quantiser):
        """encoder: transformers' WhisperEncoder or weights.py's, whose weights this reads (int8 copies them,
        float shares); int8: as engine/linear.py's fused() takes it."""
        config = encoder.config
        self.heads = config.encoder_attention_heads
        self.conv1, self.conv2 = encoder.conv1.forward, encoder.conv2.forward
        self.positions = encoder.embed_positions.weight
        self.layers = [layer_steps(layer, (config.d_model // self.heads) ** -0.5, int8) for layer in encoder.layers]
        self.final_norm = layer_norm(encoder.layer_norm)
        cpu = encoder.conv1.weight.device.type == "cpu"
        self.attention: Attention = _cpu_int8_attention() if int8 and cpu else float32_attention

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv1(features))
        x = F.gelu(self.conv2(x))[0].T.contiguous()  # else the residual stream keeps a transposed layout: every add strided
        x = x + self.positions[: x.shape[0]]
        for layer in self.layers:
            q, k, v = layer.qkv(layer.self_norm(x)).chunk(3, dim=-1)
            q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
            x = x + layer.self_out(self.attention(q, k, v))
            for block in x.split(FEED_FORWARD_BLOCK):  # views of x, a tensor of this call's own
                block += layer.fc2(layer.activation(layer.fc1(layer.ffn_norm(block))))
        return self.final_norm(x)
