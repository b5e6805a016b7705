"""The conversion script a user would write without biosig-prep (the baseline of
``bench_convert.py --whole``): per record ``wfdb.rdrecord``, a Butterworth band-pass and a
notch with ``filtfilt``, ``resample_poly`` per rate, one ``.npy`` per record and rate.

Usage: python tools/bench/user_convert_script.py SRC_DIR DST_DIR
"""

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import butter, filtfilt, iirnotch, resample_poly

RATES = (100, 200, 500, 1000)
MAINS = {"E": 60.0}  # Georgia (USA); the other Challenge sources are 50 Hz


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for header in sorted(src.glob("*.hea")):
        try:
            rec = wfdb.rdrecord(str(header.with_suffix("")))
        except Exception as exc:  # a broken file must not stop the run
            print(f"{header.name}: {exc}", file=sys.stderr)
            continue
        x = rec.p_signal.T  # (leads, samples), mV
        fs = float(rec.fs)
        b, a = butter(4, [0.5, 40.0], btype="band", fs=fs)
        y = filtfilt(b, a, x, axis=-1)
        prefix = header.stem.rstrip("0123456789")
        bn, an = iirnotch(MAINS.get(prefix, 50.0), 30.0, fs=fs)
        y = filtfilt(bn, an, y, axis=-1)
        for rate in RATES:
            ratio = Fraction(rate) / Fraction(fs).limit_denominator(1000)
            z = y if ratio == 1 else resample_poly(y, ratio.numerator, ratio.denominator,
                                                   axis=-1)
            np.save(dst / f"{header.stem}_{rate}.npy", z.astype(np.float32))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
