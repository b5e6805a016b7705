"""Canonical lead order: case-insensitive matching, aliases, zero-fill and mask."""

from __future__ import annotations

import numpy as np
import pytest

from biosig_prep.dsp.leads import CANONICAL_LEADS, match_leads, normalize_lead_name, reorder_leads


def test_canonical_order():
    assert CANONICAL_LEADS == ("I", "II", "III", "aVR", "aVL", "aVF",
                               "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.mark.parametrize("name, expected", [
    ("AVR", "avr"), ("avr", "avr"), ("aVR", "avr"), ("Lead aVR", "avr"), ("ECG aVR", "avr"),
    ("ECG_V1", "v1"), ("v1", "v1"), ("DII", "ii"), ("D3", "iii"), ("MLII", "ii"), (" I ", "i"),
    ("EKG-II", "ii"),
])
def test_normalize(name, expected):
    assert normalize_lead_name(name) == expected


def test_reorder_shuffled_upper_case_leads():
    names = ["V6", "AVR", "I", "V1", "AVF", "II", "V3", "AVL", "V2", "III", "V5", "V4"]
    x = np.stack([np.full(4, float(i)) for i in range(12)])  # row i holds the value i
    out, mask = reorder_leads(x, names)
    assert mask.all()
    for k, lead in enumerate(CANONICAL_LEADS):
        src = [n.lower() for n in names].index(lead.lower())
        np.testing.assert_array_equal(out[k], x[src])


def test_missing_leads_are_zero_filled_and_masked():
    names = ["II", "I"]  # the Challenge's 2-lead set, in another order
    x = np.array([[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    out, mask = reorder_leads(x, names)
    assert out.shape == (12, 3)
    assert mask.tolist() == [True, True] + [False] * 10
    np.testing.assert_array_equal(out[0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out[1], [2.0, 2.0, 2.0])
    assert not out[2:].any()


def test_six_lead_set():
    names = ["I", "II", "III", "aVR", "aVL", "aVF"]
    out, mask = reorder_leads(np.ones((6, 5)), names)
    assert mask.tolist() == [True] * 6 + [False] * 6
    assert out[:6].all() and not out[6:].any()


def test_unknown_channels_are_dropped_and_duplicates_take_the_first():
    names = ["I", "Resp", "I", "V1"]
    x = np.array([[1.0], [9.0], [7.0], [3.0]])
    assert match_leads(names)[:7] == [0, None, None, None, None, None, 3]
    out, mask = reorder_leads(x, names)
    assert out[0, 0] == 1.0 and out[6, 0] == 3.0 and mask.sum() == 2


def test_custom_order():
    out, mask = reorder_leads(np.array([[1.0], [2.0]]), ["V1", "II"], order=["II", "V1", "V2"])
    assert out[:, 0].tolist() == [2.0, 1.0, 0.0] and mask.tolist() == [True, True, False]


def test_shape_is_checked():
    with pytest.raises(ValueError, match="n_channels=2"):
        reorder_leads(np.ones((3, 4)), ["I", "II"])
