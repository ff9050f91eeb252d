"""Linear layers for the adapters: projections of one input fused into one GEMM, in float or in int8.

int8 (CPU) rows never depend on the other rows of the batch.

Speculative decoding verifies many tokens in one pass and must give each the logits a single-token pass
would: a row's result may not depend on its neighbours. PyTorch's dynamic int8 (`quantize_dynamic`) picks
one activation scale for the whole batch, so it does (a row alone vs in a batch of 8 differs by up to 0.35).
Here every row is scaled by its own absolute maximum into [-1, 1] and quantised with one fixed scale and zero
point, so quantisation is elementwise; the GEMM accumulates in exact int32, and the dequantised row is scaled
back by its own maximum. The result is bit-identical whatever else is in the batch, and per-row scales are
more accurate than one scale per batch.

FBGEMM (x86) takes the fixed quantisation as arguments. Other engines (QNNPACK on ARM) only offer the dynamic
GEMM, which picks its range from the batch: two constant columns (+1 and -1, against zero weights) pin that
range to exactly [-1, 1], where it picks the same scale and zero point.

Activations take all 8 bits (as CTranslate2's int8 does) where the GEMM accumulates u8 x s8 products exactly
(x86 with VNNI); without VNNI, FBGEMM adds pairs of products in int16, which 8-bit activations can overflow,
so there they keep 7 bits (PyTorch's `reduce_range`). A probe when the first int8 layer is built finds out
which. On base, 8 bits bring the encoder's output from 14-18% to 8-12% relative distance from float32.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch

_ALIGN = 16  # the padded width stays a multiple of FBGEMM's vector width: every element takes the same path
# The operators' C++ entry points: called ~40 times a decoding step, the Python-side dispatch is worth skipping.
_FIXED_GEMM = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32.default._op
_DYNAMIC_GEMM = torch.ops.quantized.linear_dynamic.default._op


def _fixed_quantisation() -> bool:
    """Whether the int8 engine's GEMM takes the input's quantisation as arguments (FBGEMM does)."""
    return torch.backends.quantized.engine in ("x86", "fbgemm")


@functools.cache
def unit_quantisation(fixed: bool) -> tuple[float, int, bool]:
    """(scale, zero point, reduce_range) of rows in [-1, 1]: what the dynamic GEMM picks for that range, so both
    paths agree; 8-bit unless the probe's products overflow."""
    eight_bit = (2 / 255, 128, False)
    width = 4 * _ALIGN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weight = torch.quantize_per_channel(torch.ones(1, width), torch.tensor([1 / 127], dtype=torch.double),
                                            torch.zeros(1, dtype=torch.long), 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(weight, None)
    ones = torch.ones(1, width)  # each activation 255, each weight 127: a pair of products overflows int16
    got = _FIXED_GEMM(ones, eight_bit[0], eight_bit[1], packed) if fixed else _DYNAMIC_GEMM(ones, packed, False)
    # exact: `width` within the activation's rounding (0.4%); overflowed pairs lose half of it
    return eight_bit if abs(float(got.sum()) - width) < 0.02 * width else (2 / 127, 64, True)


def int8_choices() -> dict:
    """What int8 layers built here depend on besides the weights: the engine (which GEMM, hence the padding)
    and the activations' quantisation its probe chose."""
    fixed = _fixed_quantisation()
    scale, zero_point, _ = unit_quantisation(fixed)
    return {"engine": torch.backends.quantized.engine, "fixed": fixed, "scale": scale, "zero_point": zero_point}


def _padding(width: int, fixed: bool) -> int:
    """Columns past the input: up to a multiple of _ALIGN, and room for the two pinning columns (dynamic GEMM)."""
    return (-width) % _ALIGN if fixed else (-(width + 2)) % _ALIGN + 2


@dataclass
class PackedRows:
    """An int8 weight in FBGEMM's packed form, for inputs `width` wide."""

    packed: torch.ScriptObject
    width: int


@dataclass
class Int8Rows:
    """A weight in int8: `values` [outputs, width + padding] (zeros past `width`), one float64 scale per row."""

    values: torch.Tensor
    scales: torch.Tensor
    width: int

    def pack(self) -> PackedRows:
        """The slow part of building a layer (base's 51865-row output projection: ~0.18 s). PyTorch releases
        the GIL meanwhile: threads can pack side by side."""
        outputs = self.values.shape[0]
        with warnings.catch_warnings():  # FBGEMM's prepack still takes a quantized tensor, however deprecated
            warnings.simplefilter("ignore")
            quantized = torch._make_per_channel_quantized_tensor(self.values, self.scales,
                                                                 torch.zeros(outputs, dtype=torch.long), 0)
        return PackedRows(torch.ops.quantized.linear_prepack(quantized, None), self.width)


def quantise_rows(weight: torch.Tensor) -> Int8Rows:
    """A float weight [outputs, width] in int8, padded for this machine's int8 engine."""
    weight = weight.detach().float()
    outputs, width = weight.shape
    pad = _padding(width, _fixed_quantisation())
    padded = torch.cat([weight, weight.new_zeros(outputs, pad)], dim=1) if pad else weight  # base's 106 MB table
    largest = torch.linalg.vector_norm(padded, float("inf"), dim=1)  # each row's max |w|, without a copy of |w|
    scales = (largest / 127).clamp(min=1e-12).double()
    with warnings.catch_warnings():  # FBGEMM's prepack still takes a quantized tensor, however deprecated
        warnings.simplefilter("ignore")
        quantized = torch.quantize_per_channel(padded, scales, torch.zeros(outputs, dtype=torch.long), 0,
                                               torch.qint8)
    return Int8Rows(quantized.int_repr(), scales, width)


class RowInt8Linear(torch.nn.Module):
    """y = x W^T + b with W in int8 (one scale per output channel) and x in int8 (one scale per row)."""

    def __init__(self, weight: Int8Rows | PackedRows, bias: torch.Tensor | None):
        super().__init__()
        self.fixed = _fixed_quantisation()
        self.unit_scale, self.zero_point, self.reduce_range = unit_quantisation(self.fixed)
        if isinstance(weight, Int8Rows):
            weight = weight.pack()
        self.packed = weight.packed
        self.bias = None if bias is None else bias.detach().float().clone()
        # columns past the input: zeros, or the +1 and -1 that pin a dynamic range
        self.edge = torch.zeros(_padding(weight.width, self.fixed))
        self.padded = len(self.edge) > 0  # asked at every call: a tensor's len() costs ~2.5 us of Python
        if not self.fixed:
            self.edge[:2] = torch.tensor([1.0, -1.0])

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """rows: [n, in_features] -> [n, out_features]"""
        # A row of zeros keeps scale 1: its quantised values are all zero, as they should be.
        scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
        unit = rows / scale
        if self.padded:
            unit = torch.cat([unit, self.edge.expand(rows.shape[0], -1)], dim=1)
        if self.fixed:
            y = _FIXED_GEMM(unit, self.unit_scale, self.zero_point, self.packed)
        else:
            y = _DYNAMIC_GEMM(unit, self.packed, self.reduce_range)
        if self.bias is None:
            return y.mul_(scale)
        # In place (y is this call's own) where autograd is off, as decoding always is: an encoder window's outputs
        # are megabytes. addcmul fuses the multiply and add: separate steps would round otherwise.
        return torch.addcmul(self.bias, y, scale, out=None if torch.is_grad_enabled() else y)


class DraftInt8Linear(RowInt8Linear):
    """RowInt8Linear's weight for a draft, whose rows may depend on one another: a lone row (every chain step
    of a draft) goes through PyTorch's dynamic int8 GEMM, which picks the row's own range and quantises it in C++:
    one call where the row path makes six operators (a shallow draft step in a loop of them: 1.24 -> 1.05 ms, 2
    threads, Xeon). Several rows (a prompt, recycled guesses) keep their own scales, as one range for them all
    would coarsen the small rows."""

    def __init__(self, weight: Int8Rows | PackedRows, bias: torch.Tensor | None):
        super().__init__(weight, bias)
        self.zeros = torch.zeros(len(self.edge))  # past the input: no range to pin for a lone row

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.shape[0] != 1:
            return super().forward(rows)
        if self.padded:
            rows = torch.cat([rows, self.zeros[None]], dim=1)
        y = _DYNAMIC_GEMM(rows, self.packed, self.reduce_range)
        return y if self.bias is None else y.add_(self.bias)


class FusedLinear(torch.nn.Module):
    """Several Linears that read the same input as one GEMM, in the weights' own precision.

    The weight is stored transposed (features last): MKL runs one or two rows about twice as fast that way.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight_t = weight.detach().t().contiguous()
        self.bias = None if bias is None else bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight_t
        return y + self.bias if self.bias is not None else y


class Quantiser:
    """Where fused() gets the int8 weight of a group of Linears: quantised from their float weights here;
    whisper/int8cache.py's subclass reads it from a model's on-disk cache."""

    def rows(self, linears: Sequence[torch.nn.Linear],
             scale: float) -> tuple[Int8Rows | PackedRows, torch.Tensor | None]:
        weight, bias = joined(linears, scale)
        return quantise_rows(weight), bias

    def finish(self) -> None:
        """Called once every layer of a model is built (a cache writes what it quantised)."""


def joined(linears: Sequence[torch.nn.Linear], scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias of Linears that read the same input, outputs side by side, `scale` folded into the
    first one's (exact for a power of two such as Whisper's 1/8)."""
    weights = [l.weight.detach() for l in linears]
    biases = [l.bias.detach() if l.bias is not None else l.weight.new_zeros(l.out_features) for l in linears]
    if scale != 1:
        weights[0], biases[0] = weights[0] * scale, biases[0] * scale
    bias = torch.cat(biases) if any(l.bias is not None for l in linears) else None
    return (torch.cat(weights) if len(weights) > 1 else weights[0]), bias  # one weight: not copied


def fused(*linears: torch.nn.Linear, int8: bool | Quantiser = False, scale: float = 1.0,
          draft: bool = False) -> torch.nn.Module:
    """One layer for Linears that read the same input, their outputs side by side; `scale` multiplies the
    outputs of the first one. int8: False for float, True to quantise here, or the Quantiser to take the int8
    weight from; draft: a lone row may take the cheaper dynamic GEMM (DraftInt8Linear)."""
    if not int8:
        return FusedLinear(*joined(linears, scale))
    kind = DraftInt8Linear if draft else RowInt8Linear
    return kind(*(int8 if isinstance(int8, Quantiser) else Quantiser()).rows(linears, scale))
