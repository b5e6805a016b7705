"""A small PTB-XL stand-in in the exact published layout (see :mod:`biosig_prep.datasets.ptbxl`).

What is real: the folder structure (``records500/00000/00001_hr.hea/.dat``, ``records100/...
_lr``), the header text (``00001_hr 12 500 5000``, ``00001_hr.dat 16 1000.0(0)/mV 16 0 <first
sample> <checksum> 0 I``, leads I, II, III, AVR, AVL, AVF, V1-V6, 16-bit checksums written
unsigned), the column set of both CSVs, the ``scp_codes`` strings (taken from real PTB-XL rows)
and the ``scp_statements.csv`` rows of the codes used, copied from the published file
(PTB-XL 1.0.3, CC-BY 4.0). What is not: the signals (:func:`biosig_prep.synth.signals.synth_ecg`,
with AF and PVC beats where the codes say so), the patients, ages and reports. Folds are by
patient (``strat_fold`` = patient index mod 10 + 1), as PTB-XL's are.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from biosig_prep.datasets.ptbxl import DATABASE_COLUMNS, DATABASE_CSV, STATEMENTS_CSV
from biosig_prep.synth.signals import EcgMorphology, EcgNoise, synth_ecg

__all__ = ["write_ptbxl", "SCP_CODE_SETS", "HEADER_LEADS"]

HEADER_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
_SYNTH_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

# scp_codes of real PTB-XL rows (cycled over the records)
SCP_CODE_SETS = (
    "{'NORM': 100.0, 'SR': 0.0}",
    "{'IMI': 50.0, 'ASMI': 50.0, 'ISCAL': 50.0, 'ABQRS': 0.0, 'AFIB': 0.0}",
    "{'CLBBB': 100.0, '1AVB': 100.0, 'SR': 0.0}",
    "{'LAFB': 100.0, 'ISCAL': 80.0, 'LVH': 80.0, 'STACH': 0.0}",
    "{'NDT': 100.0, 'PVC': 100.0, 'LOWT': 0.0, 'STD_': 0.0, 'AFIB': 0.0}",
    "{'IRBBB': 100.0, 'LAFB': 100.0, 'PVC': 100.0, 'BIGU': 100.0}",
)
# the published scp_statements.csv: its header and the rows of the codes above, verbatim
_STATEMENTS = """\
,description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass,Statement Category,SCP-ECG Statement Description,AHA code,aECG REFID,CDISC Code,DICOM Code
NDT,non-diagnostic T abnormalities,1.0,1.0,,STTC,STTC,other ST-T descriptive statements,non-diagnostic T abnormalities,,,,
NORM,normal ECG,1.0,,,NORM,NORM,Normal/abnormal,normal ECG,1,,,F-000B7
IMI,inferior myocardial infarction,1.0,,,MI,IMI,Myocardial Infarction,inferior myocardial infarction,161,,,
ASMI,anteroseptal myocardial infarction,1.0,,,MI,AMI,Myocardial Infarction,anteroseptal myocardial infarction,165,,,
LVH,left ventricular hypertrophy,1.0,,,HYP,LVH,Ventricular Hypertrophy,left ventricular hypertrophy,142,,C71076,
LAFB,left anterior fascicular block,1.0,,,CD,LAFB/LPFB,Intraventricular and intra-atrial Conduction disturbances,left anterior fascicular block,101,MDC_ECG_BEAT_BLK_ANT_L_HEMI,C62267,D3-33140
IRBBB,incomplete right bundle branch block,1.0,,,CD,IRBBB,Intraventricular and intra-atrial Conduction disturbances,incomplete right bundle branch block,105,MDC_ECG_BEAT_RBB_BLK_INCOMP,C71048,D3-33112
1AVB,first degree AV block,1.0,,,CD,_AVB,"Sinus node dysfunction, atrial and AV-conduction defects",first degree AV block,,MDC_ECG_RHY_AV_HEART_BLK_DEG_1,C111088,
ISCAL,ischemic in anterolateral leads,1.0,,,STTC,ISCA,ischemic ST-T changes,in anterolateral leads,,,,
CLBBB,complete left bundle branch block,1.0,,,CD,CLBBB,Intraventricular and intra-atrial Conduction disturbances,(complete) left bundle branch block,104,MDC_ECG_BEAT_LBB_BLK_COMP,C62269,D3-33120 or 122752
ABQRS,abnormal QRS,,1.0,,,,Normal/abnormal,abnormal QRS,,,,
PVC,ventricular premature complex,,1.0,,,,Statements related to ectopic rhythm abnormalities,ventricular premature complex (beat),60,MDC_ECG_BEAT_V_P_C,,
STD_,non-specific ST depression,,1.0,,,,Basic roots for coding ST-T changes and abnormalities,non-specific ST depression,502,,,F-38278
LOWT,low amplitude T-waves,,1.0,,,,other ST-T descriptive statements,low amplitude T-waves,366,,,
SR,sinus rhythm,,,1.0,,,Statements related to impulse formation (abnormalities),sinus rhythm,20,MDC_ECG_RHY_SINUS_RHY,,
AFIB,atrial fibrillation,,,1.0,,,Statements related to impulse formation (abnormalities),atrial fibrillation,50,MDC_ECG_RHY_ATR_FIB,,D3-31520
STACH,sinus tachycardia,,,1.0,,,Statements related to impulse formation (abnormalities),sinus tachycardia,21,MDC_ECG_RHY_SINUS_TACHY,,
BIGU,"bigeminal pattern (unknown origin, SV or Ventricular)",,,1.0,,,Statements related to ectopic rhythm abnormalities,"bigeminal pattern (unknown origin, SV or Ventricular)",,,,
"""


def _checksums(digital: np.ndarray) -> np.ndarray:
    """16-bit WFDB checksums per lead, written unsigned as PTB-XL's headers do."""
    return digital.astype(np.int64).sum(axis=1) % 65536


def _write_record(base: Path, digital: np.ndarray, fs: int) -> None:
    """``base.hea`` + ``base.dat`` (format 16, samples interleaved, little-endian)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    name = base.name
    n = digital.shape[1]
    lines = [f"{name} {len(HEADER_LEADS)} {fs} {n}"]
    chk = _checksums(digital)
    lines += [f"{name}.dat 16 1000.0(0)/mV 16 0 {int(digital[i, 0])} {int(chk[i])} 0 {lead}"
              for i, lead in enumerate(HEADER_LEADS)]
    base.with_suffix(".hea").write_text("\n".join(lines) + "\n")
    base.with_suffix(".dat").write_bytes(np.ascontiguousarray(digital.T).astype("<i2").tobytes())


def _digital(mv: np.ndarray) -> np.ndarray:
    return np.clip(np.round(mv * 1000.0), -32767, 32767).astype(np.int16)


def write_ptbxl(out_dir: str | Path, n_records: int = 12, *, n_patients: int | None = None,
                ecg_ids: Sequence[int] | None = None, seed: int = 0, seconds: float = 10.0,
                lr: bool = True) -> list[int]:
    """Write a PTB-XL-layout folder at ``out_dir``; return the ``ecg_id`` of each record.

    n_patients : patients the records are spread over (default: half the records, at least 1;
        records of one patient share its ``patient_id``, age, sex and ``strat_fold``).
    ecg_ids : the ids to use (default 1..n_records), e.g. 6000-6009 to stand for the PTB-XL
        recordings behind the Challenge's ``HR06000``-``HR06009``.
    seconds : record length (PTB-XL: 10 s). lr : also write ``records100/``.
    """
    out = Path(out_dir)
    ids = list(range(1, n_records + 1)) if ecg_ids is None else [int(i) for i in ecg_ids]
    if len(set(ids)) != len(ids) or any(i < 1 for i in ids):
        raise ValueError(f"ecg_ids must be distinct positive integers, got {ids}")
    n_patients = max(1, len(ids) // 2) if n_patients is None else int(n_patients)
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / STATEMENTS_CSV).write_text(_STATEMENTS)
    patient_ids = rng.choice(np.arange(100, 22000), size=n_patients, replace=False)
    ages = rng.integers(20, 90, size=n_patients)
    sexes = rng.integers(0, 2, size=n_patients)
    rows = []
    n_hr = int(round(500 * seconds))
    for k, ecg_id in enumerate(ids):
        p = k % n_patients
        codes = SCP_CODE_SETS[k % len(SCP_CODE_SETS)]
        cond = frozenset(({"af"} if "'AFIB'" in codes else set())
                         | ({"pvc"} if "'PVC'" in codes else set()))
        mv = synth_ecg(500.0, n_hr, rng=rng, hr_bpm=float(rng.uniform(55, 100)),
                       morph=EcgMorphology(conditions=cond, r_mv=float(rng.uniform(0.8, 1.5))),
                       mains_hz=50.0, noise=EcgNoise(), leads=_SYNTH_LEADS)
        folder = f"{(ecg_id // 1000) * 1000:05d}"
        hr = f"records500/{folder}/{ecg_id:05d}_hr"
        lr_name = f"records100/{folder}/{ecg_id:05d}_lr"
        _write_record(out / hr, _digital(mv), 500)
        if lr:
            _write_record(out / lr_name, _digital(resample_poly(mv, 1, 5, axis=1)), 100)
        rows.append({
            "ecg_id": str(ecg_id), "patient_id": f"{float(patient_ids[p]):.1f}",
            "age": f"{float(ages[p]):.1f}", "sex": str(int(sexes[p])), "height": "",
            "weight": "", "nurse": "", "site": "0.0", "device": "CS-12   E",
            "recording_date": f"199{k % 10}-0{1 + k % 9}-1{k % 10} 09:1{k % 10}:34",
            "report": "synthetic record (biosig-prep synth ptbxl)", "scp_codes": codes,
            "heart_axis": "", "infarction_stadium1": "", "infarction_stadium2": "",
            "validated_by": "", "second_opinion": "False",
            "initial_autogenerated_report": "False", "validated_by_human": "True",
            "baseline_drift": "", "static_noise": "", "burst_noise": "",
            "electrodes_problems": "", "extra_beats": "", "pacemaker": "",
            "strat_fold": str(p % 10 + 1), "filename_lr": lr_name, "filename_hr": hr,
        })
    with open(out / DATABASE_CSV, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(DATABASE_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return ids
