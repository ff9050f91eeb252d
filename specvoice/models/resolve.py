"""Resolve `--model NAME` to a local transformers-format Whisper folder: a built-in offline name, a local
folder (transformers or CTranslate2), or a hub id; and find the CTranslate2 folder behind a name."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import SpecvoiceError
from ..files import cache_dir, publish_folder
from . import registry
from .ctranslate2 import record_is_stale, refresh_record, write_transformers_folder


def _builtin_folder(name: str) -> Path:
    destination = cache_dir() / "models" / f"{name}-{registry.BUILTIN_MODELS[name].sha256[:12]}"
    if not (destination / "model.safetensors").exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=destination.parent) as tmp:
            model_bin = registry.assemble_model_bin(name, Path(tmp) / "model.bin")
            write_transformers_folder(model_bin, registry.files_dir(name), destination)
    elif record_is_stale(destination):
        refresh_record(registry.files_dir(name), destination)
    return destination


def _ctranslate2_folder(folder: Path) -> Path:
    model_bin = folder / "model.bin"
    digest = hashlib.sha256()
    with open(model_bin, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    destination = cache_dir() / "models" / f"ct2-{digest.hexdigest()[:16]}"
    if not (destination / "model.safetensors").exists():
        write_transformers_folder(model_bin, folder, destination)
    elif record_is_stale(destination):
        refresh_record(folder, destination)
    return destination


class ModelUnavailable(SpecvoiceError):
    """A hub model that could not be had (offline and not cached, unknown id, ...)."""


def is_hub_id(name: str) -> bool:
    """Whether NAME reads as a hub id (owner/name) rather than a path."""
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).expanduser().exists()


WEIGHT_FILES = ("*.json", "*.safetensors", "*.txt")


def hub_folder(repo_id: str, patterns: tuple[str, ...] = WEIGHT_FILES) -> Path:
    """The local snapshot of a hub model (the cached one when offline), limited to files matching `patterns`."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=list(patterns)))
    except Exception as exc:  # hub errors come in many types; the user needs the one line
        first_line = (str(exc).strip().splitlines() or [""])[0].rstrip(".")
        raise ModelUnavailable(f"could not get model {repo_id!r} from the Hugging Face hub: {first_line}") from None


def resolve_folder(name: str, role: str = "model", also: str = "") -> Path:
    """The local transformers-format folder for NAME, converting or downloading it first if needed. `role` and
    `also` word the error for a name that is none of these (`--draft` also takes its own kinds of names)."""
    if name in registry.BUILTIN_MODELS:
        return _builtin_folder(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "model.bin").exists():
            return _ctranslate2_folder(path)
        config = path / "config.json"
        if config.exists() and json.loads(config.read_text()).get("model_type") == "whisper":
            return path
        raise SpecvoiceError(f"{path}: not a Whisper model folder (no CTranslate2 model.bin, no transformers Whisper config.json)")
    if path.exists():
        raise SpecvoiceError(f"{path}: a model must be a folder, a built-in name or a hub id")
    if is_hub_id(name):
        return hub_folder(name)
    raise SpecvoiceError(f"unknown {role} {name!r}: use {also}one of {', '.join(registry.BUILTIN_MODELS)}, a local folder "
                         "or a hub id such as openai/whisper-base")


def _assembled_ctranslate2_folder(name: str) -> Path:
    """A built-in model split across packages, joined once into a folder CTranslate2 can open."""
    package = registry.BUILTIN_MODELS[name]
    destination = cache_dir() / "ctranslate2" / f"{name}-{package.sha256[:12]}"
    if (destination / "model.bin").exists():
        return destination
    files = registry.files_dir(name)

    def fill(staging: Path) -> None:
        registry.assemble_model_bin(name, staging / "model.bin")
        for extra in files.iterdir():
            if extra.name in ("config.json", "tokenizer.json", "preprocessor_config.json") or \
                    extra.name.startswith("vocabulary."):
                shutil.copy(extra, staging / extra.name)

    publish_folder(destination, fill)
    return destination


def ctranslate2_folder(name: str) -> Path | None:
    """The CTranslate2 folder holding NAME's weights, or None when they only exist as transformers weights."""
    if name in registry.BUILTIN_MODELS:
        files = registry.files_dir(name)
        # A one-part package ships a complete folder; its model.bin was hash-checked when first converted.
        return files if (files / "model.bin").exists() else _assembled_ctranslate2_folder(name)
    folder = Path(name).expanduser()
    return folder if (folder / "model.bin").is_file() else None
