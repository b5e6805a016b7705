"""Parity with the authors' CBraMod on ../shared/data/reference/cbramod_reference.npz.

The fixture holds a full official state dict (211 tensors, random weights, perturbed norms),
inputs, and the outputs of the authors' implementation in eval mode.

Tolerance. The outputs reach |y| ~ 30 after 12 float32 layers, where one float32 ulp is 1.9e-6.
Measured on this project's 2-core CPU machine with tools/bench/parity_floor.py:

- the authors' own layout (nn.MultiheadAttention, tools/bench/bench_encoder.py), same weights,
  same input, same machine, disagrees with itself by 1.8e-5 to 3.0e-5 (max abs) in float32 when
  only the BLAS/oneDNN code path changes (MKL_CBWR, threads, oneDNN on/off);
- the fixture is 2.8e-5 from a float64 run of the same network (ours and the authors' layout
  agree to 5e-14 in float64), and the authors' layout in float32 here is 2.3e-5 to 3.7e-5 from
  it; this encoder is 1.4e-5 to 3.1e-5 from it, with a mean abs error of 4.6e-6.

So 1e-5 max abs is below the float32 reproducibility of the reference implementation itself; we
assert max abs <= 5e-5 and mean abs <= 1e-5 in float32, and, in float64, that the remaining
difference is the fixture's rounding (max abs <= 5e-5 as well, relative <= 2e-6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from criss_cross import CrissCrossEncoder, EncoderConfig, load_cbramod_checkpoint
from criss_cross.encoder import checkpoint_filter_fn

MAX_ABS = 5e-5
MEAN_ABS = 1e-5

CASES = [  # output key, input key, mask key, head on
    ("out_x1", "x1", None, True),
    ("out_x1_masked", "x1", "mask1", True),
    ("out_x2", "x2", None, True),
    ("features_x1", "x1", None, False),
    ("features_x2", "x2", None, False),
]


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> dict[str, np.ndarray]:
    path = shared_data / "reference" / "cbramod_reference.npz"
    if not path.is_file():
        pytest.skip(f"parity fixture {path} is absent")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _state(ref: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k[len("state/") :]: torch.from_numpy(v) for k, v in ref.items() if k.startswith("state/")}


def test_official_state_dict_loads_strictly(reference):
    state = _state(reference)
    assert len(state) == 211
    assert sum(v.numel() for v in state.values()) == 4_924_000
    model = CrissCrossEncoder()
    result = model.load_state_dict(checkpoint_filter_fn(state, model), strict=True)
    assert result.missing_keys == []
    assert result.unexpected_keys == []
    # the module names are the official key names, one to one
    assert sorted(model.state_dict()) == sorted(state)


def _run(model, reference, inp, mask, dtype):
    x = torch.from_numpy(reference[inp]).to(dtype)
    m = None if mask is None else torch.from_numpy(reference[mask]) == 1
    with torch.no_grad():
        return model.to(dtype)(x, m)


@pytest.mark.parametrize("out_key, inp, mask, head", CASES, ids=[c[0] for c in CASES])
def test_outputs_match_the_authors_implementation(reference, out_key, inp, mask, head):
    config = EncoderConfig(proj_out=head)
    model = load_cbramod_checkpoint(_state(reference), config)
    assert not model.training
    want = torch.from_numpy(reference[out_key])
    got = _run(model, reference, inp, mask, torch.float32)
    assert got.shape == want.shape and got.dtype == torch.float32
    err = (got - want).abs()
    assert err.max().item() <= MAX_ABS, f"{out_key}: max abs error {err.max().item():.2e}"
    assert err.mean().item() <= MEAN_ABS, f"{out_key}: mean abs error {err.mean().item():.2e}"


def test_float64_difference_is_the_fixtures_rounding(reference):
    model = load_cbramod_checkpoint(_state(reference))
    for out_key, inp, mask, _head in CASES[:3]:
        want = torch.from_numpy(reference[out_key]).double()
        got = _run(model, reference, inp, mask, torch.float64)
        err = (got - want).abs().max().item()
        rel = ((got - want).norm() / want.norm()).item()
        assert err <= MAX_ABS and rel <= 2e-6, f"{out_key}: {err:.2e} abs, {rel:.2e} rel"


def test_masked_channel_changes_the_output(reference):
    """Sanity of the masked case: channel 3 is fully masked in mask1."""
    mask = reference["mask1"]
    assert (mask[:, 3] == 1).all()
    assert not np.allclose(reference["out_x1"], reference["out_x1_masked"])
