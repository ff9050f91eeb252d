"""Resolve `--model NAME` to a ready Whisper model: built-in offline name, local folder, or hub id."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import SpecvoiceError
from ..whisper.tokenizer import WhisperTokenizer
from . import registry
from .ctranslate2 import convert_to_transformers, read_ctranslate2_variables


@dataclass
class WhisperModel:
    """A loaded Whisper checkpoint and what decoding needs to know about it."""

    name: str
    model: "torch.nn.Module"  # transformers WhisperForConditionalGeneration
    tokenizer: WhisperTokenizer
    suppress_tokens: tuple[int, ...]
    begin_suppress_tokens: tuple[int, ...]

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


def cache_dir() -> Path:
    root = os.environ.get("SPECVOICE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specvoice"
    )
    return Path(root)


def _write_transformers_folder(model_bin: Path, files: Path, destination: Path) -> None:
    """Convert a CTranslate2 Whisper folder into a transformers folder, atomically."""
    from safetensors.torch import save_file
    from transformers import WhisperConfig

    tensors, fields = convert_to_transformers(read_ctranslate2_variables(model_bin))
    ct2_config = json.loads((files / "config.json").read_text())
    suppress = ct2_config.get("suppress_ids", [])
    begin = ct2_config.get("suppress_ids_begin", [])
    tokenizer_json = files / "tokenizer.json"
    if not tokenizer_json.exists():
        raise SpecvoiceError(f"{files}: CTranslate2 folder has no tokenizer.json")
    backend = WhisperTokenizer.from_folder(files, fields["vocab_size"])
    config = WhisperConfig(
        **fields,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin,
        decoder_start_token_id=backend.sot,
        eos_token_id=backend.eot,
        pad_token_id=backend.eot,
        bos_token_id=backend.eot,
    )

    def fill(staging: Path) -> None:
        config.save_pretrained(staging)
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(tokenizer_json, staging / "tokenizer.json")
        (staging / "specvoice.json").write_text(json.dumps({"suppress_tokens": suppress, "begin_suppress_tokens": begin}))

    publish_folder(destination, fill)


def publish_folder(destination: Path, fill: Callable[[Path], None]) -> None:
    """Build a cache folder in a staging folder beside it and rename it into place, so a reader never sees
    a half-written folder; when another process published it first, theirs is kept."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}-"))
    try:
        fill(staging)
        staging.rename(destination)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not destination.exists():
            raise


def _builtin_folder(name: str) -> Path:
    destination = cache_dir() / "models" / f"{name}-{registry.BUILTIN_MODELS[name].sha256[:12]}"
    if not (destination / "model.safetensors").exists():
        files = registry.files_dir(name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=destination.parent) as tmp:
            model_bin = registry.assemble_model_bin(name, Path(tmp) / "model.bin")
            _write_transformers_folder(model_bin, files, destination)
    return destination


def _ctranslate2_folder(folder: Path) -> Path:
    model_bin = folder / "model.bin"
    digest = hashlib.sha256()
    with open(model_bin, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    destination = cache_dir() / "models" / f"ct2-{digest.hexdigest()[:16]}"
    if not (destination / "model.safetensors").exists():
        _write_transformers_folder(model_bin, folder, destination)
    return destination


def _hub_folder(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt"]))
    except Exception as exc:  # hub errors come in many types; the user needs the one line
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise SpecvoiceError(f"could not get model {repo_id!r} from the Hugging Face hub: {first_line}") from None


def resolve_folder(name: str) -> Path:
    """The local transformers-format folder for NAME, converting or downloading it first if needed."""
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
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return _hub_folder(name)
    raise SpecvoiceError(f"unknown model {name!r}: use one of {', '.join(registry.BUILTIN_MODELS)}, a local folder or a hub id such as openai/whisper-base")


def _suppression(folder: Path, generation: dict, config) -> tuple[tuple[int, ...], tuple[int, ...]]:
    own = folder / "specvoice.json"
    if own.exists():
        data = json.loads(own.read_text())
        return tuple(data["suppress_tokens"]), tuple(data["begin_suppress_tokens"])
    suppress = generation.get("suppress_tokens") or getattr(config, "suppress_tokens", None) or []
    begin = generation.get("begin_suppress_tokens") or getattr(config, "begin_suppress_tokens", None) or []
    return tuple(suppress), tuple(begin)


def load_whisper(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> WhisperModel:
    from transformers import WhisperForConditionalGeneration

    folder = resolve_folder(name)
    try:
        model = WhisperForConditionalGeneration.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError) as exc:
        raise SpecvoiceError(f"{folder}: could not load Whisper weights ({(str(exc).splitlines() or [''])[0]})") from None
    model = model.to(device).eval()
    tokenizer = WhisperTokenizer.from_folder(folder, model.config.vocab_size)
    generation_path = folder / "generation_config.json"
    generation = json.loads(generation_path.read_text()) if generation_path.exists() else {}
    suppress, begin = _suppression(folder, generation, model.config)
    return WhisperModel(name, model, tokenizer, suppress, begin)
