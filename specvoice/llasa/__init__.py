"""Llasa (HKUSTAudio/Llasa-1B/3B/8B): a Llama LM that writes X-codec2 speech tokens, run through lm/decoder.py's
static cache so the engine samples it, and decoded to 16 kHz audio by transformers' Xcodec2Model.

The prompt is the model card's: a chat whose user turn is "Convert the text to speech:" + the text between
<|TEXT_UNDERSTANDING_START|> and <|TEXT_UNDERSTANDING_END|>, and whose assistant turn is continued after
<|SPEECH_GENERATION_START|>; generation ends at <|SPEECH_GENERATION_END|>, at most 2048 tokens in all, and the
speech tokens <|s_N|> are the codec's codes N.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine.sampling import Sampler
from ..errors import SpecvoiceError
from ..lm.decoder import CausalLMDecoder

TEXT_START, TEXT_END = "<|TEXT_UNDERSTANDING_START|>", "<|TEXT_UNDERSTANDING_END|>"
SPEECH_START, SPEECH_END = "<|SPEECH_GENERATION_START|>", "<|SPEECH_GENERATION_END|>"
MAX_LENGTH = 2048  # the model card's max_length


class LlasaPair:
    def __init__(self, target, tokenizer, codec, draft=None):
        self.tokenizer, self.codec = tokenizer, codec
        levels = codec.config.quantization_levels
        self.codes = int(np.prod(levels))
        self.first_code = tokenizer.convert_tokens_to_ids("<|s_0|>")
        if tokenizer.convert_tokens_to_ids(f"<|s_{self.codes - 1}|>") != self.first_code + self.codes - 1:
            raise SpecvoiceError(f"the tokenizer's speech tokens <|s_0|>..<|s_{self.codes - 1}|> are not the codec's "
                                 f"{self.codes} codes in order")
        self.end = tokenizer.convert_tokens_to_ids(SPEECH_END)
        self.decoder = CausalLMDecoder(target, max_slots=MAX_LENGTH)
        self.draft = None
        if draft is not None:
            if draft.config.vocab_size != target.config.vocab_size:
                raise SpecvoiceError(f"draft and target vocabularies differ ({draft.config.vocab_size} vs "
                                     f"{target.config.vocab_size}): use a Llasa draft with the same tokenizer")
            self.draft = CausalLMDecoder(draft, max_slots=MAX_LENGTH)
        self.sample_rate = codec.config.sampling_rate

    def prompt(self, text: str) -> list[int]:
        chat = [{"role": "user", "content": f"Convert the text to speech:{TEXT_START}{text}{TEXT_END}"},
                {"role": "assistant", "content": SPEECH_START}]
        ids = self.tokenizer.apply_chat_template(chat, tokenize=True, continue_final_message=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def speech_codes(self, text: str, sampler: Sampler) -> list[int]:
        prompt = self.prompt(text)
        if len(prompt) >= MAX_LENGTH:
            raise SpecvoiceError(f"a sentence of {len(prompt)} prompt tokens leaves no room under Llasa's {MAX_LENGTH}")
        tokens = sampler(self.decoder, self.draft, prompt, MAX_LENGTH - len(prompt), self.end)
        return [t - self.first_code for t in tokens if self.first_code <= t < self.first_code + self.codes]

    @torch.inference_mode()
    def audio(self, codes: list[int]) -> np.ndarray:
        if not codes:
            return np.zeros(0, dtype=np.float32)
        tensor = torch.tensor([[codes]], device=self.codec.device)
        return self.codec.decode(tensor).audio_values[0, 0].float().cpu().numpy()
