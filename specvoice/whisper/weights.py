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
from typing import Iterable, Sequence

import torch
from torch import nn

# The config fields the modules need; a config.json without any of them is left to transformers.
_NEEDED = ("d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
           "encoder_ffn_dim", "decoder_ffn_dim", "num_mel_bins", "max_source_positions", "max_target_positions",
           "vocab_size")


TOKEN_TABLE = "model.decoder.embed_tokens.weight"


def _table(rows: int, width: int, kind: type[nn.Embedding] = nn.Embedding) -> nn.Embedding:
    """An embedding table left uninitialised: its weights are read next (and nn.Embedding's random init on the
    meta device goes through torch._refs, whose first use imports torch._dynamo: 1.3 s)."""
    return kind(rows, width, _weight=torch.empty(rows, width))


class _TokenTable(nn.Embedding):
    """The token table, which may be kept in its stored precision (read_weights), its looked-up rows cast to
    `rows_dtype` (None: the table's own)."""

    rows_dtype: torch.dtype | None = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = super().forward(tokens)
        return rows if self.rows_dtype is None else rows.to(self.rows_dtype)


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
        self.embed_tokens = _table(config.vocab_size, width, _TokenTable)
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

    # A weight that is always read and in the model's precision (see read_weights' linears=False)
    @property
    def device(self) -> torch.device:
        return self.model.decoder.layer_norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.decoder.layer_norm.weight.dtype


def read_weights(folder: Path, dtype: torch.dtype, linears: bool = True) -> WhisperWeights | None:
    """The folder's Whisper weights in `dtype`, or None where transformers must read them (see the module).

    linears=False, for a model whose linear layers run in int8 (built from whisper/int8cache.py's cache, else
    quantised from float weights read group by group): their weights are left unread, on the meta device
    (read_unread reads them for whoever needs them in float), and the token table stays in its stored
    precision, its rows cast to `dtype` as they are looked up: exact, and base's float16 table is 53 MB where
    float32's is 106.
    """
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not (config_path.exists() and weights_path.exists()):
        return None
    config = SimpleNamespace(**json.loads(config_path.read_text()))
    if getattr(config, "model_type", None) != "whisper" or any(not hasattr(config, key) for key in _NEEDED) \
            or getattr(config, "scale_embedding", False) or getattr(config, "activation_function", "gelu") != "gelu":
        return None
    from safetensors import safe_open

    with torch.device("meta"):
        model = WhisperWeights(config)
    expected = set(model.state_dict())
    with safe_open(str(weights_path), "pt") as stored:
        names = set(stored.keys())
        if names - expected or expected - names - {"proj_out.weight"}:
            return None
        tensors = {name: stored.get_tensor(name) for name in (names if linears else names - linear_weights(model))}
    tensors = {name: tensor if name == TOKEN_TABLE and not linears and _widens_exactly(tensor.dtype, dtype)
               else tensor.to(dtype) for name, tensor in tensors.items()}
    model.load_state_dict(tensors, assign=True, strict=False)  # every weight is there: checked above
    if "proj_out.weight" not in names:
        model.proj_out.weight = model.model.decoder.embed_tokens.weight
    model.model.decoder.embed_tokens.rows_dtype = dtype
    return model.eval()


def linear_weights(model: nn.Module) -> set[str]:
    """The names of the weights and biases of the model's linear layers."""
    return {f"{name}.{kind}" for name, module in model.named_modules() if isinstance(module, nn.Linear)
            for kind in ("weight", "bias") if getattr(module, kind) is not None}


def _widens_exactly(stored: torch.dtype, dtype: torch.dtype) -> bool:
    """Whether `stored` is a narrower float type than `dtype` (float16 and bfloat16 to float32: exact)."""
    return stored.is_floating_point and dtype.is_floating_point and stored.itemsize < dtype.itemsize


def read_tensors(folder: Path, names: Iterable[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Some of the folder's weights, in `dtype`."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as stored:
        return {name: stored.get_tensor(name).to(dtype) for name in names}


def read_unread(model: WhisperWeights, folder: Path, modules: Sequence[str] = ()) -> None:
    """Make the weights of `modules` (names such as "model.decoder.layers.0"; every module when none are given)
    whole in the model's precision: read those read_weights(linears=False) left unread, widen a table kept
    narrower."""
    dtype, tied = model.dtype, model.proj_out.weight is model.model.decoder.embed_tokens.weight
    prefixes = tuple(f"{module}." for module in modules) or ("",)
    chosen = {name: weight for name, weight in model.state_dict().items()
              if name.startswith(prefixes) and not (tied and name == "proj_out.weight")}
    unread = [name for name, weight in chosen.items() if weight.is_meta]
    narrow = {name: weight.to(dtype) for name, weight in chosen.items() if not weight.is_meta and weight.dtype != dtype}
    if unread or narrow:
        model.load_state_dict({**read_tensors(folder, unread, dtype), **narrow}, assign=True, strict=False)
    if tied:
        model.proj_out.weight = model.model.decoder.embed_tokens.weight
