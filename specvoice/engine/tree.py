"""A token tree (trie of candidate continuations) verified by the target in one pass.

The tree hangs from a stem: the committed tokens whose keys/values are not cached yet (the whole prompt
on the first pass, then just the last emitted token). The stem's last node is the root; every node below
it is a draft token. A node sees the cached prefix, its ancestors and itself; its position id is the
prefix length plus its depth, so any root path looks to the model exactly like a plain chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TokenTree:
    tokens: list[int]
    parents: list[int]  # parents[0] = -1
    depths: list[int]
    root: int  # the last stem node: predictions are read from here down
    children: list[dict[int, int]] = field(default_factory=list)  # token -> child node

    @classmethod
    def build(cls, stem: list[int], sequences: list[list[int]], max_nodes: int) -> "TokenTree":
        """Merge candidate sequences (each continuing the stem) into a trie of at most max_nodes nodes."""
        count = len(stem)
        tree = cls(list(stem), list(range(-1, count - 1)), list(range(count)), count - 1,
                   [{} for _ in range(count)])
        for sequence in sequences:
            node = tree.root
            for token in sequence:
                child = tree.children[node].get(token)
                if child is None:
                    if len(tree.tokens) >= max_nodes:
                        break
                    child = len(tree.tokens)
                    tree.tokens.append(token)
                    tree.parents.append(node)
                    tree.depths.append(tree.depths[node] + 1)
                    tree.children.append({})
                    tree.children[node][token] = child
                node = child
        return tree

    def __len__(self) -> int:
        return len(self.tokens)

    def path_tokens(self, node: int) -> list[int]:
        """Draft tokens from just below the root down to `node`."""
        path = []
        while node > self.root:
            path.append(self.tokens[node])
            node = self.parents[node]
        return path[::-1]

    def visibility(self, prefix: int, device: torch.device) -> torch.Tensor:
        """[n, prefix + n] mask: every node sees the prefix slots, its ancestors' slots and its own."""
        n = len(self.tokens)
        seen = np.zeros((n, prefix + n), dtype=bool)
        seen[:, :prefix] = True
        for node, parent in enumerate(self.parents):  # parents come before their children
            if parent >= 0:
                seen[node] = seen[parent]
            seen[node, prefix + node] = True
        return torch.from_numpy(seen).to(device)

    def accept(self, predictions: list[int], stop_token: int) -> tuple[list[int], list[int]]:
        """Greedy acceptance: follow the target's prediction from the root while a child carries it.

        `predictions[i]` is the target's token after node root + i. Returns (accepted nodes below the
        root, emitted tokens): the accepted nodes' tokens plus the target's own next token, cut after
        `stop_token`.
        """
        nodes, emitted, node = [], [], self.root
        while True:
            token = predictions[node - self.root]
            emitted.append(token)
            child = self.children[node].get(token)
            if child is None or token == stop_token:
                return nodes, emitted
            nodes.append(child)
            node = child
