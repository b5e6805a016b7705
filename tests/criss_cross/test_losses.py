"""Objectives against hand-computed values on tiny tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from criss_cross.losses import DualMaskingLoss, LossOutput, MaskedReconstructionLoss

T, F_ = True, False


def tiny():
    """B=1, C=2, P=2, S=2 with target 0: per-patch MSEs are 1, 9 (channel 0), 9, 2 (channel 1)."""
    pred = torch.tensor([[[[1.0, 1.0], [3.0, 3.0]], [[3.0, 3.0], [0.0, 2.0]]]], requires_grad=True)
    target = torch.zeros(1, 2, 2, 2)
    mask = torch.tensor([[[T, F_], [T, T]]])  # channel 1 masked whole, channel 0 patch 0
    masked_channels = torch.tensor([[F_, T]])
    return pred, target, mask, masked_channels


def close(a, b):
    return torch.testing.assert_close(torch.as_tensor(a).float(), torch.tensor(float(b)))


def test_masked_reconstruction_loss_by_hand():
    pred, target, mask, _ = tiny()
    out = MaskedReconstructionLoss()(pred, target, mask)
    assert isinstance(out, LossOutput)
    close(out.total, (1 + 9 + 2) / 3)  # masked patches: 1, 9, 2
    close(out.terms["patch"], 4.0)
    close(out.weights["patch"], 1.0)
    # the pooled MSE of CBraMod: mse(pred[mask], target[mask])
    torch.testing.assert_close(out.total, F.mse_loss(pred[mask], target[mask]))


def test_dual_masking_loss_by_hand():
    pred, target, mask, chans = tiny()
    out = DualMaskingLoss()(pred, target, mask, chans)
    # L_patch = (1 + 9 + 2) / 3 = 4; L_masked_ch = (9 + 2) / 2 = 5.5; L_unmasked_ch = (1 + 9) / 2
    # = 5; L_channel = 5.25; L = 0.5 * 4 + 0.5 * 5.25 = 4.625
    close(out.terms["patch"], 4.0)
    close(out.terms["masked_channels"], 5.5)
    close(out.terms["unmasked_channels"], 5.0)
    close(out.terms["channel"], 5.25)
    close(out.total, 4.625)
    assert {k: round(v.item(), 6) for k, v in out.weights.items()} == {
        "patch": 0.5, "masked_channels": 0.25, "unmasked_channels": 0.25,
    }
    out.total.backward()
    assert torch.isfinite(pred.grad).all()


def test_no_masked_channel_renormalises_the_channel_term():
    pred, target, _, _ = tiny()
    mask = torch.tensor([[[T, F_], [F_, F_]]])
    chans = torch.tensor([[F_, F_]])
    out = DualMaskingLoss()(pred, target, mask, chans)
    # L_patch = 1; L_channel = L_unmasked = (1 + 9 + 9 + 2) / 4 = 5.25; L = 0.5 + 2.625
    close(out.terms["masked_channels"], 0.0)
    close(out.terms["channel"], 5.25)
    close(out.total, 3.125)
    close(out.weights["masked_channels"], 0.0)
    close(out.weights["unmasked_channels"], 0.5)


def test_no_masked_patch_leaves_the_channel_term_alone():
    pred, target, _, _ = tiny()
    none = torch.zeros(1, 2, 2, dtype=torch.bool)
    out = DualMaskingLoss()(pred, target, none, torch.tensor([[F_, F_]]))
    close(out.total, 5.25)
    close(out.weights["patch"], 0.0)
    close(out.weights["unmasked_channels"], 1.0)
    out = MaskedReconstructionLoss()(pred, target, none)
    close(out.total, 0.0)
    assert not torch.isnan(out.total)


def test_all_terms_empty_gives_zero_not_nan_and_backpropagates():
    pred, target, mask, chans = tiny()
    nothing_valid = torch.zeros(1, 2, dtype=torch.bool)
    out = DualMaskingLoss()(pred, target, mask, chans, valid_channels=nothing_valid)
    close(out.total, 0.0)
    assert all(not torch.isnan(v) for v in out.terms.values())
    assert all(v.item() == 0 for v in out.weights.values())
    out.total.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_valid_channels_exclude_a_lead_from_every_term():
    pred, target, mask, chans = tiny()
    valid = torch.tensor([[T, F_]])
    out = DualMaskingLoss()(pred, target, mask, chans, valid_channels=valid)
    # channel 1 gone: L_patch = 1 (channel 0, patch 0); no masked channel left;
    # L_channel = L_unmasked = (1 + 9) / 2 = 5; L = 0.5 * 1 + 0.5 * 5 = 3
    close(out.terms["patch"], 1.0)
    close(out.terms["channel"], 5.0)
    close(out.total, 3.0)
    base = out.total.detach()
    pred2 = pred.detach().clone()
    pred2[:, 1] += 100.0  # whatever is predicted for the excluded lead does not count
    again = DualMaskingLoss()(pred2, target, mask, chans, valid_channels=valid)
    assert torch.equal(again.total, base)
    out = MaskedReconstructionLoss()(pred, target, mask, valid_channels=valid)
    close(out.total, 1.0)


def test_custom_weights():
    pred, target, mask, chans = tiny()
    out = DualMaskingLoss(patch_weight=1.0)(pred, target, mask, chans)
    close(out.total, 4.0)
    out = DualMaskingLoss(patch_weight=0.0, masked_channel_weight=1.0)(pred, target, mask, chans)
    close(out.total, 5.5)
    with pytest.raises(ValueError, match="patch_weight"):
        DualMaskingLoss(patch_weight=2.0)


def test_errors():
    pred, target, mask, chans = tiny()
    with pytest.raises(ValueError, match="needs masked_channels"):
        DualMaskingLoss()(pred, target, mask)
    with pytest.raises(ValueError, match="mask must have shape"):
        MaskedReconstructionLoss()(pred, target, mask[:, :1])
    with pytest.raises(ValueError, match="pred and target"):
        MaskedReconstructionLoss()(pred, target[..., :1], mask)
    with pytest.raises(ValueError, match="masked_channels must have shape"):
        DualMaskingLoss()(pred, target, mask, chans[:, :1])


def test_random_inputs_match_the_definition():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 6, 5, 8, generator=g), torch.randn(4, 6, 5, 8, generator=g)
    chans = torch.rand(4, 6, generator=g) < 0.3
    mask = (torch.rand(4, 6, 5, generator=g) < 0.5) | chans[..., None]
    out = DualMaskingLoss()(pred, target, mask, chans)
    l_patch = F.mse_loss(pred[mask], target[mask])
    l_mc = F.mse_loss(pred[chans], target[chans])
    l_uc = F.mse_loss(pred[~chans], target[~chans])
    torch.testing.assert_close(out.total, 0.5 * l_patch + 0.25 * l_mc + 0.25 * l_uc)
