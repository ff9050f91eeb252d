"""What the speculative engine needs from a model: a decoder over a static KV cache indexed by slot.

Tokens are written to explicit cache slots and attend to the slots a boolean mask allows, so a chain, a
token tree and a rollback are all the same call (gpt-fast's trick: rolling back is just not looking at
stale slots). Position ids are separate from slots so tree nodes can share a depth.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch

# Logit rules: (logits [n, vocab], tokens sampled before each row) -> logits with forbidden tokens at -inf.
LogitRules = Callable[[torch.Tensor, list[list[int]]], torch.Tensor]


class CachedDecoder(Protocol):
    max_slots: int
    vocab_size: int
    device: torch.device

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                visible: torch.Tensor) -> torch.Tensor:
        """Logits [n, vocab] (float32) for n tokens; writes their keys/values to `slots`.

        `visible[i, j]` says whether token i attends to cache slot j, for j < visible.shape[1].
        """

    def move_slots(self, source: torch.Tensor, destination: torch.Tensor) -> None:
        """Copy cached keys/values from `source` slots to `destination` slots (accepted tree paths)."""


def chain_visibility(start: int, count: int, device: torch.device) -> torch.Tensor:
    """Mask for `count` consecutive tokens at slots start.. that see everything before them (causal)."""
    rows = torch.arange(count, device=device).unsqueeze(1) + start
    return torch.arange(start + count, device=device).unsqueeze(0) <= rows


def forward_chain(decoder: CachedDecoder, tokens: list[int] | torch.Tensor, start: int) -> torch.Tensor:
    """Logits for a chain of tokens written to slots start.., each seeing every slot before it.

    Tokens may be a device tensor, so a sampler can feed what it just drew without a host sync.
    """
    tokens = torch.as_tensor(tokens, dtype=torch.long, device=decoder.device)
    slots = torch.arange(start, start + len(tokens), device=decoder.device)
    return decoder.forward(tokens, slots, slots, chain_visibility(start, len(tokens), decoder.device))


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class Session:
    """The tokens whose keys/values sit in a decoder's slots [0, len(tokens)), in order."""

    def __init__(self, decoder: CachedDecoder):
        self.decoder = decoder
        self.tokens: list[int] = []

    def feed(self, tokens: list[int]) -> torch.Tensor:
        """Append a chain of tokens; logits [n, vocab] predict each token's successor."""
        logits = forward_chain(self.decoder, tokens, len(self.tokens))
        self.tokens.extend(tokens)
        return logits

    def rewind_to(self, sequence: list[int]) -> int:
        """Forget cached tokens that `sequence` does not start with; returns how many stay valid.

        The last token of `sequence` is never counted as cached, so feeding from the returned index
        always yields the logits that follow the whole sequence.
        """
        keep = min(common_prefix(self.tokens, sequence), len(sequence) - 1)
        del self.tokens[keep:]
        return keep
