"""A synthetic PhysioNet/CinC Challenge 2021 corpus in the Challenge's own file format.

Each record is a WFDB header ``<record>.hea`` plus a MATLAB v4 ``.mat`` file holding one int16
matrix ``val`` (leads x samples, stored column-major, i.e. sample-interleaved, after a 20-byte
v4 header and the 4-byte name ``val\\0``: the header's ``16+24`` says "format 16, byte offset
24"). Files are byte-for-byte laid out like the real ones and read with both ``wfdb.rdrecord``
and ``scipy.io.loadmat``.

Sources keep their real record-name prefixes, sampling rates and mains frequencies
(:data:`SOURCES`). Header text comes in the two styles found in the wild: the Challenge's
original text (dated record line, ``16+24 1000/mV``, ``#Age: 74``) and the wfdb-rewritten text
(``16x1+24 1000.0(0)/mV``, ``# Age: 74``; PTB-XL with lower-case ``mv``).

With ``quirks=True`` a few records carry the real-world quirks listed in ``data/README.md``, and
``broken=N`` makes N records unreadable or implausible. Everything is listed in
``manifest.json`` (see :func:`write_challenge_corpus`) so tests can check a converter against it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from biosig_prep.synth.record_spec import RecordSpec
from biosig_prep.synth.signals import LEADS_12, EcgMorphology, EcgNoise, synth_ecg
from biosig_prep.synth.wfdb_files import header_text, write_mat_v4

__all__ = [
    "SourceSpec",
    "SOURCES",
    "DX_CODES",
    "QUIRKS",
    "BROKEN_KINDS",
    "REDUCED_LEADS",
    "RecordSpec",
    "write_challenge_corpus",
    "load_manifest",
    "MANIFEST_NAME",
]

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class SourceSpec:
    """One Challenge 2021 source: record prefix, rate, mains, default durations, name width."""

    prefix: str
    name: str
    country: str
    fs: int
    mains_hz: int
    seconds: tuple[float, ...]  # default durations drawn from (uniformly)
    digits: int  # record number width (A0001, HR00001)
    weight: float  # records in the real Challenge 2021 training set (share of a mixed corpus)


SOURCES: dict[str, SourceSpec] = {
    s.prefix: s
    for s in (
        SourceSpec("A", "CPSC 2018", "China", 500, 50, (10, 10, 10, 12, 15, 20, 30, 60), 4, 6877),
        SourceSpec("Q", "CPSC 2018 extra", "China", 500, 50, (10, 10, 14, 20, 30), 4, 3453),
        SourceSpec("I", "St Petersburg INCART", "Russia", 257, 50, (1800,), 4, 74),
        SourceSpec("S", "PTB", "Germany", 1000, 50, (32, 38, 60, 115), 4, 516),
        SourceSpec("HR", "PTB-XL", "Germany", 500, 50, (10,), 5, 21837),
        SourceSpec("E", "Georgia", "USA", 500, 60, (10,), 5, 10344),
        SourceSpec("JS", "Chapman-Shaoxing/Ningbo", "China", 500, 50, (10,), 5, 45152),
    )
}

# SNOMED CT codes used by the Challenge (a subset) -> (description, ECG conditions)
DX_CODES: dict[str, tuple[str, frozenset[str]]] = {
    "426783006": ("sinus rhythm", frozenset()),
    "164889003": ("atrial fibrillation", frozenset({"af"})),
    "270492004": ("1st degree AV block", frozenset({"iavb"})),
    "164909002": ("left bundle branch block", frozenset({"lbbb"})),
    "59118001": ("right bundle branch block", frozenset({"rbbb"})),
    "284470004": ("premature atrial contraction", frozenset({"pac"})),
    "164884008": ("ventricular ectopics (PVC)", frozenset({"pvc"})),
    "426177001": ("sinus bradycardia", frozenset()),
    "427084000": ("sinus tachycardia", frozenset()),
    "164934002": ("T wave abnormal", frozenset()),
    "39732003": ("left axis deviation", frozenset()),
}
# primary diagnosis -> (probability, heart-rate range bpm)
_PRIMARY: dict[str, tuple[float, tuple[float, float]]] = {
    "426783006": (0.42, (60, 95)),
    "164889003": (0.10, (70, 120)),
    "270492004": (0.07, (55, 85)),
    "164909002": (0.06, (60, 90)),
    "59118001": (0.08, (60, 95)),
    "284470004": (0.06, (65, 95)),
    "164884008": (0.06, (60, 95)),
    "426177001": (0.08, (45, 58)),
    "427084000": (0.07, (102, 130)),
}
_SECONDARY = ("164934002", "39732003")

# reduced-lead sets of the Challenge 2021
REDUCED_LEADS: dict[int, tuple[str, ...]] = {
    2: ("I", "II"),
    3: ("I", "II", "V2"),
    4: ("I", "II", "III", "V2"),
    6: ("I", "II", "III", "aVR", "aVL", "aVF"),
}

# quirk name -> what it is (each expected to be *handled*, i.e. status ok, unless noted)
QUIRKS: dict[str, str] = {
    "georgia_record_line": "record line starts with the .mat file name (E00271.mat 12 500 ...); wfdb rejects it",
    "lowercase_units": "units written as 'mv'",
    "mat_name_differs": "the .mat file name differs from the record/header name",
    "ptb_gain_2000000": "PTB gain 2000000/mV: physical values 1000x too small (expected: qc implausible amplitude)",
    "reduced_leads_2": "2 leads: I, II",
    "reduced_leads_3": "3 leads: I, II, V2",
    "reduced_leads_4": "4 leads: I, II, III, V2",
    "reduced_leads_6": "6 leads: I, II, III, aVR, aVL, aVF",
    "lead_names_upper": "augmented leads named AVR/AVL/AVF (match case-insensitively)",
    "age_nan": "'Age: NaN' in the header comments",
    "short_5s": "a 5 s record (shorter than one 10x200 window at 100/200 Hz)",
    "long_record": "a long record (INCART, 30 min at 257 Hz by default)",
}
# broken kind -> (expected status class, reason hint). Status classes: "read_error" (the file
# cannot be read), "qc_error" (read, then rejected by QC), "qc_flat_lead" (one lead is constant:
# masked like a missing lead, or the record rejected, depending on the QC policy).
BROKEN_KINDS: dict[str, tuple[str, str]] = {
    "truncated_mat": ("read_error", "truncated .mat (fewer bytes than the header's samples)"),
    "corrupt_header": ("read_error", "corrupt header (unparseable)"),
    "missing_mat": ("read_error", "header whose .mat file is missing"),
    "flat_lead": ("qc_flat_lead", "flat lead"),
    "saturated": ("qc_error", "saturation (every lead at the int16 limit for most samples)"),
}


def _source_counts(sources: Sequence[str], n: int) -> list[str]:
    """Deterministic composition: largest remainder on the sources' weights, each at least once."""
    w = np.array([SOURCES[s].weight for s in sources], dtype=float)
    if n >= len(sources):
        base = np.ones(len(sources), dtype=int)
        if n >= 2 * len(sources):  # room for a quirky and a clean PTB and Georgia record
            base = np.array([2 if s in ("S", "E") else 1 for s in sources])
        rest = n - int(base.sum())
    else:
        base = np.zeros(len(sources), dtype=int)
        rest = n
    share = w / w.sum() * rest
    cnt = np.floor(share).astype(int)
    order = np.argsort(-(share - cnt), kind="stable")
    cnt[order[: rest - cnt.sum()]] += 1
    cnt += base
    return [s for s, c in zip(sources, cnt, strict=True) for _ in range(int(c))]


def _draw_dx(rng: np.random.Generator) -> tuple[list[str], tuple[float, float]]:
    codes = list(_PRIMARY)
    p = np.array([_PRIMARY[c][0] for c in codes])
    primary = codes[int(rng.choice(len(codes), p=p / p.sum()))]
    dx = [primary]
    if rng.random() < 0.15:
        dx.append(_SECONDARY[int(rng.integers(len(_SECONDARY)))])
    return dx, _PRIMARY[primary][1]


def _conditions(dx: Sequence[str]) -> frozenset[str]:
    out: set[str] = set()
    for c in dx:
        out |= DX_CODES.get(c, ("", frozenset()))[1]
    return frozenset(out)


def write_challenge_corpus(
    out_dir: str | Path,
    n_records: int = 24,
    *,
    seed: int = 0,
    sources: Sequence[str] | None = None,
    durations: Sequence[float] | None = None,
    quirks: bool = True,
    broken: int = 5,
    long_seconds: float = 1800.0,
    header_style: str = "mixed",
    noise_scale: float = 1.0,
    start_index: int = 1,
    signal_format: str = "mat",
) -> list[Path]:
    """Write a Challenge-2021-style corpus into ``out_dir``; return the header paths written.

    Parameters
    ----------
    n_records : total number of records (quirky and broken ones included).
    sources : prefixes from :data:`SOURCES` (default all: A, Q, I, S, HR, E, JS); records are
        shared out by the sources' real-world weights, each source at least once when
        ``n_records >= len(sources)``.
    durations : seconds, cycled over the records in order (the sources are shuffled per seed).
        None: each source's own realistic durations (10 s for PTB-XL/Georgia/Chapman, 10-60 s
        for CPSC, 32-115 s for PTB, ``long_seconds`` for INCART).
    quirks : put every entry of :data:`QUIRKS` that the composition allows onto one record
        each (the Georgia line on an E record, the PTB gain on an S record, reduced leads, ...).
        False: only clean 12-lead records in the Challenge's original header style.
    broken : number of broken records (kinds of :data:`BROKEN_KINDS` in turn); 0 gives a clean
        corpus.
    header_style : "original" (Challenge text), "rewritten" (wfdb-rewritten text, as in the
        torch_ecg sample data), or "mixed" (per source, as in the real data).
    noise_scale : multiplies every noise level.
    start_index : number of the first record of each source (A0001, ...).
    signal_format : "mat" (the Challenge's MATLAB v4 files) or classic WFDB "16" / "212"
        (``.dat`` written by ``wfdb.wrsamp``; 212 is 12-bit, so its gain is 200/mV). The classic
        formats get no quirks and no broken files.

    Manifest fields per record (:class:`RecordSpec`): record, source, fs, n_samples,
    duration_s, leads, mains_hz, dx, hr_bpm, age, sex, header, mat (signal file), gain,
    header_style, quirks, broken, expected_status ("ok", "read_error", "qc_error",
    "qc_flat_lead": one constant lead, masked or rejected depending on the QC policy) and
    expected_reason.

    Writes ``manifest.json`` (``{"records": [RecordSpec...], "seed": ..}``) beside the records.
    The fast path ``write_challenge_corpus(out, n_records=500, sources=["JS"], durations=[10],
    quirks=False, broken=0)`` gives 500 clean 10 s 12-lead 500 Hz records.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources = list(sources) if sources is not None else list(SOURCES)
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source prefix(es) {unknown}; choose from {list(SOURCES)}")
    if n_records < 1:
        raise ValueError(f"n_records must be at least 1, got {n_records}")
    if header_style not in ("original", "rewritten", "mixed"):
        raise ValueError(f"header_style must be original|rewritten|mixed, got {header_style!r}")
    if broken < 0:
        raise ValueError(f"broken must be >= 0, got {broken}")
    if signal_format not in ("mat", "16", "212"):
        raise ValueError(f"signal_format must be 'mat', '16' or '212', got {signal_format!r}")
    if signal_format != "mat":
        quirks, broken = False, 0
    rng = np.random.default_rng(seed)
    plan = _source_counts(sources, n_records)
    rng.shuffle(plan)
    counters = dict.fromkeys(SOURCES, start_index - 1)

    dur_cycle = None
    if durations is not None:
        dur_cycle = np.asarray(list(durations), dtype=float)
        if dur_cycle.size == 0 or np.any(dur_cycle <= 0):
            raise ValueError(f"durations must be positive seconds, got {list(durations)}")

    specs: list[RecordSpec] = []
    for i, src in enumerate(plan):
        s = SOURCES[src]
        counters[src] += 1
        rec = f"{src}{counters[src]:0{s.digits}d}"
        if dur_cycle is not None:
            dur = float(dur_cycle[i % dur_cycle.size])
        elif src == "I":
            dur = float(long_seconds)
        else:
            dur = float(s.seconds[int(rng.integers(len(s.seconds)))])
        dx, hr_range = _draw_dx(rng)
        style = header_style
        if style == "mixed":
            style = "rewritten" if src in ("E", "HR", "JS") and rng.random() < 0.5 else "original"
        if not quirks and header_style == "mixed":
            style = "original"
        specs.append(RecordSpec(
            record=rec, source=src, fs=s.fs, n_samples=int(round(dur * s.fs)), duration_s=dur,
            leads=list(LEADS_12), mains_hz=s.mains_hz, dx=dx,
            hr_bpm=float(np.round(rng.uniform(*hr_range), 1)),
            age=int(rng.integers(18, 90)), sex=("Male", "Female")[int(rng.integers(2))],
            header=f"{rec}.hea", mat=f"{rec}.mat", header_style=style))
        if signal_format != "mat":
            specs[-1].mat = f"{rec}.dat"
            specs[-1].header_style = f"wfdb-{signal_format}"
            specs[-1].gain = 200.0 if signal_format == "212" else 1000.0

    if broken:
        _assign_broken(specs, broken)
    for sp in specs:  # PTB-XL headers rewritten by wfdb carry lower-case units, as the real ones
        if sp.source == "HR" and sp.header_style == "rewritten" and sp.broken is None:
            sp.quirks.append("lowercase_units")
    if quirks:
        _assign_quirks(specs)

    paths = []
    for spec in specs:
        if signal_format == "mat":
            paths.append(_write_record(out, spec, rng, noise_scale))
        else:
            paths.append(_write_classic(out, spec, rng, noise_scale, signal_format))
    manifest = {
        "generator": "biosig_prep.synth.challenge.write_challenge_corpus",
        "seed": seed,
        "n_records": len(specs),
        "quirks": QUIRKS,
        "broken_kinds": {k: v[1] for k, v in BROKEN_KINDS.items()},
        "records": [asdict(sp) for sp in specs],
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return paths


def _assign_quirks(specs: list[RecordSpec]) -> None:
    """Give each quirk to one suitable clean record (a record carries at most one)."""
    taken: set[int] = set()

    def pick(pred) -> RecordSpec | None:
        for i, sp in enumerate(specs):
            if i not in taken and not sp.quirks and sp.broken is None and pred(sp):
                taken.add(i)
                return sp
        return None

    sp = pick(lambda r: r.source == "E")
    if sp:
        sp.quirks.append("georgia_record_line")
        sp.header_style = "rewritten"
    if not any("lowercase_units" in r.quirks for r in specs):
        sp = pick(lambda r: True)
        if sp:
            sp.quirks.append("lowercase_units")
    sp = pick(lambda r: r.source in ("A", "Q", "JS", "HR"))
    if sp:
        sp.quirks.append("mat_name_differs")
        sp.mat = f"{sp.record}_signals.mat"
    sp = pick(lambda r: r.source == "S")
    if sp:
        sp.quirks.append("ptb_gain_2000000")
        sp.gain = 2_000_000.0
        sp.header_style = "original"
        sp.expected_status, sp.expected_reason = "qc_error", "implausible amplitude"
    for k, leads in REDUCED_LEADS.items():
        sp = pick(lambda r: r.source in ("JS", "A", "Q", "HR", "E") and r.duration_s <= 30)
        if sp:
            sp.quirks.append(f"reduced_leads_{k}")
            sp.leads = list(leads)
            sp.header_style = "original"
    sp = pick(lambda r: r.fs == 500)
    if sp:
        sp.quirks.append("lead_names_upper")
    sp = pick(lambda r: True)
    if sp:
        sp.quirks.append("age_nan")
        sp.age = None
    sp = pick(lambda r: r.fs == 500 and r.duration_s <= 10)
    if sp:
        sp.quirks.append("short_5s")
        sp.duration_s, sp.n_samples = 5.0, 5 * sp.fs
    for sp in specs:
        if sp.duration_s >= 600 and sp.broken is None and "long_record" not in sp.quirks:
            sp.quirks.append("long_record")


def _assign_broken(specs: list[RecordSpec], n: int) -> None:
    """Break ``n`` records (kinds of :data:`BROKEN_KINDS` in turn), taken from the end among
    records of at most 60 s, before any quirk is assigned (a broken record carries no quirk)."""
    kinds = list(BROKEN_KINDS)
    pool = [sp for sp in reversed(specs) if sp.duration_s <= 60]
    if n > len(pool):
        raise ValueError(f"broken={n} exceeds the {len(pool)} records of at most 60 s that can "
                         f"be broken; raise n_records")
    for j in range(n):
        sp = pool[j]
        kind = kinds[j % len(kinds)]
        sp.broken = kind
        sp.header_style = "original"
        sp.expected_status, sp.expected_reason = BROKEN_KINDS[kind]


def _write_record(out: Path, spec: RecordSpec, rng: np.random.Generator,
                  noise_scale: float) -> Path:
    mv = _synth_mv(spec, rng, noise_scale)
    # digital values: 1000 adu/mV (the PTB-gain quirk keeps PTB's real 2000 adu/mV resolution
    # but writes 2000000/mV, so physical values come out 1000x too small)
    adu_per_mv = 2000.0 if spec.gain == 2_000_000.0 else spec.gain
    digital = np.clip(np.rint(mv * adu_per_mv), -32768, 32767).astype(np.int16)
    if spec.broken == "flat_lead":
        j = spec.leads.index("V3") if "V3" in spec.leads else len(spec.leads) - 1
        digital[j] = digital[j, 0]
        spec.expected_reason = f"flat lead {spec.leads[j]}"
    elif spec.broken == "saturated":
        # amplifier driven to the rail on every lead for 60 % of the record, inside it (a
        # clipped lead is masked like a flat one; with none usable the record fails QC)
        n_sat = int(0.6 * spec.n_samples)
        start = int(rng.integers(1, spec.n_samples - n_sat))
        digital[:, start:start + n_sat] = 32767
    units = "mv" if "lowercase_units" in spec.quirks else "mV"
    names = list(spec.leads)
    if "lead_names_upper" in spec.quirks:
        names = [n.upper() if n.startswith("aV") else n for n in names]
    record_field = spec.mat if "georgia_record_line" in spec.quirks else spec.record
    text = header_text(spec, digital, mat_name=spec.mat, record_field=record_field, units=units,
                        lead_names=names, rng=rng)
    hea = out / spec.header
    if spec.broken == "corrupt_header":
        # an interrupted copy: the record line, half a signal line, then binary garbage
        lines = text.splitlines()
        junk = bytes(rng.integers(0, 256, 64, dtype=np.uint8)).replace(b"\n", b"\x00")
        hea.write_bytes(f"{lines[0]}\n{lines[1][:14]}".encode() + b"\x00\xff" + junk + b"\n")
    else:
        hea.write_text(text)
    mat = out / spec.mat
    if spec.broken == "missing_mat":
        mat.unlink(missing_ok=True)  # a stale file from an earlier run must not stand in
    else:
        write_mat_v4(mat, digital)
        if spec.broken == "truncated_mat":
            raw = mat.read_bytes()
            mat.write_bytes(raw[: 24 + (len(raw) - 24) // 3 + 1])  # odd length: mid-sample
    return hea


def _synth_mv(spec: RecordSpec, rng: np.random.Generator, noise_scale: float) -> np.ndarray:
    conditions = _conditions(spec.dx)
    morph = EcgMorphology(conditions=conditions, r_mv=float(rng.uniform(0.8, 1.6)))
    noise = EcgNoise(baseline_mv=float(rng.uniform(0.05, 0.25)),
                     mains_mv=float(rng.uniform(0.02, 0.06)),
                     emg_mv=float(rng.uniform(0.005, 0.03)),
                     white_mv=0.004).scaled(noise_scale)
    return synth_ecg(spec.fs, spec.n_samples, rng=rng, hr_bpm=spec.hr_bpm, morph=morph,
                     mains_hz=spec.mains_hz, noise=noise, leads=spec.leads)


def _write_classic(out: Path, spec: RecordSpec, rng: np.random.Generator, noise_scale: float,
                   fmt: str) -> Path:
    """A classic WFDB record (.hea + .dat, format 16 or 212) written by ``wfdb.wrsamp``."""
    import warnings

    mv = _synth_mv(spec, rng, noise_scale)
    lim = 2047 if fmt == "212" else 32767
    digital = np.clip(np.rint(mv * spec.gain), -lim - 1, lim).astype(np.int64).T
    with warnings.catch_warnings():
        # wfdb 4.3 uses DataFrame(..., inplace=True), deprecated by pandas >= 3.1
        warnings.filterwarnings("ignore", "The inplace keyword", DeprecationWarning)
        import wfdb

        n = len(spec.leads)
        wfdb.wrsamp(spec.record, fs=spec.fs, units=["mV"] * n, sig_name=spec.leads,
                    d_signal=digital, fmt=[fmt] * n, adc_gain=[spec.gain] * n, baseline=[0] * n,
                    comments=[f"Age: {spec.age}", f"Sex: {spec.sex}",
                              f"Dx: {','.join(spec.dx)}", "Rx: Unknown", "Hx: Unknown",
                              "Sx: Unknown"],
                    write_dir=str(out))
    return out / spec.header


def load_manifest(out_dir: str | Path) -> dict:
    """The manifest written by :func:`write_challenge_corpus` (a dict; ``records`` a list)."""
    return json.loads((Path(out_dir) / MANIFEST_NAME).read_text())
