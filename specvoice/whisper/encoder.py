"""Whisper's audio encoder with our own layer forward: q|k|v as one projection, the linear layers in float or
in batch-invariant int8 (engine/linear.py), and self-attention in float32, or, in int8 mode on a CPU with
bfloat16 dot products, in bfloat16 (PyTorch's fused kernel where the CPU has AMX tiles, else blocks of queries).
Where the CPU has AMX tiles, an int8 model's encoder runs its linear layers in bfloat16 too (bfloat16_linears).

The encoder runs once per 30 s window and every decoding method reads the same output, so its precision
changes no method's agreement with `ar`; it is about speed at an unchanged WER.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..engine.linear import Quantiser, bfloat16_fused, fused

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


def bfloat16_linears() -> bool:
    """Whether an int8 model's products over many rows (an encoder window's, a window's cross keys/values) run
    in bfloat16 instead of int8: where the CPU has AMX tiles (and takes bfloat16 attention). A window of base took
    99 ms against 131-136 ms (2-core Xeon), and its cross keys came 1.5% from float32's against int8's 9%: on the
    35 dev clips at three shifts, 97 of 105 transcripts equal float32's against 92 (README, "int8 on the CPU")."""
    return native_bfloat16() and amx_tiles()


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """PyTorch's fused attention in the inputs' precision (float32, or the bfloat16 of bfloat16 linears); q is
    pre-scaled. Contiguous heads: SDPA is markedly slower on strided ones."""
    heads, n, d = q.shape
    out = F.scaled_dot_product_attention(q.contiguous()[None], k.contiguous()[None], v.contiguous()[None],
                                         scale=1.0)
    return out[0].transpose(0, 1).reshape(n, heads * d)


def bfloat16_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention with bfloat16 inputs, scores and weights (products accumulate in float32, the softmax runs in
    float32), a block of queries at a time. On a Zen 4 CPU 2.1x PyTorch's float32 SDPA for a 1500-frame
    window (12 against 25 ms a layer of base); WER on the dev clips unchanged (BENCHMARKS.md)."""
    heads, n, d = q.shape
    q, v = q.to(torch.bfloat16), v.to(torch.bfloat16).contiguous()
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


def layer_steps(layer: torch.nn.Module, scaling: float, int8: bool | Quantiser, draft: bool = False,
                bfloat16: bool = False) -> LayerSteps:
    """draft: a draft decoder's layer, which may trade exactness for speed (engine/linear.py's DraftInt8Linear,
    the tanh GELU); bfloat16: an int8 encoder's layer on bfloat16_linears, whose q|k|v and first feed-forward
    products stay in bfloat16 for the attention and the GELU."""
    attention = layer.self_attn

    def linear(*linears: torch.nn.Linear, scale: float = 1.0, output: torch.dtype = torch.float32) -> Step:
        if bfloat16:
            return bfloat16_fused(*linears, weights=int8, scale=scale, output=output).forward
        return fused(*linears, int8=int8, scale=scale, draft=draft).forward

    return LayerSteps(
        layer.self_attn_layer_norm.forward,
        linear(attention.q_proj, attention.k_proj, attention.v_proj, scale=scaling, output=torch.bfloat16),
        linear(attention.out_proj),
        layer.final_layer_norm.forward,
        linear(layer.fc1, output=torch.bfloat16),
        linear(layer.fc2),
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
    """The int8 encoder's attention where its linears stay int8: bfloat16 query blocks where the CPU multiplies
    bfloat16 natively (on a Zen 4 2.1x float32 SDPA), else float32. With AMX tiles the linears run in bfloat16
    (bfloat16_linears) and hand PyTorch's fused kernel bfloat16 q, k and v: its flash kernel there is 2.6x the
    query blocks (6.8 against 17.7 ms a layer of base, 2 threads)."""
    return bfloat16_attention if native_bfloat16() else fused_attention


class WhisperEncoder:
    """[1, n_mels, frames] log-mel features -> [frames / 2, d_model] audio states, for one window."""

    def __init__(self, encoder: torch.nn.Module, int8: bool | Quantiser):
        """encoder: transformers' WhisperEncoder or weights.py's, whose weights this reads (int8 copies them,
        float shares); int8: as engine/linear.py's fused() takes it."""
        config = encoder.config
        self.heads = config.encoder_attention_heads
        self.conv1, self.conv2 = encoder.conv1.forward, encoder.conv2.forward
        self.positions = encoder.embed_positions.weight
        cpu = encoder.conv1.weight.device.type == "cpu"
        bfloat16 = bool(int8) and cpu and bfloat16_linears()
        self.layers = [layer_steps(layer, (config.d_model // self.heads) ** -0.5, int8, bfloat16=bfloat16)
                       for layer in encoder.layers]
        self.final_norm = encoder.layer_norm.forward
        # bfloat16 linears hand the attention bfloat16 q, k and v: the fused kernel takes them as they are
        self.attention: Attention = fused_attention if bfloat16 or not (int8 and cpu) else _cpu_int8_attention()

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
