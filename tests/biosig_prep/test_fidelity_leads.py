"""Issue 10 item 1: a stream's channels are the canonical layout of its modality, decided
before any record; one odd record never decides them (real Challenge records)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from biosig_prep import convert, open_store
from biosig_prep.config import CANONICAL_LEADS
from biosig_prep.dsp.leads import UNNAMED_NOTE, LeadMappingError, map_ecg_leads, stream_channels

pytestmark = pytest.mark.real_data


def _copy(shared: Path, stem: str, dst: Path, new_stem: str | None = None,
          edit=None) -> None:
    src = shared / "ecg" / "cinc2021"
    new_stem = new_stem or stem
    text = (src / f"{stem}.hea").read_text()
    text = text.replace(f"{stem}.mat", f"{new_stem}.mat").replace(stem, new_stem, 1)
    lines = text.splitlines()
    if edit is not None:
        lines = edit(lines)
    (dst / f"{new_stem}.hea").write_text("\n".join(lines) + "\n")
    shutil.copyfile(src / f"{stem}.mat", dst / f"{new_stem}.mat")


def _unnamed(lines: list[str]) -> list[str]:
    """Each signal line cut after the checksum / block-size fields (no description)."""
    n_sig = int(lines[0].split()[1])
    return [lines[0]] + [" ".join(ln.split()[:8]) for ln in lines[1:1 + n_sig]] + \
        lines[1 + n_sig:]


def _v4_mat(path: Path, val: np.ndarray) -> None:
    """A MATLAB v4 file holding ``val`` (int16, rows x columns) as the Challenge ships it."""
    val = np.asarray(val, dtype="<i2")
    head = np.array([30, val.shape[0], val.shape[1], 0, 4], dtype="<i4").tobytes()
    path.write_bytes(head + b"val\0" + val.tobytes(order="F"))


def _single_ecg(lines: list[str]) -> list[str]:
    """One signal, named ``ECG``."""
    first = lines[0].split()
    first[1] = "1"
    sig = lines[1].split()[:8] + ["ECG"]
    return [" ".join(first), " ".join(sig)]


def _records(dst: Path) -> dict[str, tuple[str, dict]]:
    r = open_store(dst).records()
    return {str(i): (str(s), json.loads(str(m))) for i, s, m in
            zip(r["id"], r["status"], r["metadata"], strict=True)}


def test_unnamed_first_record_does_not_decide_the_stream(shared_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _copy(shared_data, "E07500", src)
    _copy(shared_data, "HR06000", src)
    _copy(shared_data, "E07501", src, "A0000", _unnamed)  # first in sorted order
    text = (src / "A0000.hea").read_text()
    assert not re.search(r"\b(I|II|aVR|V1)\b", text.split("\n", 1)[1])
    dst = tmp_path / "out.zarr"
    convert([src], dst, workers=0, progress=False)
    recs = _records(dst)
    assert {k: s for k, (s, _) in recs.items()} == {"A0000": "ok", "E07500": "ok",
                                                      "HR06000": "ok"}
    assert recs["A0000"][1]["lead_mapping"] == UNNAMED_NOTE
    store = open_store(dst)
    assert tuple(store.stream("ecg@500").channels) == CANONICAL_LEADS
    assert store.stream("ecg@500").channel_mask[:].all()


def test_a_single_ecg_lead_is_the_record_skipped(shared_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _copy(shared_data, "E07500", src)
    _copy(shared_data, "JS20000", src)
    _copy(shared_data, "E07502", src, "A0000", _single_ecg)
    val = loadmat(shared_data / "ecg" / "cinc2021" / "E07502.mat")["val"]
    _v4_mat(src / "A0000.mat", val[1:2])
    dst = tmp_path / "out.zarr"
    convert([src], dst, workers=0, progress=False)
    recs = _records(dst)
    assert recs["E07500"][0] == "ok" and recs["JS20000"][0] == "ok"
    assert recs["A0000"][0].startswith("leads: 1 lead(s) ['ECG'] match none of I, II")
    assert tuple(open_store(dst).stream("ecg@500").channels) == CANONICAL_LEADS


def test_map_ecg_leads_rules():
    assert map_ecg_leads(["II", "I"])[0][:3] == [1, 0, None]
    found, note = map_ecg_leads([f"ch{i}" for i in range(1, 13)])
    assert found == list(range(12)) and note == UNNAMED_NOTE
    # a reordered or shorter lead layout still takes each unnamed lead from its standard slot
    unnamed = [f"ch{i}" for i in range(1, 13)]
    assert map_ecg_leads(unnamed, ["V1", "I", "aVR"]) == ([6, 0, 3], UNNAMED_NOTE)
    assert map_ecg_leads(unnamed, ["II", "X9"]) == ([1, None], UNNAMED_NOTE)
    assert map_ecg_leads(unnamed, ["AVR", "v1", "Lead II"]) == ([3, 6, 1], UNNAMED_NOTE)
    with pytest.raises(LeadMappingError, match="match none"):
        map_ecg_leads(["ch1", "ch2"])  # unnamed, but not 12: no standard order to use
    with pytest.raises(LeadMappingError, match=r"\['ECG'\]"):
        map_ecg_leads(["ECG"])
    assert stream_channels("ecg", ["ch1"]) == CANONICAL_LEADS
    assert stream_channels("ecg", ["ECG1", "ECG2"], paired=True) == ("ECG1", "ECG2")
    assert stream_channels("eeg", ["Cz"]) == ("Cz",)
