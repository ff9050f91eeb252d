"""What the speculative engine needs from a model: a decoder over a static KV cache indexed by slot.

Tokens are written to explicit cache slots and attend to the slots a boolean mask allows, so a chain, a
token tree and a rollback are all the same call (gpt-fast's trick: rolling back is just not looking at
stale slots). Position ids are separate from slots so tree nodes can share a depth.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import torch

from .tree import TokenTree

# Logit rules: (logits [n, vocab], tokens sampled before each row) -> logits with forbidden tokens at -inf.
LogitRules = Callable[[torch.Tensor, list[list[int]]], torch.Tensor]


class CachedDecoder(Protocol):
    max_slots: int
    vocab_size: int
    device: torch.device
    # (optional) columns: list[int], the token ids of the logits' columns where they cover only some tokens (a
    # draft's own vocabulary); without it column i is token i

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
    """The tokens whose keys/values sit in a decoder's slots [0, len(session)), in order.

    The one owner of that record: callers feed, verify and accept through it, or say what a raw forward
    wrote (`commit`) and what to forget (`truncate`, `rewind_to`); nobody edits it from outside.
    """

    def __init__(self, decoder: CachedDecoder):
        self.decoder = decoder
        self._tokens: list[int] = []

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(self._tokens)

    def feed(self, tokens: list[int]) -> torch.Tensor:
        """Append a chain of tokens; logits [n, vocab] predict each token's successor."""
        logits = forward_chain(self.decoder, tokens, len(self._tokens))
        self._tokens.extend(tokens)
        return logits

    def prefill(self, tokens: list[int], rows: Sequence[int] = ()) -> torch.Tensor:
        """Append a chain that every method feeds alike (a prompt): its rows are never compared with those of
        other passes, so a decoder that can feed them all at once (a `prefill` of its own) does, instead of
        row by row as verified rows must be. Logits [len(rows), vocab] of the chain's `rows`."""
        start = len(self._tokens)
        at_once = getattr(self.decoder, "prefill", None)
        if not tokens:
            logits = torch.empty(0, self.decoder.vocab_size, device=self.decoder.device)
        elif at_once is not None:
            logits = at_once(tokens, start, rows)
        else:
            logits = forward_chain(self.decoder, tokens, start)[list(rows)]
        self._tokens.extend(tokens)
        return logits

    def commit(self, tokens: list[int]) -> None:
        """Record tokens a raw forward has just written to the next slots, in order."""
        self._tokens.extend(tokens)

    def truncate(self, length: int) -> None:
        """Forget every cached token past the first `length` (their slots become free to overwrite)."""
        del self._tokens[length:]

    def rewind_to(self, sequence: list[int]) -> int:
        """Forget cached tokens that `sequence` does not start with; returns how many stay valid.

        The last token of `sequence` is never counted as cached, so feeding from the returned index
        always yields the logits that follow the whole sequence.
        """
        keep = min(common_prefix(self._tokens, sequence), len(sequence) - 1)
        self.truncate(keep)
        return keep

    def verify(self, tree: TokenTree) -> torch.Tensor:
        """Score a token tree hung after the cached tokens in one pass: logits [n, vocab], one row per node.

        The tree's keys/values go to the slots after the cached ones; nothing is committed until `accept`.
        """
        start, device = len(self._tokens), self.decoder.device
        return self.decoder.forward(
            torch.tensor(tree.tokens, device=device),
            torch.tensor(tree.depths, device=device) + start,
            torch.arange(start, start + len(tree), device=device),
            tree.visibility(start, device),
        )

    def accept(self, tree: TokenTree, nodes: list[int]) -> None:
        """Keep the verified tree's stem and its accepted nodes (a root path): a winning side branch's
        keys/values are moved into chain order, so the cache again holds a plain sequence."""
        start, device = len(self._tokens), self.decoder.device
        first = start + tree.root + 1
        if nodes != list(range(tree.root + 1, tree.root + 1 + len(nodes))):
            self.decoder.move_slots(torch.tensor(nodes, device=device) + start,
                                    torch.arange(first, first + len(nodes), device=device))
        self._tokens += tree.tokens[: tree.root + 1] + [tree.tokens[node] for node in nodes]
