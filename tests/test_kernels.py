"""The Triton kernels (kernels/) against their PyTorch twins (engine/ops.py), and the engine with kernels on.

Without a GPU the kernels run in Triton's CPU interpreter, which must be on before triton is first imported
(transformers may import it): `make test-kernels` runs this file with TRITON_INTERPRET=1, and `make test`
runs that target. The interpreter is slow, so shapes are small and examples few.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings, strategies as st

import specvoice_kernels  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed (make test-kernels installs it)")
GPU = torch.cuda.is_available()
if not GPU and not specvoice_kernels.interpreting():
    pytest.skip("no GPU: the kernels run in Triton's interpreter, under TRITON_INTERPRET=1 (make test-kernels)",
                allow_module_level=True)
DEVICE = torch.device("cuda" if GPU else "cpu")

from conftest import bundle, draft_policy, perturbed, tiny_whisper  # noqa: E402
from specvoice.engine import ops  # noqa: E402
from specvoice.engine.ops import TorchOps, TritonOps  # noqa: E402
from specvoice.engine.sampling import speculative_sample  # noqa: E402
from specvoice.engine.stats import DecodeStats  # noqa: E402
from specvoice.engine.tree import TokenTree  # noqa: E402
from specvoice.lm.decoder import CausalLMDecoder  # noqa: E402
from specvoice.options import ModelOptions  # noqa: E402
from specvoice.whisper.decoder import WhisperDecoder  # noqa: E402
from specvoice.errors import SpecvoiceError  # noqa: E402
from test_dllm import corrupt, refine  # noqa: E402
from test_engine_identity import decode, decode_behind_decoy  # noqa: E402
from test_lm_decoder import tiny_lm  # noqa: E402

TRITON, TORCH = TritonOps(), TorchOps()
FEW = settings(max_examples=12, deadline=None)
# One layer, one head: every interpreted kernel program costs tens of milliseconds.
TARGETS = {seed: tiny_whisper(seed, layers=1, heads=1, d_model=16) for seed in range(2)}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- attention --------------------------------------------------------------------------------------------

@st.composite
def attention_inputs(draw):
    heads, head_dim = draw(st.integers(1, 3)), draw(st.sampled_from([8, 16, 24]))
    # One slot, a few, and past a split (256) so the log-sum-exp merge is exercised; n = 0 is an empty tree.
    span = draw(st.sampled_from([1, 2, 37, 64, 300]))
    n = draw(st.integers(0, 20))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(heads, rows, head_dim, generator=g) for rows in (n, span, span))
    kind = draw(st.sampled_from(["tree", "random", "cross"]))
    if kind == "cross":
        return q, k, v, None
    if kind == "random":
        visible = torch.rand(n, span, generator=g) < 0.5
    else:  # a token tree hung after a cached prefix: every row sees the prefix, its ancestors and itself
        tree_nodes = min(n, span)
        parents = [-1] + [int(torch.randint(0, i, (1,), generator=g)) for i in range(1, tree_nodes)]
        tree = TokenTree(list(range(tree_nodes)), parents, [0] * tree_nodes, 0)
        visible = torch.zeros(n, span, dtype=torch.bool)
        if tree_nodes:
            visible[:tree_nodes] = tree.visibility(span - tree_nodes, torch.device("cpu"))
    visible[torch.arange(n), torch.randint(0, span, (n,), generator=g)] = True  # every row sees a slot
    return q, k, v, visible


@FEW
@given(inputs=attention_inputs())
def test_attention_matches_the_twin(inputs):
    q, k, v, visible = (x.to(DEVICE) if x is not None else None for x in inputs)
    got, expected = TRITON.attention(q, k, v, visible), TORCH.attention(q, k, v, visible)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


def test_a_row_does_not_depend_on_other_rows_or_stale_slots():
    """What makes a verified tree row equal a single-token pass: the same arithmetic over its slots."""
    g = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(2, 6, 16, generator=g), torch.randn(2, 300, 16, generator=g), torch.randn(2, 300, 16, generator=g)
    visible = torch.arange(300).unsqueeze(0) < torch.tensor([290, 291, 292, 293, 294, 295]).unsqueeze(1)
    together = TRITON.attention(q, k, v, visible)
    for row in range(6):
        alone = TRITON.attention(q[:, row: row + 1], k[:, : 290 + row], v[:, : 290 + row], None)
        assert torch.equal(alone[:, 0], together[:, row])


# --- cache compaction -------------------------------------------------------------------------------------

@st.composite
def moves(draw):
    layers, heads, slots, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 40)), \
        draw(st.sampled_from([8, 16, 20]))
    count = draw(st.integers(0, slots))
    if draw(st.booleans()):  # an accepted branch: destinations first.., sources increasing past them
        first = draw(st.integers(0, slots - count))
        destination = list(range(first, first + count))
        source, floor = [], first
        for d in destination:
            floor = draw(st.integers(max(floor, d), slots - (count - len(source))))
            source.append(floor)
            floor += 1
    else:  # any distinct destinations, any sources (overlapping ones included)
        destination = draw(st.permutations(range(slots)))[:count]
        source = [draw(st.integers(0, slots - 1)) for _ in destination]
    return (layers, heads, slots, head_dim), source, destination


@FEW
@given(case=moves(), seed=st.integers(0, 2**16))
def test_move_slots_matches_the_twin(case, seed):
    (layers, heads, slots, head_dim), source, destination = case
    g = torch.Generator().manual_seed(seed)
    keys, values = (torch.randn(layers, 1, heads, slots, head_dim, generator=g).to(DEVICE) for _ in range(2))
    mine = keys.clone(), values.clone()
    indices = torch.tensor(source, dtype=torch.long, device=DEVICE), torch.tensor(destination, dtype=torch.long,
                                                                                  device=DEVICE)
    TORCH.move_slots(keys, values, *indices)
    TRITON.move_slots(*mine, *indices)
    assert torch.equal(mine[0], keys) and torch.equal(mine[1], values)


# --- verification -----------------------------------------------------------------------------------------

@st.composite
def verified_trees(draw):
    vocab = draw(st.sampled_from([5, 40, 1500]))
    stem = draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=3))
    sequences = draw(st.lists(st.lists(st.integers(0, min(vocab, 6) - 1), max_size=5), max_size=4))
    tree = TokenTree.build(stem, sequences, max_nodes=draw(st.integers(len(stem), 20)))
    rows = len(tree) - tree.root
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    # Small integers make ties (argmax must keep the first); boosting a child's token makes acceptance likely.
    logits = torch.randint(-3, 4, (rows, vocab), generator=g).float() if draw(st.booleans()) else \
        torch.randn(rows, vocab, generator=g)
    for row in range(rows):
        children = list(tree.children[tree.root + row].items())
        if children and draw(st.booleans()):
            token, _ = children[draw(st.integers(0, len(children) - 1))]
            logits[row, token] += 10.0
    forbidden = torch.rand(rows, vocab, generator=g) < 0.3
    forbidden[:, 0] = False  # the rules never forbid everything
    logits[forbidden] = float("-inf")
    return tree, logits, draw(st.integers(0, min(vocab, 6) - 1))


@FEW
@given(case=verified_trees())
def test_greedy_verification_matches_the_twin(case):
    tree, ruled, stop = case
    got, expected = TRITON.greedy_verify(ruled.to(DEVICE), tree, stop), TORCH.greedy_verify(ruled.to(DEVICE), tree, stop)
    assert (got.predictions, got.nodes, got.emitted) == (expected.predictions, expected.nodes, expected.emitted)
    assert got.logprob == pytest.approx(expected.logprob, abs=1e-4)


@st.composite
def sampling_rounds(draw):
    vocab, count = draw(st.sampled_from([4, 50, 1200])), draw(st.integers(0, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))

    def distributions(rows):
        logits = torch.randn(rows, vocab, generator=g) * 3
        logits[torch.rand(rows, vocab, generator=g) < 0.3] = float("-inf")  # zero-probability tokens
        logits[:, 0] = 0.0
        return torch.softmax(logits, dim=-1)

    target = distributions(count + 1)
    draft = target[:count].clone() if draw(st.booleans()) else distributions(count)  # equal: no residual mass
    drafted = torch.multinomial(draft, 1, generator=g).flatten() if count else torch.empty(0, dtype=torch.long)
    return target, draft, drafted, draw(st.sampled_from([0.0, 0.3])), draw(st.integers(0, 2**16))


@FEW
@given(case=sampling_rounds())
def test_speculative_verification_matches_the_twin(case):
    target, draft, drafted, beta, seed = (x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in case)
    results = [ops_.speculative_verify(target, draft, drafted, beta, torch.Generator(DEVICE).manual_seed(seed))
               for ops_ in (TRITON, TORCH)]
    assert [[int(x) for x in r] for r in results[0]] == [[int(x) for x in r] for r in results[1]]


# --- the engine with kernels on: every method gives exactly ar's tokens -----------------------------------

@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 1), policy=st.sampled_from([draft_policy(max_tokens=5),  # spec
                                                       draft_policy(max_tokens=8, confidence=0.2, recycle=True,
                                                                    tree_positions=2, tree_below=1.01)]),  # specasr
       timestamps=st.booleans(), audio_seed=st.integers(0, 100))
def test_speculative_equals_greedy_with_kernels_on(seed, policy, timestamps, audio_seed):
    target = bundle(TARGETS[seed])
    with ops.using(TRITON):
        expected, plain = decode(target, None, None, timestamps, 0.3, 16, audio_seed)
        got, stats = decode(target, bundle(perturbed(target.model, seed, 0.3)), policy, timestamps, 0.3, 16,
                            audio_seed)
    assert got == expected
    assert stats.kernels == plain.kernels == "triton"


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 1), timestamps=st.booleans(), audio_seed=st.integers(0, 100), edits=st.integers(0, 4))
def test_refinement_equals_greedy_with_kernels_on(seed, timestamps, audio_seed, edits):
    """dllm: the draft's transcript, corrupted, refined by the target in parallel rounds."""
    target = bundle(TARGETS[seed])
    with ops.using(TRITON):
        expected, _ = decode(target, None, None, timestamps, 0.3, 16, audio_seed)
        got, stats, _ = refine(target, corrupt(expected, edits, audio_seed), timestamps, 0.3, 16, audio_seed)
    assert got == expected
    assert stats.kernels == "triton"


def test_winning_branch_is_compacted_by_the_kernel():
    with ops.using(TRITON):
        expected, got, stats = decode_behind_decoy(bundle(TARGETS[0]), 20)
    assert got == expected
    assert stats.target_passes == -(-len(expected) // 7)


def test_speculative_sampling_draws_the_same_tokens_with_kernels_on():
    """Same seed, same draws: the kernel makes exactly the twin's accept/reject decisions."""
    target_model = tiny_lm("llama", seed=0, vocab=8, layers=1)
    target, draft = (CausalLMDecoder(m, max_slots=16) for m in (target_model, perturbed(target_model, 1, 0.15)))
    runs = {}
    for implementation in (TORCH, TRITON):
        generator, stats = torch.Generator().manual_seed(11), DecodeStats()
        with ops.using(implementation):
            runs[implementation.name] = [speculative_sample(target, draft, [1, 2, 3], 8, None, draft_len=3,
                                                            generator=generator, stats=stats) for _ in range(5)]
        assert stats.kernels == implementation.name
    assert runs["triton"] == runs["torch"]


# --- choosing the implementation --------------------------------------------------------------------------

def test_the_option_picks_the_implementation(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert ModelOptions(kernels="off").kernel_ops("cuda").name == "torch"
    assert ModelOptions(kernels="auto").kernel_ops("cpu").name == "torch"
    assert ModelOptions(kernels="auto").kernel_ops("cuda").name == "triton"
    with pytest.raises(SpecvoiceError, match="--kernels on needs a CUDA GPU"):
        ModelOptions(kernels="on").kernel_ops("cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert ModelOptions(kernels="on").kernel_ops("cpu").name == "triton"
    with pytest.raises(SpecvoiceError, match="unknown kernels"):
        ModelOptions(kernels="maybe")


def test_kernels_on_without_a_gpu_is_one_error_line(tmp_path):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"not even audio: the option is checked before anything is read")
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-m", "specvoice", "transcribe", str(clip), "--kernels", "on",
                             "--device", "cpu"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --kernels on needs a CUDA GPU (or TRITON_INTERPRET=1 in the environment to run the kernels in "
        "Triton's CPU interpreter, slowly)"]


@pytest.mark.real
def test_real_whisper_forward_matches_pytorch_with_kernels_on():
    """tiny.en's weights on a real clip: a verify pass over the prompt and a token tree with the attention
    kernel (self- and cross-attention over 1,500 frames) gives PyTorch's logits."""
    from conftest import SPEECH
    from specvoice.audio import load_audio
    from specvoice.models import load_whisper
    from specvoice.whisper.features import log_mel

    clip = SPEECH / "whisper_jfk.wav"
    if not clip.exists():
        pytest.skip(f"{clip} not found (the shared speech clips)")
    model = load_whisper("tiny.en")  # float32: the attention goes through engine/ops.py (int8 keeps its own)
    decoder = WhisperDecoder(model)
    assert not decoder.exact
    decoder.encode(log_mel(load_audio(clip), model.model.config.num_mel_bins))
    tokenizer = model.tokenizer
    tree = TokenTree.build([tokenizer.sot, tokenizer.no_timestamps], [[843, 523], [400]], max_nodes=8)
    inputs = (torch.tensor(tree.tokens), torch.tensor(tree.depths), torch.arange(len(tree)),
              tree.visibility(0, decoder.device))
    expected = decoder.forward(*inputs)
    with ops.using(TRITON):
        got = decoder.forward(*inputs)
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4)
    assert torch.equal(got.argmax(dim=-1), expected.argmax(dim=-1))
