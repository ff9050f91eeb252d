"""`--model NAME` to weights on disk: built-in offline packages (registry), CTranslate2 conversion, local
folders and hub ids (resolve). The model types themselves live with their family (whisper/, lm/)."""

from __future__ import annotations

import torch

from ..whisper.model import WhisperModel
from . import registry
from .resolve import ctranslate2_folder, resolve_folder

__all__ = ["ctranslate2_folder", "load_whisper", "resolve_folder", "weights_version"]


def load_whisper(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 int8: bool = False) -> WhisperModel:
    return WhisperModel.from_folder(name, resolve_folder(name), device, dtype, int8)


def weights_version(name: str) -> str:
    """Which weights `name` stands for: a built-in's pinned packages and checksum, else the folder it resolves to
    (for a hub id, the snapshot folder named by its commit)."""
    if name in registry.BUILTIN_MODELS:
        package = registry.BUILTIN_MODELS[name]
        return f"{package.requirement} (model.bin sha256 {package.sha256[:12]})"
    return str(resolve_folder(name))
