"""What pretraining masks and counts: never a zero-filled lead, never a padded patch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import criss_cross.losses as losses
import criss_cross.pretrain.loop as pretrain_mod
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
            seen.append({"mask": mask.clone(), "target": target.detach().clone(), "masked_channels": masked_channels.clone(),
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


def test_padded_patches_are_never_masked_nor_counted(tiny_config, tmp_path, monkeypatch):
    """Windows whose last two patches are padding (patch_mask False, zeros on input): no mask
    falls there, and the loss gets the patch mask (so no term nor zero_mse counts them)."""
    pads: list[torch.Tensor] = []

    def pad_tail(batch):
        b, _, p, _ = batch["windows"].shape
        pm = torch.ones(b, p, dtype=torch.bool)
        pm[1::2, -2:] = False  # every other window ends in two padded patches
        batch["windows"][~pm[:, None, :, None].expand_as(batch["windows"])] = 0.0
        batch["patch_mask"] = pm
        pads.append(pm)
        return batch

    _wrap_loader(monkeypatch, pad_tail)
    seen = _record_loss_inputs(monkeypatch)
    summary = pretrain(tiny_config(steps=6), tmp_path / "run", progress=False)
    assert len(seen) == 12
    for i, s in enumerate(seen):
        pm = pads[i // 2]
        assert not (s["mask"] & ~pm[:, None, :]).any()
        assert s["mask"][:, :, :2].any()  # the valid patches still get masked
        assert torch.equal(s["valid_patches"], pm)
    # zero_mse: the loss of a zero prediction over the same valid masked patches
    s = seen[1]
    sq = s["target"].square().mean(dim=-1)
    sel = s["mask"] & s["valid_channels"][:, :, None] & pads[0][:, None, :]
    chans = s["masked_channels"][:, :, None] & s["valid_channels"][:, :, None] & pads[0][:, None]
    rest = ~s["masked_channels"][:, :, None] & s["valid_channels"][:, :, None] & pads[0][:, None]
    expect = 0.5 * sq[sel].mean() + 0.25 * sq[chans.expand_as(sq)].mean() \
        + 0.25 * sq[rest.expand_as(sq)].mean()
    assert summary.zero_mses[0] == pytest.approx(expect.item(), rel=1e-5)


def test_masks_are_unchanged_when_every_patch_is_valid():
    from criss_cross.masking import dual_mask

    shape = (4, 6, 5)
    a, ca = dual_mask(shape, 0.5, 0.34, torch.Generator().manual_seed(3))
    b, cb = dual_mask(shape, 0.5, 0.34, torch.Generator().manual_seed(3),
                      valid_channels=torch.ones(4, 6, dtype=torch.bool),
                      valid_patches=torch.ones(4, 5, dtype=torch.bool))
    assert torch.equal(a, b) and torch.equal(ca, cb)
    vp = torch.ones(4, 5, dtype=torch.bool)
    vp[:, 3:] = False
    m, ch = dual_mask(shape, 1.0, 0.5, torch.Generator().manual_seed(3), valid_patches=vp)
    assert torch.equal(m, vp[:, None, :].expand(shape))  # ratio 1: every valid patch, only
    assert ch.sum(dim=1).tolist() == [3, 3, 3, 3]
    with pytest.raises(ValueError, match=r"valid_patches must have shape \(B, P\)"):
        dual_mask(shape, 0.5, 0.5, torch.Generator(), valid_patches=vp[:, :4])


def _hand_case():
    """pred 0, target constant v per patch: the per-patch MSE is v**2 =
    [[1, 4, 9], [16, 25, 36]]; patch 2 is padding; channel 0 is masked whole, and channel 1's
    patches 0 and 2 (the padded one) are masked."""
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    target = v[None, :, :, None].expand(1, 2, 3, 2).clone()
    pred = torch.zeros_like(target)
    mask = torch.tensor([[[True, True, True], [True, False, True]]])
    masked_ch = torch.tensor([[True, False]])
    valid_ch = torch.ones(1, 2, dtype=torch.bool)
    valid_p = torch.tensor([[True, True, False]])
    return pred, target, mask, masked_ch, valid_ch, valid_p


def test_dual_loss_leaves_padded_patches_out_by_hand():
    from criss_cross.losses import DualMaskingLoss, MaskedReconstructionLoss

    pred, target, mask, masked_ch, valid_ch, valid_p = _hand_case()
    out = DualMaskingLoss()(pred, target, mask, masked_channels=masked_ch,
                           valid_channels=valid_ch, valid_patches=valid_p)
    # patch: masked valid patches (0,0) (0,1) (1,0): (1 + 4 + 16) / 3 = 7
    # masked channel 0, valid patches: (1 + 4) / 2 = 2.5; unmasked channel 1: (16 + 25) / 2
    # channel = (2.5 + 20.5) / 2 = 11.5; total = (7 + 11.5) / 2 = 9.25
    assert out.terms["patch"].item() == pytest.approx(7.0)
    assert out.terms["masked_channels"].item() == pytest.approx(2.5)
    assert out.terms["unmasked_channels"].item() == pytest.approx(20.5)
    assert out.total.item() == pytest.approx(9.25)
    # what the padded patch would have done: (1+4+9+16+36)/5 and 14/3, 77/3
    old = DualMaskingLoss()(pred, target, mask, masked_channels=masked_ch,
                           valid_channels=valid_ch)
    assert old.terms["patch"].item() == pytest.approx(66 / 5)
    # a prediction on the padded patch changes nothing
    pred2 = pred.clone()
    pred2[:, :, 2] = 100.0
    again = DualMaskingLoss()(pred2, target, mask, masked_channels=masked_ch,
                             valid_channels=valid_ch, valid_patches=valid_p)
    assert again.total.item() == out.total.item()
    single = MaskedReconstructionLoss()(pred, target, mask, valid_patches=valid_p)
    assert single.total.item() == pytest.approx(7.0)
    with pytest.raises(ValueError, match=r"valid_patches must have shape \(B, P\)"):
        MaskedReconstructionLoss()(pred, target, mask, valid_patches=valid_p[:, :2])


def test_embed_pools_over_valid_patches_only():
    from criss_cross import CrissCrossEncoder, EncoderConfig

    torch.manual_seed(0)
    model = CrissCrossEncoder(EncoderConfig(d_model=50, patch_size=50, n_heads=2, n_layers=1,
                                            dim_feedforward=100, proj_out=False)).eval()
    x = torch.randn(3, 4, 5, 50)
    vp = torch.tensor([[True] * 5, [True, True, True, False, False], [True] + [False] * 4])
    x[~vp[:, None, :, None].expand_as(x)] = 0.0
    vc = torch.ones(3, 4, dtype=torch.bool)
    with torch.no_grad():
        per_patch = model.embed(x, pool="channels", valid_channels=vc)
        got = model.embed(x, pool="all", valid_channels=vc, valid_patches=vp)
        plain = model.embed(x, pool="all", valid_channels=vc)
    for i, n in enumerate([5, 3, 1]):
        torch.testing.assert_close(got[i], per_patch[i, :n].mean(dim=0))
    torch.testing.assert_close(got[0], plain[0])
    assert not torch.allclose(got[1], plain[1])


def test_embed_store_pools_over_the_streams_patch_mask(cinc_store, tmp_path, monkeypatch):
    """A stream with a patch_mask (store schema 2): pool "all" leaves its padded patches out,
    and the mask is copied beside the embeddings."""
    import biosig_prep
    from criss_cross import CrissCrossEncoder, EncoderConfig
    from criss_cross.embed import embed_store, read_embeddings

    real_open = biosig_prep.open_store
    stream = real_open(cinc_store).stream("ecg@200")
    n, _, p, _ = stream.windows.shape
    pm = np.ones((n, p), dtype=bool)
    pm[::3, -1] = False

    class WithPatchMask:  # the tiny store's windows divide its 10 s records: no real tails
        def __init__(self, inner):
            self._inner, self.patch_mask = inner, pm

        def patch_masks(self, start=0, stop=None):
            return pm[start:stop]

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def __len__(self):
            return len(self._inner)

    class Opened:
        def __init__(self, url):
            self._store = real_open(url)

        def stream(self, name):
            return WithPatchMask(self._store.stream(name))

    monkeypatch.setattr(biosig_prep, "open_store", Opened)
    torch.manual_seed(0)
    model = CrissCrossEncoder(EncoderConfig(d_model=50, patch_size=50, n_heads=2, n_layers=1,
                                            dim_feedforward=100, proj_out=False)).eval()
    got = read_embeddings(embed_store(model, cinc_store, "ecg@200", tmp_path / "e.zarr",
                                      pool="all"))
    np.testing.assert_array_equal(got["patch_mask"], pm)
    raw = stream.read(0, 4)
    with torch.no_grad():
        per_patch = model.embed(torch.from_numpy(raw["windows"]), pool="channels",
                                valid_channels=torch.from_numpy(raw["channel_mask"]))
    np.testing.assert_allclose(got["embeddings"][0], per_patch[0, :-1].mean(0).numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["embeddings"][1], per_patch[1].mean(0).numpy(),
                               rtol=1e-4, atol=1e-5)
