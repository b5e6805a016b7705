"""Fusion strategies: one interface, gradients everywhere, padded patches ignored, frozen == full."""

from __future__ import annotations

import pytest
import torch

from fusion_emotion.config import FUSIONS, FusionConfig
from fusion_emotion.model import FusionModel
from fusion_emotion.strategies import STRATEGIES, FusionHeads
from fusion_emotion.strategies.cross_attention import CrossBlock

SMALL = {"n_layers": 1, "dim_feedforward": 64}


def _tokens(b: int = 4, p: int = 5, seed: int = 0):
    from fusion_emotion.hep import HEP_DIM

    g = torch.Generator().manual_seed(seed)
    # "hep": the window features the hep strategy reads (the others ignore them)
    return {"eeg": torch.randn(b, p, 200, generator=g), "ecg": torch.randn(b, p, 200, generator=g),
            "hep": torch.randn(b, HEP_DIM, generator=g)}


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("pool", ["flatten", "mean"])
def test_every_strategy_gives_logits_and_every_parameter_a_gradient(fusion, pool):
    model = FusionModel(["eeg", "ecg"], None, n_patches=5, d_model=200, pool=pool, fusion=fusion)
    model.head.reset_parameters(torch.Generator().manual_seed(0))
    logits = model.train()(_tokens())
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert no_grad == []
    # trained under modality dropout, the absent tokens are parameters and get gradients too
    model = FusionModel(["eeg", "ecg"], None, n_patches=5, d_model=200, pool=pool, fusion=fusion,
                        learn_absent=True)
    model.head.reset_parameters(torch.Generator().manual_seed(0))
    model.train()
    prepared = model.forward_features(_tokens())
    absent = {"eeg": torch.tensor([True, False, False, True]), "ecg": torch.tensor([False, True, False, False])}
    model.head(prepared, absent).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert no_grad == []


@pytest.mark.parametrize("fusion", FUSIONS)
def test_padded_patches_change_nothing(fusion):
    """Tokens of padded patches (patch_mask False) may hold anything: the logits stay the same."""
    model = FusionModel(["eeg", "ecg"], None, n_patches=5, d_model=200, pool="mean", fusion=fusion).eval()
    x = _tokens()
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[:2, 3:] = False  # the last two patches of two windows are padding
    y = {m: v.clone() for m, v in x.items()}
    for m in ("eeg", "ecg"):
        y[m][:2, 3:] = 1e3 * torch.randn(2, 2, 200)
    with torch.no_grad():
        assert torch.allclose(model(x, patch_mask=mask), model(y, patch_mask=mask), atol=1e-5)
        # and a mask of all True is the plain mean
        assert torch.allclose(model(x), model(x, patch_mask=torch.ones(4, 5, dtype=torch.bool)), atol=1e-5)


def test_heads_of_one_strategy_share_no_parameter():
    heads = FusionHeads("cross-attention", ["eeg", "ecg"], {"eeg": 200, "ecg": 200}, 5)
    ids = [{id(p) for p in h.parameters()} for h in heads.heads.values()]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])


def test_heads_init_follows_its_generator():
    a = FusionHeads("gated", ["eeg", "ecg"], {"eeg": 200, "ecg": 200}, 5)
    b = FusionHeads("gated", ["eeg", "ecg"], {"eeg": 200, "ecg": 200}, 5)
    a.reset_parameters(torch.Generator().manual_seed(3))
    b.reset_parameters(torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_cross_attention_starts_looking_at_the_same_second():
    block = CrossBlock(width=64, heads=4, n_patches=10)
    bias = block.attn_bias(None, 10, 10)[0]  # (H, P, P)
    for h in range(4):
        assert torch.equal(bias[h].argmax(dim=-1), torch.arange(10))  # the diagonal wins
    assert torch.softmax(bias[0], dim=-1).diagonal().min() > 0.9  # head 0: the same second


def test_cross_attention_with_encoders_equals_cached_tokens():
    """Fine-tune model (encoders inside) and heads-only model on cached tokens agree."""
    from criss_cross import CrissCrossEncoder, EncoderConfig
    from fusion_emotion.encoders import embed_windows

    torch.manual_seed(0)
    enc = {m: CrissCrossEncoder(EncoderConfig(proj_out=False, **SMALL)) for m in ("eeg", "ecg")}
    full = FusionModel(["eeg", "ecg"], enc, n_patches=4, d_model=200, fusion="cross-attention").eval()
    heads = FusionModel(["eeg", "ecg"], None, n_patches=4, d_model=200, fusion="cross-attention").eval()
    heads.head.load_state_dict(full.head.state_dict())
    g = torch.Generator().manual_seed(1)
    x = {"eeg": torch.randn(3, 14, 4, 200, generator=g), "ecg": torch.randn(3, 2, 4, 200, generator=g)}
    cached = {m: torch.from_numpy(embed_windows(enc[m], iter([(x[m].numpy(), None)]), 3, scale=1.0))
              for m in x}
    with torch.no_grad():
        assert torch.allclose(full(x), heads(cached), atol=1e-5)


def test_fusion_option_names_rows():
    assert FusionConfig(fusion="all").fusion == list(FUSIONS)
    assert FusionConfig(fusion=["gated", "concat"]).variants == ["fusion", "fusion-gated", "eeg", "ecg"]
    assert FusionConfig(fusion="late", ablations=False).variants == ["fusion-late"]
    assert FusionConfig(fusion="cross-attention", modalities=["ecg"]).variants == ["ecg"]
    with pytest.raises(ValueError, match="fusion"):
        FusionConfig(fusion="film")
    assert set(STRATEGIES) == set(FUSIONS)
