"""Adversarial re-run of the input classes of issue 17's table: EDF / EEG, DREAMER files, and
"convert: bad WFDB records, paths, destinations". Each case builds its input in a temporary
folder, runs ``biosig-prep convert`` in a fresh process (3 GB address-space cap, 180 s), and is
judged:

* severe: killed, timed out, out of memory, or a wrong result stored silently;
* defect: a traceback, an undocumented exit code, an error that is not one line, an empty or
  unnamed skip reason, or a result other than the one the docs promise;
* held: otherwise.

    python tools/adversarial_inputs.py [--only CLASS] [--real ../shared/data]

Prints one line per case and a table per class (tried / held / defect / severe).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import adversarial_common as common  # noqa: E402
import adversarial_edf_dreamer  # noqa: E402,F401 - registers its cases
import adversarial_wfdb  # noqa: E402,F401 - registers its cases


# --------------------------------------------------------------------------------- main ---
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="")
    ap.add_argument("-k", default="")
    ap.add_argument("--inprocess", action="store_true",
                    help="run the CLI in this process (fast; no memory cap or timeout per case)")
    args = ap.parse_args()
    common.INPROCESS = args.inprocess
    if args.inprocess:
        common._limit()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "biosig_prep"))
    table: dict[str, Counter] = {}
    for cls, name, setup in common.CASES:
        if args.only and args.only.lower() not in cls.lower():
            continue
        if args.k and args.k.lower() not in name.lower():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            try:
                cmd, expect = setup(t)
            except Exception as exc:  # noqa: BLE001 - a broken case is reported, not fatal
                print(f"[setup failed] {cls} | {name}: {exc!r}")
                continue
            dst = next((Path(os.fsdecode(a)) for a in cmd[1:] if str(a).endswith(
                (".zarr", ".zarr/"))), Path(os.fsdecode(cmd[1])))
            rc, out = common.run(cmd, t)
            try:
                level, note = common.judge(rc, out, dst, expect)
            except Exception as exc:  # noqa: BLE001
                level, note = "defect", f"judge failed: {exc!r}"[:170]
        table.setdefault(cls, Counter())[level] += 1
        print(f"{level:7s} {cls[:12]:12s} | {name}: rc={rc} {note}", flush=True)
    print("\n| class | tried | held | defect | severe |\n|---|---:|---:|---:|---:|")
    for cls, c in table.items():
        print(f"| {cls} | {sum(c.values())} | {c['held']} | {c['defect']} | {c['severe']} |")


if __name__ == "__main__":
    main()
