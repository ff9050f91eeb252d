"""Every Triton kernel compiles, all the way to a GPU binary, for the GPUs the kernels are meant for.

Triton's interpreter (tests/test_kernels.py) checks what the kernels compute but not that the compiler
accepts them (types carried through loops, tl.dot shapes, masks); this builds each kernel ahead of time
for NVIDIA sm_80 (A100) and sm_90 (H100/H200) with the ptxas bundled in the triton wheel. No GPU needed.
It runs without TRITON_INTERPRET (the interpreter replaces the kernels it would compile).
"""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("triton", reason="triton is not installed (make test-kernels installs it)")

import specvoice_kernels  # noqa: E402

if specvoice_kernels.interpreting():
    pytest.skip("TRITON_INTERPRET=1 replaces the kernels with the interpreter: compiled in a run without it",
                allow_module_level=True)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from specvoice_kernels import attention, cache, verify  # noqa: E402

FLOATS = {"scale", "beta"}


def signature(kernel, pointers: dict[str, str], constants: dict[str, object]) -> dict[str, str]:
    """Triton types for a kernel's parameters: the pointers given, floats by name, constants, else int32."""
    names = inspect.signature(kernel.fn).parameters
    return {name: pointers.get(name) or ("constexpr" if name in constants else "fp32" if name in FLOATS else "i32")
            for name in names}


def halves(*names: str) -> dict[str, str]:
    return {name: "*fp16" for name in names}


CASES = {
    "attention, tree mask, float16": (attention._partial, {**halves("q_ptr", "k_ptr", "v_ptr"), "visible_ptr": "*u8",
                                                           "out_ptr": "*fp32", "max_ptr": "*fp32", "sum_ptr": "*fp32"},
                                      dict(MASKED=True, BLOCK_N=16, BLOCK_S=64, BLOCK_D=64, SPLIT_SLOTS=256)),
    "cross-attention, float32": (attention._partial, {"q_ptr": "*fp32", "k_ptr": "*fp32", "v_ptr": "*fp32",
                                                      "visible_ptr": "*fp32", "out_ptr": "*fp32", "max_ptr": "*fp32",
                                                      "sum_ptr": "*fp32"},
                                 dict(MASKED=False, BLOCK_N=16, BLOCK_S=64, BLOCK_D=64, SPLIT_SLOTS=256)),
    "log-sum-exp merge": (attention._combine, {"part_ptr": "*fp32", "max_ptr": "*fp32", "sum_ptr": "*fp32",
                                               "out_ptr": "*fp16"}, dict(BLOCK_SPLITS=8, BLOCK_N=16, BLOCK_D=64)),
    "cache compaction": (cache._move, {**halves("keys_ptr", "values_ptr"), "source_ptr": "*i64",
                                       "destination_ptr": "*i64"}, dict(BLOCK_M=32, BLOCK_D=64)),
    "argmax per row": (verify._row_argmax, {"logits_ptr": "*fp32", "best_ptr": "*i32", "logprob_ptr": "*fp32"},
                       dict(BLOCK_V=verify.BLOCK_VOCAB)),
    "tree walk": (verify._walk, {"best_ptr": "*i32", "logprob_ptr": "*fp32", "parents_ptr": "*i32",
                                 "tokens_ptr": "*i32", "out_ptr": "*i32", "logprob_out_ptr": "*fp32"},
                  dict(BLOCK_N=32)),
    "speculative accept/reject": (verify._speculative, {"target_ptr": "*fp32", "draft_ptr": "*fp32",
                                                        "drafted_ptr": "*i64", "uniform_ptr": "*fp32",
                                                        "noise_ptr": "*fp32", "out_ptr": "*i32"},
                                  dict(BLOCK_K=16, BLOCK_V=verify.BLOCK_VOCAB)),
}


@pytest.mark.parametrize("capability", [80, 90])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_compiles_for_the_gpu(case, capability):
    kernel, pointers, constants = CASES[case]
    source = ASTSource(fn=kernel, signature=signature(kernel, pointers, constants), constexprs=constants)
    compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32))
    assert compiled.asm["cubin"]  # a binary the GPU would load
