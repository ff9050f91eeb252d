"""Whisper's weights as plain PyTorch modules, read from a transformers folder without importing transformers.

specvoice runs its own encoder and decoder (encoder.py, decoder.py) and only needs the weights, under
transformers' names. Importing transformers' Whisper costs a command ~2 s (it pulls in torch._dynamo and
torch.distributed), more than transcribing a short clip; safetensors files are read here directly. A folder
this does not read (no safetensors, sharded or unfamiliar keys) is loaded by transformers instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

# The config fields the modules need; a config.json without any of them is left to transformers.
_NEEDED = ("d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
           "encoder_ffn_dim", "decoder_ffn_dim", "num_mel_bins", "max_source_positions", "max_target_positions",
           "vocab_size")


def _table(rows: int, width: int) -> nn.Embedding:
    """An embedding table left uninitialised: its weights are read next (and nn.Embedding's random init on the
    meta device goes through torch._refs, whose first use imports torch._dynamo: 1.3 s)."""
    return nn.Embedding(rows, width, _weight=torch.empty(rows, width))


class _Attention(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width, bias=False)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)


class _Layer(nn.Module):
    def __init__(self, width: int, hidden: int, cross: bool):
        super().__init__()
        self.self_attn, self.self_attn_layer_norm = _Attention(width), nn.LayerNorm(width)
        if cross:
            self.encoder_attn, self.encoder_attn_layer_norm = _Attention(width), nn.LayerNorm(width)
        self.fc1, self.fc2, self.final_layer_norm = nn.Linear(width, hidden), nn.Linear(hidden, width), nn.LayerNorm(width)
        self.activation_fn = nn.GELU()  # Whisper's "gelu": the exact (erf) one


class _Encoder(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.config, width = config, config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        self.embed_positions = _table(config.max_source_positions, width)
        self.layers = nn.ModuleList(_Layer(width, config.encoder_ffn_dim, False) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(width)


class _Decoder(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        width = config.d_model
        self.embed_tokens = _table(config.vocab_size, width)
        self.embed_positions = _table(config.max_target_positions, width)
        self.layers = nn.ModuleList(_Layer(width, config.decoder_ffn_dim, True) for _ in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(width)


class _Body(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.encoder, self.decoder = _Encoder(config), _Decoder(config)


class WhisperWeights(nn.Module):
    """transformers' WhisperForConditionalGeneration's modules and names, without its forward."""

    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.config = config
        self.model = _Body(config)
        self.proj_out = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.proj_out.weight = self.model.decoder.embed_tokens.weight  # tied, as in every Whisper checkpoint

    @property
    def device(self) -> torch.device:
        return self.proj_out.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.proj_out.weight.dtype


def read_weights(folder: Path, dtype: torch.dtype) -> WhisperWeights | None:
    """The folder's Whisper weights in `dtype`, or None where transformers must read them (see the module)."""
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not (config_path.exists() and weights_path.exists()):
        return None
    config = SimpleNamespace(**json.loads(config_path.read_text()))
    if getattr(config, "model_type", None) != "whisper" or any(not hasattr(config, key) for key in _NEEDED) \
            or getattr(config, "scale_embedding", False) or getattr(config, "activation_function", "gelu") != "gelu":
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(weights_path))
    with torch.device("meta"):
        model = WhisperWeights(config)
    expected = set(model.state_dict())
    if set(tensors) - expected or expected - set(tensors) - {"proj_out.weight"}:
        return None
    tied = "proj_out.weight" not in tensors
    if tied:
        tensors["proj_out.weight"] = tensors["model.decoder.embed_tokens.weight"]
    model.load_state_dict({name: tensor.to(dtype) for name, tensor in tensors.items()}, assign=True)
    if tied:
        model.proj_out.weight = model.model.decoder.embed_tokens.weight
    return model.eval()
