"""Read a CTranslate2 (faster-whisper) Whisper `model.bin` and turn it into a transformers state dict.

Binary layout (version 6, little-endian): see docs/offline-models in the shared notes. Strings are a u16
byte length that counts a trailing NUL, then the bytes.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from ..errors import SpecvoiceError
from ..files import publish_folder, write_atomic
from ..whisper.tokenizer import WhisperTokenizer

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}  # 5 = bf16 bits


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise SpecvoiceError(f"{getattr(f, 'name', 'model.bin')}: truncated CTranslate2 file")
    return struct.unpack("<" + fmt, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "H")
    return f.read(length)[:-1].decode("utf-8")


def read_ctranslate2_variables(path: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 model file, aliases resolved, as numpy arrays."""
    with open(path, "rb") as f:
        (version,) = _read(f, "I")
        if version != 6:
            raise SpecvoiceError(f"{path}: unsupported CTranslate2 binary version {version} (expected 6)")
        spec = _read_string(f)
        if spec != "WhisperSpec":
            raise SpecvoiceError(f"{path}: CTranslate2 model is a {spec}, not a Whisper model")
        _read(f, "I")  # revision
        (n_vars,) = _read(f, "I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(n_vars):
            name = _read_string(f)
            (rank,) = _read(f, "B")
            dims = _read(f, f"{rank}I") if rank else ()
            dtype_id, nbytes = _read(f, "BI")
            raw = f.read(nbytes)
            if len(raw) != nbytes or dtype_id not in _DTYPES:
                raise SpecvoiceError(f"{path}: corrupt variable {name!r}")
            array = np.frombuffer(raw, dtype=_DTYPES[dtype_id]).reshape(dims)
            if dtype_id == 5:
                array = (array.astype(np.uint32) << 16).view(np.float32)
            variables[name] = array
        (n_aliases,) = _read(f, "I")
        for _ in range(n_aliases):
            alias, target = _read_string(f), _read_string(f)
            variables[alias] = variables[target]
    return variables


def _layer_norm(out: dict, prefix: str, v: dict, name: str) -> None:
    out[f"{prefix}.weight"] = v[f"{name}/gamma"]
    out[f"{prefix}.bias"] = v[f"{name}/beta"]


def _linear(out: dict, prefix: str, v: dict, name: str) -> None:
    out[f"{prefix}.weight"] = v[f"{name}/weight"]
    if f"{name}/bias" in v:
        out[f"{prefix}.bias"] = v[f"{name}/bias"]


def _split_linear(out: dict, prefixes: list[str], v: dict, name: str) -> None:
    """A fused projection (q|k|v or k|v) split along dim 0; HF's k_proj has no bias (CT2 stores zeros)."""
    weights = np.split(v[f"{name}/weight"], len(prefixes))
    biases = np.split(v[f"{name}/bias"], len(prefixes))
    for prefix, w, b in zip(prefixes, weights, biases):
        out[f"{prefix}.weight"] = w
        if not prefix.endswith("k_proj"):
            out[f"{prefix}.bias"] = b


def _attention(out: dict, p: str, v: dict, n: str, fused: list[str]) -> None:
    _split_linear(out, [f"{p}.{x}" for x in fused], v, f"{n}/linear_0")
    _linear(out, f"{p}.out_proj", v, f"{n}/linear_1")


def convert_to_transformers(v: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict for `WhisperForConditionalGeneration` (dtype kept; `proj_out` is tied to the embeddings,
    so it is left out) plus the config fields the shapes imply."""
    out: dict[str, np.ndarray] = {}
    n_enc, n_dec = (1 + max(int(m[1]) for k in v if (m := re.match(rf"{side}/layer_(\d+)/", k)))
                    for side in ("encoder", "decoder"))
    for i in (1, 2):
        _linear(out, f"model.encoder.conv{i}", v, f"encoder/conv{i}")
    out["model.encoder.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    for side, n_layers in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n_layers):
            p, n = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            _attention(out, f"{p}.self_attn", v, f"{n}/self_attention", ["q_proj", "k_proj", "v_proj"])
            _layer_norm(out, f"{p}.self_attn_layer_norm", v, f"{n}/self_attention/layer_norm")
            _linear(out, f"{p}.fc1", v, f"{n}/ffn/linear_0")
            _linear(out, f"{p}.fc2", v, f"{n}/ffn/linear_1")
            _layer_norm(out, f"{p}.final_layer_norm", v, f"{n}/ffn/layer_norm")
            if side == "decoder":
                _linear(out, f"{p}.encoder_attn.q_proj", v, f"{n}/attention/linear_0")
                _split_linear(out, [f"{p}.encoder_attn.k_proj", f"{p}.encoder_attn.v_proj"], v,
                              f"{n}/attention/linear_1")
                _linear(out, f"{p}.encoder_attn.out_proj", v, f"{n}/attention/linear_2")
                _layer_norm(out, f"{p}.encoder_attn_layer_norm", v, f"{n}/attention/layer_norm")
        _layer_norm(out, f"model.{side}.layer_norm", v, f"{side}/layer_norm")
    out["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = v["decoder/position_encodings/encodings"]

    vocab, width = out["model.decoder.embed_tokens.weight"].shape
    fields = dict(
        vocab_size=int(vocab),
        d_model=int(width),
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(out["model.encoder.layers.0.fc1.weight"].shape[0]),
        decoder_ffn_dim=int(out["model.decoder.layers.0.fc1.weight"].shape[0]),
        num_mel_bins=int(out["model.encoder.conv1.weight"].shape[1]),
        max_source_positions=int(out["model.encoder.embed_positions.weight"].shape[0]),
        max_target_positions=int(out["model.decoder.embed_positions.weight"].shape[0]),
    )
    tensors = {k: torch.from_numpy(np.array(a)) for k, a in out.items()}
    return tensors, fields


def write_transformers_folder(model_bin: Path, files: Path, destination: Path) -> None:
    """Convert a CTranslate2 Whisper model (its model.bin, and config.json + tokenizer.json in `files`)
    into a transformers folder at `destination`, atomically."""
    from safetensors.torch import save_file
    from transformers import WhisperConfig

    tensors, fields = convert_to_transformers(read_ctranslate2_variables(model_bin))
    record = _record(files)
    tokenizer_json = files / "tokenizer.json"
    if not tokenizer_json.exists():
        raise SpecvoiceError(f"{files}: CTranslate2 folder has no tokenizer.json")
    tokenizer = WhisperTokenizer.from_folder(files, fields["vocab_size"])
    config = WhisperConfig(
        **fields,
        suppress_tokens=record["suppress_tokens"],
        begin_suppress_tokens=record["begin_suppress_tokens"],
        decoder_start_token_id=tokenizer.sot,
        eos_token_id=tokenizer.eot,
        pad_token_id=tokenizer.eot,
        bos_token_id=tokenizer.eot,
    )

    def fill(staging: Path) -> None:
        config.save_pretrained(staging)
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(tokenizer_json, staging / "tokenizer.json")
        (staging / "specvoice.json").write_text(json.dumps(record))

    publish_folder(destination, fill)


def _record(files: Path) -> dict:
    """A converted folder's specvoice.json: what the CTranslate2 config.json in `files` says about decoding
    that a transformers config does not keep (token suppression, the alignment heads word timestamps read)."""
    ct2_config = json.loads((files / "config.json").read_text())
    return {"suppress_tokens": ct2_config.get("suppress_ids", []),
            "begin_suppress_tokens": ct2_config.get("suppress_ids_begin", []),
            "alignment_heads": ct2_config.get("alignment_heads", [])}


def record_is_stale(destination: Path) -> bool:
    """Whether a folder converted by an earlier specvoice lacks a field of its specvoice.json (the alignment heads
    came later). Checked without the CTranslate2 files, so an up-to-date conversion loads without them."""
    return "alignment_heads" not in json.loads((destination / "specvoice.json").read_text())


def refresh_record(files: Path, destination: Path) -> None:
    """Rewrite the specvoice.json of a converted folder from the CTranslate2 files it came from; the weights stay."""
    write_atomic(destination / "specvoice.json", json.dumps(_record(files)))
