"""The engine's hot operations, behind one small interface: PyTorch operators, or the Triton kernels.

TorchOps is the reference (the PyTorch twin of every kernel) and runs everywhere; TritonOps runs the same
operations as the kernels in the top-level kernels/ folder (imported as `specvoice_kernels`), on a GPU or
in Triton's CPU interpreter. One implementation is active per process (`--kernels`); decoders and the
decoding loops ask `active()` for it, so model adapters need no kernel code and kernels need no adapter.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from .decoder import CachedDecoder
from .tree import TokenTree


@dataclass
class GreedyVerdict:
    predictions: list[int]  # the target's token after every node from the root on
    nodes: list[int]  # accepted nodes below the root (a root path)
    emitted: list[int]  # their tokens plus the target's own next token, cut after the stop token
    logprob: float  # the summed log-probability of `emitted` under the ruled logits


def row_argmax(rows: torch.Tensor) -> list[int]:
    """Each row's argmax, the first of equal maxima. A CPU row goes through numpy: PyTorch's CPU argmax took
    68 us for one 51,865-wide row, numpy's 3 us (2-core Xeon, torch 2.13), a cost every decoded token paid."""
    if rows.device.type == "cpu":
        return rows.numpy().argmax(axis=-1).tolist()
    return rows.argmax(dim=-1).tolist()


def draw(weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A token per row of non-negative weights (unnormalised is fine), without a host sync.

    gpt-fast's trick: argmax of w / Exp(1) noise picks i with probability w_i / sum(w), where
    torch.multinomial would check the weights on the host.
    """
    return torch.argmax(weights / _exponential_noise(weights, generator), dim=-1)


def _exponential_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    noise = torch.empty_like(like).exponential_(generator=generator)
    # A noise of exactly 0 would make 0 / 0 = nan, which argmax picks: a zero-weight token must never win.
    return noise.clamp_(min=torch.finfo(noise.dtype).tiny)


def attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
    """Softmax attention of query rows [heads, n, d] (already scaled) over keys/values [heads, s, d];
    visible [n, s] says which slots each row sees (None: all). Plain matmuls: for a handful of queries they
    cost a fraction of the fused CPU attention kernel's setup."""
    scores = q @ keys.transpose(1, 2)
    if visible is not None:
        scores = scores.masked_fill(~visible, float("-inf"))
    return torch.softmax(scores, dim=-1) @ values


class TorchOps:
    """PyTorch operators: the reference every kernel is tested against."""

    name = "torch"

    def static_shapes(self, decoder: CachedDecoder) -> CachedDecoder:
        """The decoder a decoding loop should run: this one, or a wrapper with shapes CUDA graphs can replay."""
        return decoder

    def attention(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                  visible: torch.Tensor | None) -> torch.Tensor:
        return attention(q, keys, values, visible)

    def move_slots(self, keys: torch.Tensor, values: torch.Tensor, source: torch.Tensor,
                   destination: torch.Tensor) -> None:
        """Copy every layer's cached rows [..., source, :] to [..., destination, :] (keys and values)."""
        keys[..., destination, :] = keys[..., source, :]
        values[..., destination, :] = values[..., source, :]

    def greedy_verify(self, ruled: torch.Tensor, tree: TokenTree, stop_token: int) -> GreedyVerdict:
        """Greedy acceptance of a verified tree from its ruled logits (one row per node from the root on)."""
        predictions = row_argmax(ruled)
        nodes, emitted = tree.accept(predictions, stop_token)
        path = [0] + [node - tree.root for node in nodes]  # the rows that predicted each emitted token
        # Root paths run down the rows in order, so a path through every row is all of them: no copy (ar's case).
        rows = ruled if len(path) == len(ruled) else ruled[path]
        chosen = torch.tensor(emitted, device=ruled.device).unsqueeze(1)
        logprob = float(torch.log_softmax(rows, dim=-1).gather(1, chosen).sum())
        return GreedyVerdict(predictions, nodes, emitted, logprob)

    def speculative_verify(self, target_probs: torch.Tensor, draft_probs: torch.Tensor, drafted: torch.Tensor,
                           beta: float, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(number of drafts accepted [1], the target's own next token [1]), both still on the device.

        target_probs has one row per draft plus the bonus row, draft_probs one row per draft; see
        engine/sampling.py for the rule.
        """
        count = len(drafted)
        rows = torch.arange(count, device=drafted.device)
        ratio = target_probs[rows, drafted] / draft_probs[rows, drafted]
        uniform = torch.rand(count, device=drafted.device, generator=generator)
        accepted = (uniform < ratio.clamp(max=1.0) + beta).long().cumprod(dim=0).sum().view(1)
        # A zero draft row after the last draft turns the residual max(0, p - q) into p itself: the bonus token.
        padded = torch.cat([draft_probs, draft_probs.new_zeros(1, draft_probs.shape[1])])
        p, q = target_probs.index_select(0, accepted)[0], padded.index_select(0, accepted)[0]
        residual = (p - q).clamp(min=0.0)
        # Rounding can leave no mass when q is within float error of p; p is then the distribution anyway.
        residual = torch.where(residual.sum() > 0, residual, p)
        return accepted, draw(residual, generator).view(1)


class TritonOps(TorchOps):
    """The Triton kernels (kernels/), fed exactly what the PyTorch twins get."""

    name = "triton"

    def __init__(self):
        import specvoice_kernels.attention
        import specvoice_kernels.cache
        import specvoice_kernels.graphs
        import specvoice_kernels.verify

        self._kernels = specvoice_kernels

    def static_shapes(self, decoder):
        """On CUDA, forwards at bucketed sizes replayed as CUDA graphs (captured per decode, so per window:
        a new window's cross-attention keys are new tensors); elsewhere the decoder as it is."""
        if decoder.device.type != "cuda":
            return decoder
        return self._kernels.graphs.StaticShapeDecoder(decoder, capture=True)

    def attention(self, q, keys, values, visible):
        return self._kernels.attention.attention(q, keys, values, visible)

    def move_slots(self, keys, values, source, destination):
        self._kernels.cache.move_slots(keys, values, source, destination)

    def greedy_verify(self, ruled, tree, stop_token):
        root, device = tree.root, ruled.device
        parents = torch.tensor([-1] + [p - root for p in tree.parents[root + 1:]], device=device)
        tokens = torch.tensor(tree.tokens[root:], device=device)
        found, logprob = self._kernels.verify.greedy_verify(ruled, parents, tokens, stop_token)
        n = len(tree) - root
        values = torch.cat([found.double(), logprob.double()]).tolist()  # the pass's one readback
        count = int(values[0])
        nodes = [root + int(row) for row in values[1: 1 + count]]
        predictions = [int(token) for token in values[1 + n: 1 + 2 * n]]
        last = nodes[-1] - root if nodes else 0
        return GreedyVerdict(predictions, nodes, [tree.tokens[node] for node in nodes] + [predictions[last]],
                             values[-1])

    def speculative_verify(self, target_probs, draft_probs, drafted, beta, generator):
        # The same random draws as the twin, in the same order: uniforms, then the exponential noise.
        uniform = torch.rand(len(drafted), device=drafted.device, generator=generator)
        noise = _exponential_noise(target_probs[0], generator)
        verdict = self._kernels.verify.speculative_verify(target_probs, draft_probs, drafted, uniform, noise,
                                                          beta).long()
        return verdict[:1], verdict[1:]


_active: TorchOps = TorchOps()


def active() -> TorchOps:
    return _active


@contextmanager
def using(ops: TorchOps) -> Iterator[TorchOps]:
    """Run the enclosed code with `ops` active (the command line activates one for the whole process)."""
    global _active
    previous, _active = _active, ops
    try:
        yield ops
    finally:
        _active = previous


def activate(ops: TorchOps) -> None:
    global _active
    _active = ops
