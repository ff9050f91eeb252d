"""transformers' own greedy `generate()`, with the same prompt and token suppression as specvoice."""

from __future__ import annotations

import torch
from transformers.generation.utils import GenerationMixin


def hf_greedy(model, input_features: torch.Tensor, prompt: list[int], suppress: tuple[int, ...],
              begin_suppress: tuple[int, ...], max_new_tokens: int, eot: int) -> list[int]:
    """Plain GenerationMixin.generate (Whisper's own override adds long-form logic we do not compare)."""
    output = GenerationMixin.generate(
        model, input_features=input_features.to(model.dtype), decoder_input_ids=torch.tensor([prompt]),
        do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, suppress_tokens=list(suppress),
        begin_suppress_tokens=list(begin_suppress), eos_token_id=eot, pad_token_id=eot,
    )
    return output[0, len(prompt):].tolist()
