"""The static self-attention cache every CachedDecoder keeps: preallocated, indexed by slot.

Writing a token's keys/values is an indexed store at its slot; rolling back costs nothing (stale slots are
just not made visible); an accepted tree branch is moved into chain order for every layer at once (engine/ops.py).
"""

from __future__ import annotations

import torch

from . import ops


class StaticKVCache:
    def __init__(self, layers: int, heads: int, slots: int, head_dim: int, device: torch.device,
                 dtype: torch.dtype):
        shape = (layers, 1, heads, slots, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)

    def write(self, layer: int, slots: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """keys/values [1, heads, len(slots), head_dim] go to `slots` of `layer`."""
        self.keys[layer, :, :, slots] = keys
        self.values[layer, :, :, slots] = values

    def read(self, layer: int, span: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of slots [0, span) of `layer`."""
        return self.keys[layer, :, :, :span], self.values[layer, :, :, :span]

    def move(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        ops.active().move_slots(self.keys, self.values, source, destination)
