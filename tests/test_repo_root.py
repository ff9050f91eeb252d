"""Python run from the repository root imports the installed packages, never the repository's kernels/ folder.

The root is first on sys.path for `python -m pytest`, `python -m specvoice` and `python -c`. transformers
imports the Hugging Face `kernels` package (transformers.activations -> integrations/hub_kernels.py); a
top-level `kernels` package in the root shadowed it and every test that imported transformers failed to
collect. These run real subprocesses with the root as their working directory, as CI and users do.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_from_root(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_kernels_from_the_root_is_not_the_repository_folder():
    done = run_from_root("-c", "import importlib.util, specvoice_kernels; spec = importlib.util.find_spec('kernels');"
                               "print(spec and spec.origin); print(specvoice_kernels.__file__)")
    assert done.returncode == 0, done.stderr
    kernels_origin, ours = done.stdout.splitlines()
    # Either the Hugging Face package (installed beside transformers) or nothing; never the repository's folder.
    assert kernels_origin == "None" or not Path(kernels_origin).resolve().is_relative_to(ROOT / "kernels")
    assert Path(ours).resolve().is_relative_to(ROOT / "kernels" / "specvoice_kernels")


def test_transformers_llama_imports_from_the_root():
    done = run_from_root("-c", "import transformers.models.llama.modeling_llama")
    assert done.returncode == 0, done.stderr[-2000:]


def test_python_m_specvoice_runs_from_the_root():
    done = run_from_root("-m", "specvoice", "--version")
    assert done.returncode == 0 and done.stdout.startswith("specvoice "), done.stderr[-2000:]


def test_python_m_pytest_collects_the_transformers_tests_from_the_root():
    done = run_from_root("-m", "pytest", "--collect-only", "-q", "tests/test_lm_decoder.py", "tests/test_llasa.py")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "error" not in done.stdout.lower(), done.stdout[-2000:]
