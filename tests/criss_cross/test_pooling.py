"""masked_mean: the one averaging rule of embed, the probe and fusion-emotion."""

from __future__ import annotations

import pytest
import torch

from criss_cross.pooling import masked_mean


def test_masked_mean_counts_only_valid_entries():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 2, generator=g)
    valid = torch.tensor([[True, False, True, True], [False] * 4, [True] * 4])
    got = masked_mean(x, valid, dim=1)
    assert got.shape == (3, 5, 2)
    torch.testing.assert_close(got[0], x[0, [0, 2, 3]].mean(dim=0))
    assert torch.equal(got[1], torch.zeros(5, 2))  # nothing valid: zeros, not NaN
    torch.testing.assert_close(got[2], x[2].mean(dim=0))
    torch.testing.assert_close(masked_mean(x, None, dim=1), x.mean(dim=1))
    # patches of (B, P, D): the padded tail of a window never moves the mean
    tail = torch.tensor([[True] * 3 + [False] * 2] * 3)
    y = x[:, 0].clone()
    y[:, 3:] = 1e6
    torch.testing.assert_close(masked_mean(y, tail, dim=1), x[:, 0, :3].mean(dim=1))
    with pytest.raises(ValueError, match="leading axes"):
        masked_mean(x, valid.T, dim=1)  # a transposed mask would broadcast silently
