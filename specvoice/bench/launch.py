"""Run one command and say how long it ran and its peak memory: `bench --process` times every command through
this small process, so that the peak is the command's own.

Linux counts in a command's ru_maxrss the memory of the process that started it, up to its exec (execve keeps
the larger of the old and new high-water marks): started from the bench's own process, which holds PyTorch,
every command would read at least that. Started from here, the floor is this interpreter's ~11 MiB, below what
any Python command uses.

    python -m specvoice.bench.launch LOG COMMAND...   # prints {"seconds": ..., "exit": ..., "peak_mib": ...}

Nothing here imports more than the standard library's os, sys, time and json.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    log, argv = sys.argv[1], sys.argv[2:]
    output = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
              (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
              (os.POSIX_SPAWN_DUP2, 1, 2)]
    began = time.perf_counter()
    child = os.posix_spawnp(argv[0], argv, os.environ, file_actions=output)
    _, status, usage = os.wait4(child, 0)  # this child's own use (RUSAGE_CHILDREN: the largest child so far)
    seconds = time.perf_counter() - began
    peak_mib = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere
    print(json.dumps({"seconds": seconds, "exit": os.waitstatus_to_exitcode(status), "peak_mib": peak_mib}))


if __name__ == "__main__":
    main()
