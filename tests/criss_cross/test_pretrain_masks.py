"""What pretraining masks and counts: never a zero-filled lead, never a padded patch."""

from __future__ import annotations

import torch

import criss_cross.losses as losses
import criss_cross.pretrain as pretrain_mod
from criss_cross.pretrain import pretrain


def _wrap_loader(monkeypatch, edit):
    """Let ``edit(batch)`` change every batch the pretraining loop receives."""
    make = pretrain_mod.make_loader

    def loader(*args, **kwargs):
        for batch in make(*args, **kwargs):
            yield edit(batch)

    monkeypatch.setattr(pretrain_mod, "make_loader", loader)


def _record_loss_inputs(monkeypatch):
    seen: list[dict] = []

    class Recording(losses.DualMaskingLoss):
        def forward(self, pred, target, mask, masked_channels=None, valid_channels=None,
                    **kw):
            seen.append({"mask": mask.clone(), "masked_channels": masked_channels.clone(),
                         "valid_channels": valid_channels.clone(), **kw})
            return super().forward(pred, target, mask, masked_channels=masked_channels,
                                   valid_channels=valid_channels, **kw)

    monkeypatch.setattr(losses, "DualMaskingLoss", Recording)
    return seen


def test_whole_lead_masking_never_picks_a_zero_filled_lead(tiny_config, tmp_path, monkeypatch):
    """Half the leads zero-filled (channel_mask False): the masked leads are all valid ones,
    and round(r_c * n_valid) of them per window (today's bug: drawn among all leads)."""

    def zero_fill(batch):
        batch["windows"][:, ::2] = 0.0
        batch["channel_mask"][:, ::2] = False
        return batch

    _wrap_loader(monkeypatch, zero_fill)
    seen = _record_loss_inputs(monkeypatch)
    pretrain(tiny_config(steps=8, channel_mask_proportion=0.5), tmp_path / "run",
             progress=False)
    assert len(seen) == 2 * 8  # the loss and zero_mse, each step
    for s in seen:
        picked, valid = s["masked_channels"], s["valid_channels"]
        assert not (picked & ~valid).any()
        n_valid = valid.sum(dim=1)
        assert torch.equal(picked.sum(dim=1), torch.floor(0.5 * n_valid + 0.5).long())
