"""CausalLMDecoder gives the logits of the transformers model it wraps: whole prompt, token by token, trees."""

from __future__ import annotations

import pytest
import torch

from specvoice.engine.decoder import Session
from specvoice.engine.tree import TokenTree
from specvoice.lm.decoder import CausalLMDecoder

VOCAB = 48


def tiny_lm(family: str, seed: int = 0, vocab: int = VOCAB, layers: int = 2):
    """A randomly initialised LlamaForCausalLM / Qwen2ForCausalLM with grouped-query attention."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_class, model_class = {"llama": (LlamaConfig, LlamaForCausalLM),
                                 "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[family]
    torch.manual_seed(seed)
    # initializer_range 0.2 (not 0.02) gives peaked attention, so a wrong position or slot changes the logits.
    config = config_class(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          initializer_range=0.2, tie_word_embeddings=False)
    return model_class(config).eval()


def hf_logits(model, tokens: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].float()


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


PROMPT = [3, 17, 5, 40, 22, 9, 31]


@pytest.fixture(params=["llama", "qwen2"])
def model(request):
    return tiny_lm(request.param)


def test_whole_sequence_matches_hf(model):
    close(Session(CausalLMDecoder(model)).feed(PROMPT), hf_logits(model, PROMPT))


def test_token_by_token_through_the_cache_matches_hf(model):
    session = Session(CausalLMDecoder(model))
    rows = [session.feed([token])[0] for token in PROMPT]
    close(torch.stack(rows), hf_logits(model, PROMPT))


def path_nodes(tree: TokenTree, branch: list[int]) -> list[int]:
    nodes = [0]
    for token in branch:
        nodes.append(tree.children[nodes[-1]][token])
    return nodes


def test_tree_branches_match_plain_chains_and_move_slots_keeps_the_winner(model):
    decoder = CausalLMDecoder(model, max_slots=32)
    session = Session(decoder)
    session.feed(PROMPT[:-1])
    # Nodes a1 a2 b1 b2 in slot order: b's nodes sit at the same depths (positions) as a's, two slots later.
    branch_a, branch_b = [11, 12], [13, 14]
    tree = TokenTree.build(PROMPT[-1:], [branch_a, branch_b], max_nodes=8)
    logits = session.verify(tree)  # the stem is one token: rows are the tree's nodes
    for branch in (branch_a, branch_b):
        close(logits[path_nodes(tree, branch)], hf_logits(model, PROMPT + branch)[-3:])

    # Branch b wins: its slots move into chain order and decoding carries on from them.
    session.accept(tree, path_nodes(tree, branch_b)[1:])
    assert list(session.tokens) == PROMPT + branch_b
    close(session.feed([7])[0], hf_logits(model, PROMPT + branch_b + [7])[-1])
