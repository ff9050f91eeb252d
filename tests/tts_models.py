"""Tiny random TTS models built from a config in the test: Bark with a small vocabulary layout.

Bark's generation config names every special id (semantic vocabulary, end of semantic, text offset, pads,
infer tokens, codebook size), so a tiny Bark can use a vocabulary small enough for chi-square tests to have
power: 8 semantic tokens, 2 codebooks of 4 coarse codes, a 40-word text tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

WORDS = ["hello", "world", "the", "a", "cat", "sat", "on", "mat", "dog", "ran", "is", "it", "good", "day", "we",
         "go", "now", ".", ",", "!", "?", "speech", "test", "one", "two", "three", "four", "five", "six", "seven",
         "eight", "nine", "ten", "yes", "no"]
TEXT_VOCAB = 5 + len(WORDS)  # [PAD] [UNK] [CLS] [SEP] [MASK] + words
SEMANTIC, CODEBOOK = 8, 4
SEMANTIC_CONFIG = dict(semantic_vocab_size=SEMANTIC, semantic_pad_token=SEMANTIC, eos_token_id=SEMANTIC,
                       text_encoding_offset=SEMANTIC + 2, text_pad_token=SEMANTIC + 2 + TEXT_VOCAB,
                       semantic_infer_token=SEMANTIC + 2 + TEXT_VOCAB + 1, max_input_semantic_length=256,
                       max_new_tokens=40, semantic_rate_hz=49.9, min_eos_p=0.2, temperature=1.0)
COARSE_CONFIG = dict(coarse_semantic_pad_token=SEMANTIC + 2 * CODEBOOK, coarse_infer_token=SEMANTIC + 2 * CODEBOOK + 2,
                     coarse_rate_hz=75, n_coarse_codebooks=2, max_coarse_input_length=256, max_coarse_history=630,
                     sliding_window_len=60, temperature=1.0)
FINE_CONFIG = dict(temperature=0.5, max_fine_history_length=512, max_fine_input_length=1024, n_fine_codebooks=8)


def tiny_bark(seed: int, hidden: int = 32, layers: int = 2, init_std: float = 0.2):
    from transformers import BarkConfig, BarkModel, EncodecConfig, GenerationConfig

    torch.manual_seed(seed)
    causal = dict(hidden_size=hidden, num_layers=layers, num_heads=2, block_size=1024, bias=False,
                  initializer_range=init_std)
    codec = EncodecConfig(num_filters=4, hidden_size=16, codebook_size=CODEBOOK, codebook_dim=16,
                          upsampling_ratios=[8, 5, 4, 2], target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
                          sampling_rate=24000)
    config = BarkConfig(
        semantic_config=dict(**causal, input_vocab_size=SEMANTIC_CONFIG["semantic_infer_token"] + 1,
                             output_vocab_size=SEMANTIC + 2),
        coarse_acoustics_config=dict(**causal, input_vocab_size=COARSE_CONFIG["coarse_infer_token"] + 1,
                                     output_vocab_size=SEMANTIC + 2 * CODEBOOK),  # Bark draws codes only
        fine_acoustics_config=dict(hidden_size=hidden, num_layers=layers, num_heads=2, block_size=1024, bias=True,
                                   input_vocab_size=CODEBOOK + 1, output_vocab_size=CODEBOOK + 1, n_codes_total=8,
                                   n_codes_given=1, initializer_range=init_std),
        codec_config=codec.to_dict())
    model = BarkModel(config).eval()
    # A GenerationConfig carrying Bark's nested settings (BarkModel.generate breaks on a BarkGenerationConfig).
    model.generation_config = GenerationConfig(semantic_config=SEMANTIC_CONFIG, coarse_acoustics_config=COARSE_CONFIG,
                                               fine_acoustics_config=FINE_CONFIG, codebook_size=CODEBOOK,
                                               sample_rate=24000)
    return model


def tiny_bark_tokenizer(folder: Path):
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)


def voice_arrays(seed: int, seconds: float = 1.0) -> dict[str, np.ndarray]:
    """A random Bark speaker prompt in the tiny vocabulary: semantic tokens and 2/8 codebooks of codes."""
    rng = np.random.default_rng(seed)
    frames = int(75 * seconds)
    return {"semantic_prompt": rng.integers(0, SEMANTIC, int(49.9 * seconds)),
            "coarse_prompt": rng.integers(0, CODEBOOK, (2, frames)),
            "fine_prompt": rng.integers(0, CODEBOOK, (8, frames))}


def save_tiny_bark(folder: Path, seed: int, voices: tuple[str, ...] = ("v2/en_speaker_0",), **sizes) -> Path:
    """A Bark folder as the hub has it: weights, tokenizer, generation config, speaker_embeddings_path.json."""
    import json

    tiny_bark(seed, **sizes).save_pretrained(folder)
    tiny_bark_tokenizer(folder).save_pretrained(folder)
    listing = {"repo_or_path": str(folder)}
    for i, name in enumerate(voices):
        entry = {}
        for key, array in voice_arrays(seed * 10 + i).items():
            relative = f"speaker_embeddings/{name}_{key}.npy"
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            np.save(folder / relative, array)
            entry[key] = relative
        listing[name] = entry
    (folder / "speaker_embeddings_path.json").write_text(json.dumps(listing))
    return folder


LLASA_CODES = 16  # a tiny X-codec2 with quantization levels (4, 4)
CHAT_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }}"
                 "{% if not loop.last %} <|end|> {% endif %}{% endfor %}")


def tiny_llasa_tokenizer():
    """A word-level tokenizer with Llasa's special tokens, its speech tokens <|s_N|> and a chat template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "convert", "text", "to", ":", *WORDS]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(dict.fromkeys(words))}, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", chat_template=CHAT_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<|user|>", "<|assistant|>", "<|end|>", "<|TEXT_UNDERSTANDING_START|>", "<|TEXT_UNDERSTANDING_END|>", "<|SPEECH_GENERATION_START|>",
        "<|SPEECH_GENERATION_END|>", *[f"<|s_{i}|>" for i in range(LLASA_CODES)]]})
    return tokenizer


def tiny_xcodec2(seed: int):
    from transformers import Xcodec2Config, Xcodec2Model

    torch.manual_seed(seed)
    config = Xcodec2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=2, head_dim=16, encoder_hidden_size=8, quantization_dim=64,
                           quantization_levels=[4, 4],
                           semantic_model_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                      intermediate_size=64, output_hidden_size=32,
                                                      feature_projection_input_dim=160, conv_depthwise_kernel_size=3,
                                                      position_embeddings_type="relative_key", num_adapter_layers=1))
    return Xcodec2Model(config).eval()


def tiny_llasa(seed: int, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         initializer_range=0.2)
    return LlamaForCausalLM(config).eval()


def save_tiny_llasa(folder: Path, seed: int) -> Path:
    """A Llasa folder: the Llama weights and tokenizer, with the codec in codec/ (specvoice's local layout)."""
    tokenizer = tiny_llasa_tokenizer()
    tiny_llasa(seed, len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tiny_xcodec2(seed).save_pretrained(folder / "codec")
    return folder
