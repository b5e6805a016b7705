"""Masks: shapes, statistics, exact channel counts, reproducibility."""

from __future__ import annotations

import pytest
import torch

from criss_cross.masking import (
    DEFAULT_CHANNEL_PROPORTION,
    DEFAULT_PATCH_RATIO,
    channel_mask,
    dual_mask,
    n_masked_channels,
    patch_mask,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("ratio", [0.0, 0.15, 0.5, 0.9, 1.0])
def test_patch_mask_ratio(ratio):
    m = patch_mask((400, 12, 10), ratio, gen())
    assert m.shape == (400, 12, 10) and m.dtype == torch.bool
    # 48,000 Bernoulli draws: the standard error is <= 0.0023
    assert abs(m.float().mean().item() - ratio) < 0.01
    if ratio in (0.0, 1.0):
        assert m.float().mean().item() == ratio


@pytest.mark.parametrize(
    "c, proportion, k",
    [(12, 0.25, 3), (12, 0.5, 6), (2, 0.25, 1), (14, 0.1, 1), (5, 0.5, 3), (1, 0.25, 0),
     (1, 0.5, 1), (12, 0.0, 0), (12, 1.0, 12), (7, 0.3, 2)],
)
def test_channel_mask_masks_exactly_round_rc_c_channels(c, proportion, k):
    assert n_masked_channels(c, proportion) == k
    m = channel_mask((300, c, 10), proportion, gen())
    assert m.shape == (300, c) and m.dtype == torch.bool
    assert (m.sum(dim=1) == k).all()


def test_channel_choice_is_uniform():
    m = channel_mask((20_000, 12), 0.25, gen(3))
    freq = m.float().mean(dim=0)  # each channel: 3/12 = 0.25
    assert (freq - 0.25).abs().max() < 0.015
    # all C(12, 3) = 220 subsets occur
    codes = (m.long() * (2 ** torch.arange(12))).sum(dim=1)
    assert codes.unique().numel() == 220


def test_masks_are_reproducible_with_the_same_seed():
    a = dual_mask((8, 12, 10), 0.5, 0.25, gen(42))
    b = dual_mask((8, 12, 10), 0.5, 0.25, gen(42))
    c = dual_mask((8, 12, 10), 0.5, 0.25, gen(43))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    # the global RNG plays no part
    torch.manual_seed(0)
    d = patch_mask((8, 12, 10), 0.5, gen(1))
    torch.manual_seed(1)
    assert torch.equal(d, patch_mask((8, 12, 10), 0.5, gen(1)))


def test_dual_mask_is_the_union():
    g = gen(7)
    mask, chans = dual_mask((500, 12, 10), DEFAULT_PATCH_RATIO, DEFAULT_CHANNEL_PROPORTION, g)
    assert mask.shape == (500, 12, 10) and chans.shape == (500, 12)
    assert (chans.sum(dim=1) == 3).all()
    assert mask[chans].all()  # every patch of a masked channel is masked
    # outside the masked channels the patches follow Bernoulli(r)
    outside = mask[~chans]
    assert abs(outside.float().mean().item() - 0.5) < 0.01
    # the same as drawing the two masks in turn from one generator
    g2 = gen(7)
    p = patch_mask((500, 12, 10), 0.5, g2)
    c = channel_mask((500, 12, 10), 0.25, g2)
    assert torch.equal(mask, p | c[..., None]) and torch.equal(chans, c)


def test_valid_channels_are_the_only_candidates():
    valid = torch.ones(200, 12, dtype=torch.bool)
    valid[:, 6:] = False  # a 6-lead record zero-filled to 12
    valid[0, :] = False
    m = channel_mask((200, 12), 0.25, gen(), valid_channels=valid)
    assert not (m & ~valid).any()
    assert (m[1:].sum(dim=1) == 2).all()  # round(0.25 * 6) = 2 (1.5 rounds up)
    assert m[0].sum() == 0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\], got 1.5"):
        patch_mask((2, 3, 4), 1.5, gen())
    with pytest.raises(ValueError, match="proportion must be in"):
        channel_mask((2, 3), -0.1, gen())
    with pytest.raises(ValueError, match=r"shape must be \(B, C, P\)"):
        patch_mask((2, 3), 0.5, gen())
    with pytest.raises(ValueError, match=">= 1"):
        dual_mask((2, 0, 4), 0.5, 0.25, gen())
    with pytest.raises(TypeError, match="torch.Generator"):
        patch_mask((2, 3, 4), 0.5, 0)
    with pytest.raises(ValueError, match="valid_channels must have shape"):
        channel_mask((2, 3), 0.5, gen(), valid_channels=torch.ones(2, 4, dtype=torch.bool))
