"""A device, precision or kernel choice that cannot run, or options that cannot go together: one `error:` line
before any input is read.

For the device cases the command line runs with torch.cuda.is_available answering as the case needs (no GPU, or
one), so each is checked on any machine: the checks only ask that question before they refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

WITH_GPU = """
import sys, torch
torch.cuda.is_available = lambda: {gpu}
sys.argv[0] = "specvoice"
from specvoice.cli import main
main()
"""


def assert_refused_before_reading(tmp_path, python_args: list[str], options: tuple[str, ...], message: str,
                                  code: int = 1) -> None:
    """`transcribe` of a file that is not audio (reading it would be an error of its own) says only `message`."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"not even audio")
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, *python_args, "transcribe", str(clip), *options], capture_output=True,
                            text=True, env=environment, timeout=300)
    assert result.returncode == code
    assert result.stderr.strip().splitlines() == [message]
    assert result.stdout == ""


@pytest.mark.parametrize("options, gpu, message", [
    (("--device", "cuda"), False, "error: --device cuda: no CUDA GPU is available to this PyTorch build"),
    (("--device", "cuda", "--dtype", "int8"), True, "error: --dtype int8 runs on the CPU only; use float16 on CUDA"),
    (("--kernels", "on"), False, "error: --kernels on needs a CUDA GPU (or TRITON_INTERPRET=1 in the environment to "
                                 "run the kernels in Triton's CPU interpreter, slowly)"),
], ids=["device cuda without a GPU", "dtype int8 on CUDA", "kernels on without a GPU"])
def test_a_device_dtype_or_kernels_that_cannot_run_is_one_error_line_before_any_input_is_read(tmp_path, options,
                                                                                            gpu, message):
    assert_refused_before_reading(tmp_path, ["-c", WITH_GPU.format(gpu=gpu)], options, message)


# A combination the options refuse is a usage error (exit 2, with the help hint); float16 is a valid dtype that
# this device cannot serve (exit 1).
@pytest.mark.parametrize("options, message, code", [
    (("--method", "ar", "--draft", "tiny.en"),
     "error: --draft needs --method spec, specasr or dllm (see python -m specvoice transcribe --help)", 2),
    (("--device", "cpu", "--dtype", "float16"),
     "error: --dtype float16 is not supported on the CPU; use int8, float32 or bfloat16", 1),
], ids=["draft with ar", "float16 on the CPU"])
def test_options_that_cannot_go_together_are_one_error_line_before_any_input_is_read(tmp_path, options, message,
                                                                                   code):
    assert_refused_before_reading(tmp_path, ["-m", "specvoice"], options, message, code)
