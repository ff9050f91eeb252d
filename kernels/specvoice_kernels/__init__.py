"""Triton kernels for the speculative engine's hot paths (imported as `specvoice_kernels`).

Each kernel has a pure PyTorch twin in specvoice/engine/ops.py that the engine runs when kernels are off;
the tests run both on the same inputs. This package imports nothing from specvoice: the engine picks it
up through engine/ops.py, so it stays a leaf that any model adapter can use.

Triton compiles these kernels for NVIDIA GPUs at first use; with TRITON_INTERPRET=1 in the environment
(set before triton is imported) the very same kernel code runs on the CPU, which is how they are verified.
"""

from __future__ import annotations

import os


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def installed() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
