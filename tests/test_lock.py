"""The environment the tests run in is the locked one: every package in requirements.lock is installed at the
locked version (make installs with the lock as constraints), and the lock covers every declared dependency."""

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def locked() -> dict[str, str]:
    pins = (line.split("==") for line in LOCK.read_text().splitlines() if line and not line.startswith("#"))
    return {canonical(name): version for name, version in pins}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_locked_package_is_installed_at_its_locked_version():
    wrong = {}
    for name, version in locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment did not install (make test-kernels adds triton later)
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed vs locked: {wrong}"


def test_the_lock_pins_every_dependency_and_extra_the_project_declares():
    requirements = [Requirement(text) for text in metadata.requires("specvoice") or []]
    missing = sorted({canonical(r.name) for r in requirements} - set(locked()))
    assert not missing, f"not in requirements.lock: {missing}; run 'make lock'"


@pytest.mark.parametrize("name", ["torch", "transformers", "kernels", "setuptools", "pip"])
def test_the_packages_that_broke_a_fresh_install_are_pinned(name):
    assert name in locked()
