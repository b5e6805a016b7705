"""PrepConfig: the contract's defaults, YAML/JSON loading, and validation messages."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from biosig_prep.config import CANONICAL_LEADS, DreamerConfig, FilterConfig, PrepConfig, QCConfig


def test_defaults_match_the_contract():
    c = PrepConfig()
    assert c.rates == [100, 200, 500, 1000]
    assert (c.n_patches, c.patch_size, c.window_step, c.pad) == (10, 200, None, "none")
    assert c.window_samples == 2000
    assert (c.ecg.l_freq, c.ecg.h_freq, c.ecg.order, c.ecg.notch) == (0.5, 40.0, 4, "auto")
    assert (c.eeg.l_freq, c.eeg.h_freq, c.eeg.order, c.eeg.notch) == (0.3, 75.0, 4, "auto")
    assert (c.qc.flat_std_mv, c.qc.flat_std_uv, c.qc.max_abs_mv, c.qc.max_abs_uv,
            c.qc.saturation_seconds) == (1e-4, 0.1, 20.0, 5000.0, 0.04)  # runs at the extreme, not a fraction (issue 10 item 7)
    d = c.dreamer
    assert (d.rate, d.window_seconds, d.step_seconds, d.include_baseline, d.ecg_scale) == (
        200, 10.0, None, False, 3000.0 / 175.0 / 4095.0)  # Shimmer2 counts -> mV (issue 10)
    assert d.eeg.h_freq < 64.0  # DREAMER EEG is sampled at 128 Hz
    assert c.leads == list(CANONICAL_LEADS)
    assert c.leads == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_defaults_are_not_shared_between_instances():
    a, b = PrepConfig(), PrepConfig()
    a.ecg.notch = 60
    a.rates.append(250)
    assert b.ecg.notch == "auto" and b.rates == [100, 200, 500, 1000]


def test_dump_round_trips_through_json():
    c = PrepConfig(rates=[200, 500], ecg=FilterConfig(notch=60))
    dumped = c.model_dump(mode="json")
    json.dumps(dumped)  # JSON-serialisable: it goes into the store's root attrs
    assert PrepConfig.model_validate(dumped) == c


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_from_file(tmp_path, suffix):
    settings = {"rates": [200, 500], "ecg": {"notch": 60, "h_freq": 45.0},
                "qc": {"max_abs_mv": 15.0}, "dreamer": {"include_baseline": True}}
    path = tmp_path / f"prep{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(settings))
    else:
        import yaml

        path.write_text(yaml.safe_dump(settings))
    c = PrepConfig.from_file(path)
    assert c.rates == [200, 500]
    assert c.ecg.notch == 60 and c.ecg.h_freq == 45.0 and c.ecg.l_freq == 0.5
    assert c.qc.max_abs_mv == 15.0 and c.dreamer.include_baseline is True
    assert c.eeg == PrepConfig().eeg


def test_to_file_round_trip(tmp_path):
    c = PrepConfig(rates=[100, 1000], pad="zero", window_step=1000)
    for name in ("c.yaml", "c.json"):
        c.to_file(tmp_path / name)
        assert PrepConfig.from_file(tmp_path / name) == c


def test_empty_yaml_gives_defaults(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert PrepConfig.from_file(tmp_path / "empty.yaml") == PrepConfig()


def test_from_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        PrepConfig.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json could not be parsed"):
        PrepConfig.from_file(bad)
    seq = tmp_path / "list.yaml"
    seq.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        PrepConfig.from_file(seq)
    typo = tmp_path / "typo.yaml"
    typo.write_text("ratez: [100]\n")
    with pytest.raises(ValidationError, match="ratez"):
        PrepConfig.from_file(typo)


@pytest.mark.parametrize("value, expected", [
    ("auto", "auto"), ("off", "off"), ("OFF", "off"), (None, "off"), (50, 50), (60, 60),
    ("60", 60), (50.0, 50), ("50", 50),
])
def test_notch_values(value, expected):
    assert FilterConfig(notch=value).notch == expected


@pytest.mark.parametrize("value", [55, "55", "sometimes", 0])
def test_notch_rejects_other_values(value):
    with pytest.raises(ValidationError, match="notch must be 'auto', 'off', 50 or 60"):
        FilterConfig(notch=value)


def test_band_validation():
    with pytest.raises(ValidationError, match=r"l_freq \(45.0\) must be less than h_freq \(40.0\)"):
        FilterConfig(l_freq=45.0, h_freq=40.0)
    with pytest.raises(ValidationError, match="greater than 0"):
        FilterConfig(l_freq=-1.0)
    assert FilterConfig(l_freq=None, h_freq=None).l_freq is None  # no band-pass at all


def test_rates_parse_and_validate():
    assert PrepConfig(rates="500, 100,200").rates == [100, 200, 500]
    with pytest.raises(ValidationError, match="comma-separated integers"):
        PrepConfig(rates="100,fast")
    with pytest.raises(ValidationError, match="positive"):
        PrepConfig(rates=[0, 100])
    with pytest.raises(ValidationError, match="must not repeat"):
        PrepConfig(rates=[100, 100])
    with pytest.raises(ValidationError, match="at least one"):
        PrepConfig(rates=[])


def test_dreamer_window_must_match_patches():
    with pytest.raises(ValidationError, match=r"dreamer.window_seconds \(5.0\) x dreamer.rate "
                                              r"\(200\) = 1000 samples must equal n_patches x "
                                              r"patch_size = 2000"):
        PrepConfig(dreamer=DreamerConfig(window_seconds=5.0))
    assert PrepConfig(n_patches=5, dreamer=DreamerConfig(window_seconds=5.0)).window_samples == 1000
    with pytest.raises(ValidationError, match="whole number of samples"):
        PrepConfig(dreamer=DreamerConfig(step_seconds=0.0025))


def test_qc_and_leads_validation():
    with pytest.raises(ValidationError):
        QCConfig(saturation_seconds=0)
    assert QCConfig().flat_leads == "mask"
    with pytest.raises(ValidationError, match="must not repeat"):
        PrepConfig(leads=["I", "i"])
