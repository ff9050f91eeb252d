"""Fused and int8 linear layers: int8 rows never depend on the rest of the batch, and stay close to float."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import specvoice.engine.linear as linear_module
from specvoice.engine.linear import DraftInt8Linear, FusedLinear, RowInt8Linear, fused, quantise_rows


def linear(inputs: int, outputs: int, seed: int, bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(inputs, outputs, bias=bias)


def int8_layer(fixed: bool, reference: torch.nn.Linear) -> RowInt8Linear:
    """An int8 layer on FBGEMM's fixed-quantisation GEMM, or on the dynamic GEMM with its range pinned (the
    path for engines without the fixed one, e.g. QNNPACK on ARM, taken here on FBGEMM)."""
    original = linear_module._fixed_quantisation
    linear_module._fixed_quantisation = lambda: fixed
    try:
        return RowInt8Linear(quantise_rows(reference.weight), reference.bias)
    finally:
        linear_module._fixed_quantisation = original


@settings(max_examples=30, deadline=None)
@given(inputs=st.integers(1, 70), outputs=st.integers(1, 50), rows=st.integers(1, 12), seed=st.integers(0, 99),
       bias=st.booleans(), spread=st.sampled_from([1e-3, 1.0, 1e3]))
@pytest.mark.parametrize("fixed", [True, False], ids=["fixed-quantisation", "pinned-dynamic-range"])
def test_int8_rows_are_bit_identical_alone_or_in_any_batch(inputs, outputs, rows, seed, bias, spread, fixed):
    layer = int8_layer(fixed, linear(inputs, outputs, seed, bias))
    generator = torch.Generator().manual_seed(seed)
    # rows of very different sizes: one batch-wide activation scale would crush the small ones
    x = torch.randn(rows, inputs, generator=generator) * torch.logspace(-1, 1, rows).unsqueeze(1) * spread
    batch = layer(x)
    for i in range(rows):
        assert torch.equal(layer(x[i: i + 1]), batch[i: i + 1])
    assert torch.equal(layer(x[1:]), batch[1:])


def test_int8_is_close_to_float_and_zero_rows_stay_zero():
    reference = linear(512, 256, 0)
    layer = RowInt8Linear(quantise_rows(reference.weight), reference.bias)
    x = torch.randn(6, 512)
    x[3] = 0.0
    expected, got = reference(x), layer(x)
    relative = (got - expected).norm(dim=1) / expected.norm(dim=1)
    assert relative.max() < 0.03
    torch.testing.assert_close(got[3], reference.bias.detach())


@pytest.mark.parametrize("inputs", [512, 37])
def test_a_draft_layer_takes_the_dynamic_gemm_for_a_lone_row_only(inputs):
    """A draft's lone row (its every chain step) goes through the dynamic GEMM, as close to float as the row
    path; several rows get exactly the row path's bits."""
    reference = linear(inputs, 256, 6)
    weight = quantise_rows(reference.weight)
    draft, rows = DraftInt8Linear(weight, reference.bias), RowInt8Linear(weight, reference.bias)
    x = torch.randn(4, inputs) * torch.logspace(-2, 2, 4).unsqueeze(1)
    assert torch.equal(draft(x), rows(x))
    for row in x.split(1):
        expected = reference(row)
        lone, by_row = draft(row), rows(row)
        assert not torch.equal(lone, by_row)  # the other GEMM ran
        assert (lone - expected).norm() / expected.norm() < 0.03
    assert isinstance(fused(reference, int8=True, draft=True), DraftInt8Linear)
    assert type(fused(reference, int8=True)) is RowInt8Linear


def test_fused_projections_equal_the_separate_ones_with_the_scale_folded_in():
    q, k, v = linear(32, 32, 1), linear(32, 32, 2, bias=False), linear(32, 32, 3)
    x = torch.randn(5, 32)
    for int8, tolerance in ((False, 1e-5), (True, 0.05)):
        out = fused(q, k, v, int8=int8, scale=0.125)(x)
        expected = torch.cat([q(x) * 0.125, k(x), v(x)], dim=1)
        assert out.shape == (5, 96)
        torch.testing.assert_close(out, expected, rtol=tolerance, atol=tolerance * expected.abs().max().item())
    assert isinstance(fused(q), FusedLinear)


@pytest.mark.skipif(not linear_module._fixed_quantisation(), reason="the int8 engine is not FBGEMM")
@pytest.mark.parametrize("inputs", [512, 37])
def test_both_int8_paths_give_the_same_bits(inputs):
    reference = linear(inputs, 64, 5)
    x = torch.randn(7, inputs) * torch.logspace(-2, 2, 7).unsqueeze(1)
    assert torch.equal(int8_layer(True, reference)(x), int8_layer(False, reference)(x))


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed-quantisation", "pinned-dynamic-range"])
def test_activations_take_8_bits_only_where_the_gemm_does_not_overflow(fixed):
    """The probe's choice holds in a layer: the worst case for int16 pair sums (every activation and every
    weight at its largest) comes out right, whichever width the probe chose."""
    scale, zero_point, _ = linear_module.unit_quantisation(fixed)
    assert (scale, zero_point) in ((2 / 255, 128), (2 / 127, 64))
    reference = torch.nn.Linear(256, 4, bias=False).requires_grad_(False)
    reference.weight.fill_(1.0)
    got = int8_layer(fixed, reference)(torch.ones(1, 256))
    torch.testing.assert_close(got, torch.full((1, 4), 256.0), rtol=0.01, atol=0)  # overflow loses half


def test_a_gemm_that_overflows_8_bit_activations_gets_7(monkeypatch):
    linear_module.unit_quantisation.cache_clear()
    monkeypatch.setattr(linear_module, "_FIXED_GEMM", lambda x, *args: x[:, :1] * x.shape[1] / 2)  # half lost
    try:
        assert linear_module.unit_quantisation(True) == (2 / 127, 64, True)
    finally:
        monkeypatch.undo()
        linear_module.unit_quantisation.cache_clear()
    assert linear_module.unit_quantisation(True) == (2 / 255, 128, False) or not _has_vnni()


def _has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(flag in cpuinfo.read() for flag in (" avx512_vnni", " avx_vnni"))
    except OSError:
        return False
