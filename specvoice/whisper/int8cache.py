"""Whisper's int8 layers kept on disk: a run after a model's first neither quantises nor reads the float weights
of a linear layer.

Building base's int8 layers from its weights cost a command ~0.55 s (quantising 0.23 s, prepacking 0.31 s) and
every linear weight in float32. The first int8 run of a model folder writes what it quantised, each fused
group's int8 weight (padded as RowInt8Linear pads it), per-row scales and bias, to one safetensors file under
cache_dir()/int8; later runs read a group at a time and only prepack it (groups side by side in threads), with
the same int8 values and scales, so the same logits. The file is named by what decides its contents: the
folder, the size and modification time of its model.safetensors, the int8 engine and the activation width its
probe chose (engine/linear.py), PyTorch's version (its rounding) and FORMAT. A file that cannot be read is
written again; where the cache folder takes no file, each run quantises as if there were no cache.

A shallow draft (shallow.py) keeps its int8 layers the same way, in a file named by its draft file and its target's
identity.
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Sequence

import torch
from safetensors import SafetensorError

from ..engine.linear import Int8Rows, PackedRows, Quantiser, int8_choices, joined, quantise_rows
from ..files import cache_dir, fill_atomic
from .weights import read_tensors

FORMAT = 2  # what a file holds and how its groups are named: bump when either changes
_UNREADABLE = (OSError, SafetensorError, KeyError, ValueError)  # a file missing, cut short or damaged


def identity(folder: Path) -> str | None:
    """What a cache file of the weights in `folder` depends on (None: no model.safetensors to name them by)."""
    try:
        weights = (folder / "model.safetensors").resolve().stat()
    except OSError:
        return None
    return json.dumps({"folder": str(folder.resolve()), "size": weights.st_size, "mtime_ns": weights.st_mtime_ns,
                       "int8": int8_choices(), "torch": torch.__version__, "format": FORMAT})


def cache_file(label: str, of: str) -> Path:
    """Where the int8 layers of weights whose identity is `of` are kept (`label`: a readable start of the name)."""
    digest = hashlib.sha256(of.encode()).hexdigest()[:16]
    return cache_dir() / "int8" / f"{label[:64]}-{digest}.safetensors"


class Int8Cache(Quantiser):
    """The int8 weights of one model's fused linear groups: read from its cache file where it has them (packed
    ahead in as many threads as PyTorch has, the largest first), else quantised from float
    weights and written to a new file once the model's layers are built (finish). Where the model left float
    weights unread, they are read from its folder a group at a time, or made whole by `complete` (a draft's)."""

    def __init__(self, model: torch.nn.Module, folder: Path, of: str | None = None, label: str | None = None,
                 complete: Callable[[], None] | None = None):
        """of: what the file depends on (default: the folder's identity); label: the start of the file's name
        (default: the folder's name)."""
        self.folder = folder
        self.dtype = model.dtype
        self.names = {module: name for name, module in model.named_modules()}
        self.identity = of or identity(folder)
        self.path = cache_file(label or folder.resolve().name, self.identity) if self.identity else None
        self.complete = complete
        self.stored = self._stored_groups()
        self.made: dict[str, torch.Tensor] = {}  # what this run quantised, under the file's names
        self.widths: dict[str, int] = {}  # the input width of each group quantised, in the order built
        self.pool = ThreadPoolExecutor(torch.get_num_threads()) if self.stored else None
        self.ahead = {group: self.pool.submit(self._packed, group) for group in self.stored or ()}

    def _stored_groups(self) -> dict[str, int] | None:
        """The groups of a readable cache file of these weights and their input widths, the largest group first;
        None where there is no such file. Packed in that order, the threads finish about together: the output
        projection, packed last in the order the layers are built, kept one thread busy ~25 ms after the other
        (a shallow draft's 20k rows against its two layers, 2 threads, Xeon)."""
        from safetensors import safe_open

        if self.path is None:
            return None
        try:
            with safe_open(str(self.path), "pt") as stored:
                metadata = stored.metadata() or {}
                if metadata.get("identity") != self.identity:
                    return None
                widths = json.loads(metadata["groups"])
                size = {group: math.prod(stored.get_slice(f"{group}.values").get_shape()) for group in widths}
            return {group: widths[group] for group in sorted(widths, key=size.__getitem__, reverse=True)}
        except _UNREADABLE:  # none yet, or cut short or damaged: written again
            return None

    def rows(self, linears: Sequence[torch.nn.Linear],
             scale: float) -> tuple[Int8Rows | PackedRows, torch.Tensor | None]:
        group = "+".join(self.names[linear] for linear in linears) + ("" if scale == 1 else f"*{scale!r}")
        if group in self.ahead:
            try:
                return self.ahead.pop(group).result()
            except _UNREADABLE:  # the file changed since it was opened: quantised as without it
                pass
        weight, bias = joined(self._in_float(linears), scale)
        rows = quantise_rows(weight)
        self.made |= {f"{group}.values": rows.values, f"{group}.scales": rows.scales}
        if bias is not None:
            self.made[f"{group}.bias"] = bias
        self.widths[group] = rows.width
        return rows, bias

    def _packed(self, group: str) -> tuple[PackedRows, torch.Tensor | None]:
        from safetensors import safe_open

        # opened for each group: a mapping kept open would keep every page read so far in the process's memory
        with safe_open(str(self.path), "pt") as stored:
            bias = stored.get_tensor(f"{group}.bias") if f"{group}.bias" in stored.keys() else None
            rows = Int8Rows(stored.get_tensor(f"{group}.values"), stored.get_tensor(f"{group}.scales"),
                            self.stored[group])
            return rows.pack(), bias

    def _in_float(self, linears: Sequence[torch.nn.Linear]) -> list:
        """The linears, each with its float weights read from the folder where the model left them unread."""
        named = [(self.names[linear], linear) for linear in linears]
        unread = [f"{name}.{kind}" for name, linear in named if linear.weight.is_meta
                  for kind in ("weight", "bias") if getattr(linear, kind) is not None]
        if not unread:
            return list(linears)
        if self.complete is not None:
            self.complete()
            return list(linears)
        read = read_tensors(self.folder, unread, self.dtype)
        return [SimpleNamespace(weight=read[f"{name}.weight"], bias=read.get(f"{name}.bias"),
                                out_features=linear.out_features) if linear.weight.is_meta else linear
                for name, linear in named]

    def finish(self) -> None:
        """Write what was quantised, where no cache file had it (a folder that takes no file keeps none)."""
        from safetensors.torch import save_file

        if self.made and self.stored is None and self.path is not None:
            metadata = {"identity": self.identity, "groups": json.dumps(self.widths)}
            try:
                fill_atomic(self.path, lambda temporary: save_file(self.made, str(temporary), metadata=metadata))
            except OSError:
                pass  # a read-only or full cache folder: the next run quantises again
        self.made = {}
        if self.pool is not None:
            self.pool.shutdown()
