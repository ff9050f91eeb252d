"""Peak memory while one contestant runs, read without a sampling thread that would disturb the timings.

On CUDA: torch's peak allocated bytes. On Linux CPUs: the kernel's resident-set high-water mark (VmHWM),
reset before each run through /proc/self/clear_refs. It is process-wide, so it includes every model the
bench has loaded; differences between contestants are their working memory. Elsewhere only the lifetime
peak (getrusage) exists, which never goes down, and the label says so.
"""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _resettable_rss() -> bool:
    try:
        _CLEAR_REFS.write_text("5")  # 5: reset the peak resident set size
        return "VmHWM" in _STATUS.read_text()
    except OSError:
        return False


class PeakMemory:
    def __init__(self, device: torch.device):
        self.device = device
        self._rss_resets = device.type != "cuda" and _resettable_rss()
        if device.type == "cuda":
            self.label = "peak CUDA memory allocated by torch during the run"
        elif self._rss_resets:
            self.label = "peak resident memory of the whole process during the run (all loaded models included)"
        else:
            self.label = "peak resident memory of the whole process since it started (cannot be reset here)"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._rss_resets:
            _CLEAR_REFS.write_text("5")

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        match = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text()) if _STATUS.exists() else None
        if match:
            return int(match.group(1)) / 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
