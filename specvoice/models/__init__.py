"""`--model NAME` to weights on disk: built-in offline packages (registry), CTranslate2 conversion, local
folders and hub ids (resolve). The model types themselves live with their family (whisper/, lm/)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import SpecvoiceError
from ..whisper.model import WhisperModel
from ..whisper.shallow import SHALLOW, ShallowDraft, shipped_draft
from . import registry
from .resolve import ctranslate2_folder, resolve_folder

__all__ = ["ctranslate2_folder", "load_draft", "load_whisper", "resolve_folder", "weights_version"]


def load_whisper(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 int8: bool = False) -> WhisperModel:
    return WhisperModel.from_folder(name, resolve_folder(name), device, dtype, int8)


def shallow_draft_file(name: str, target: str) -> Path | None:
    """The shallow-draft file `--draft NAME` names for `target` (None: NAME is a Whisper model): `shallow`, the
    one that ships for a built-in target, or a `.safetensors` file that `specvoice distill` wrote."""
    if name == SHALLOW:
        path = shipped_draft(target)
        if path is None:
            raise SpecvoiceError(f"no shallow draft ships for {target!r} (one ships for base); train one with "
                                 "`specvoice distill` and pass its file")
        return path
    if name.endswith(".safetensors"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise SpecvoiceError(f"{path}: no such draft file")
        return path
    return None


def load_draft(name: str, target: WhisperModel, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> WhisperModel | ShallowDraft:
    """The draft `--draft NAME` names for `target`: a shallow draft file, else a Whisper model."""
    path = shallow_draft_file(name, target.name)
    if path is not None:
        draft = ShallowDraft.load(path, target)
        draft.name = name
        return draft
    folder = resolve_folder(name, "draft", f"{SHALLOW} (the draft that ships for base), a .safetensors file that "
                                           "`specvoice distill` wrote, ")
    return WhisperModel.from_folder(name, folder, device, dtype, False)


def weights_version(name: str, target: str | None = None) -> str:
    """Which weights `name` stands for: a built-in's pinned packages and checksum, a draft file's path and
    checksum, else the folder it resolves to (for a hub id, the snapshot folder named by its commit)."""
    path = shallow_draft_file(name, target) if target else None
    if path is not None:
        return f"{path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"
    if name in registry.BUILTIN_MODELS:
        package = registry.BUILTIN_MODELS[name]
        return f"{package.requirement} (model.bin sha256 {package.sha256[:12]})"
    return str(resolve_folder(name))
