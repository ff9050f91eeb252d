"""Static shapes for CUDA graphs: every forward of a cached decoder at one of a few bucketed sizes.

A CUDA graph replays a captured sequence of kernel launches with no per-launch CPU cost, but only at the
shapes it was captured with. A verify pass scores a tree of any size against a span that grows every pass;
here the rows are padded up to a bucket and the visibility mask widened to every cache slot, so each bucket
is captured once (per encoded audio window) and replayed. Padding rows write their keys/values to the slots
just past the real ones, which hold nothing anyone can see yet (slots past the written ones are stale by
the engine's contract), and each sees only its own slot.

Works with any object shaped like specvoice's CachedDecoder (duck-typed: this package imports no specvoice).
"""

from __future__ import annotations

import torch

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def bucket(rows: int, buckets: tuple[int, ...] = BUCKETS) -> int | None:
    """The smallest bucket holding `rows` rows, or None when none does (such a pass runs as it is)."""
    return next((size for size in buckets if size >= rows), None)


class StaticShapeDecoder:
    """A cached decoder whose forward passes run at bucketed sizes; on CUDA each size is a replayed graph.

    capture=False runs the padded forward eagerly: the same shapes and results without a GPU (tests).
    """

    def __init__(self, decoder, capture: bool, buckets: tuple[int, ...] = BUCKETS):
        self.decoder = decoder
        self.max_slots, self.vocab_size, self.device = decoder.max_slots, decoder.vocab_size, decoder.device
        self.capture = capture
        self.buckets = buckets
        self.padded_passes = 0  # passes run at a bucketed shape (the rest ran as they were)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, ...], torch.Tensor]] = {}

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        self.decoder.move_slots(source, destination)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        rows, span = visible.shape
        size = bucket(rows, self.buckets)
        # Every row sees its own slot, so the written slots lie below the span: the padding goes from there.
        if size is None or span + size - rows > self.max_slots:  # no room for the padding rows
            return self.decoder.forward(tokens, positions, slots, visible)
        inputs = pad(tokens, positions, slots, visible, size, self.max_slots)
        self.padded_passes += 1
        if not self.capture:
            return self.decoder.forward(*inputs)[:rows]
        graph, static_inputs, static_logits = self._graphs.get(size) or self._record(size, inputs)
        for buffer, value in zip(static_inputs, inputs):
            buffer.copy_(value)
        graph.replay()
        return static_logits[:rows].clone()  # the buffer is overwritten by the next replay

    def _record(self, size: int, inputs: tuple[torch.Tensor, ...]):
        """Capture the decoder's forward at `size` rows, after a warm-up on a side stream (Triton compiles,
        allocators settle); the warm-up writes the same padded inputs the first replay writes again."""
        static_inputs = tuple(x.clone() for x in inputs)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self.decoder.forward(*static_inputs)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_logits = self.decoder.forward(*static_inputs)
        self._graphs[size] = graph, static_inputs, static_logits
        return self._graphs[size]


def pad(tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, visible: torch.Tensor, size: int,
        max_slots: int) -> tuple[torch.Tensor, ...]:
    """Forward inputs padded to `size` rows and a mask over all `max_slots` slots.

    Padding rows repeat the last real token and position (any valid ids do), take the slots from the span
    on, and see only their own slot, so no real row sees them and none of them sees nothing.
    """
    rows, span = visible.shape
    extra = size - rows
    spare = torch.arange(span, span + extra, device=slots.device, dtype=slots.dtype)
    filler = tokens[-1:] if rows else tokens.new_zeros(1)
    where = positions[-1:] if rows else positions.new_zeros(1)
    wide = torch.zeros(size, max_slots, dtype=torch.bool, device=visible.device)
    wide[:rows, :span] = visible
    wide[torch.arange(rows, size, device=visible.device), spare] = True
    return (torch.cat([tokens, filler.expand(extra)]), torch.cat([positions, where.expand(extra)]),
            torch.cat([slots, spare]), wide)
