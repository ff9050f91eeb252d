"""Counters of one decode: how much the target and draft worked and how much of the drafts it kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class DecodeStats:
    tokens: int = 0  # tokens emitted (end-of-text included)
    target_passes: int = 0
    draft_passes: int = 0
    drafted: int = 0  # draft tokens put before the target (tree nodes below the root)
    accepted: int = 0  # draft tokens the target kept
    kernels: str = "torch"  # which implementation of the hot operations ran (engine/ops.py): torch or triton

    @property
    def mean_accepted_length(self) -> float:
        """Tokens emitted per target pass (accepted drafts plus the target's own token)."""
        return self.tokens / self.target_passes if self.target_passes else 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "mean_accepted_length": round(self.mean_accepted_length, 3),
                "acceptance_rate": round(self.acceptance_rate, 3)}
