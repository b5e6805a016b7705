"""Peak memory of refused oversize models against a normal load (issue 17, items 4 and 5).

Each case runs in a fresh interpreter that prints its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and wall time; cases alternate, ``--repeat``
rounds, the median is printed.

    python tools/bench/bench_model_guard.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_PRELUDE = "import resource, sys, time\nt0 = time.perf_counter()\nimport criss_cross\n"
_EPILOGUE = ("print(json.dumps({'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
             " 's': time.perf_counter() - t0, 'result': result}))\n")


def _case(body: str) -> str:
    return (_PRELUDE + "import json\ntry:\n" + "".join(f"    {line}\n" for line in body.splitlines())
            + "    result = 'loaded'\nexcept ValueError as err:\n    result = 'refused: ' + "
            "str(err)[-60:]\n" + _EPILOGUE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import criss_cross

    tmp = Path(tempfile.mkdtemp())
    normal = criss_cross.save_pretrained(criss_cross.create_model("ecg-base"), tmp / "normal")
    huge = criss_cross.save_pretrained(criss_cross.create_model("ecg-base"), tmp / "huge")
    doc = json.loads((huge / "config.json").read_text())
    doc["encoder"]["n_layers"] = 100000
    (huge / "config.json").write_text(json.dumps(doc))
    cases = {
        "from_pretrained, normal 12-layer Hub folder": f"criss_cross.from_pretrained({str(normal)!r})",
        "from_pretrained, config.json n_layers 100000": f"criss_cross.from_pretrained({str(huge)!r})",
        "fusion load_encoder, n_layers 100000 folder": (
            "from fusion_emotion.encoders import load_encoder\n"
            "from fusion_emotion.config import FusionConfig\n"
            f"load_encoder('ecg', {str(huge)!r}, FusionConfig())"),
        "create_model('ecg-base') (random init)": "criss_cross.create_model('ecg-base')",
        "create_model('ecg-base', n_layers=100000)": "criss_cross.create_model('ecg-base', n_layers=100000)",
        "FusionConfig head_hidden 1e8": ("from fusion_emotion.config import FusionConfig\n"
                                         "FusionConfig(head_hidden=10**8)"),
    }
    runs: dict[str, list[dict]] = {k: [] for k in cases}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(args.repeat):
        for name, body in cases.items():
            out = subprocess.run([sys.executable, "-c", _case(body)], capture_output=True,
                                 text=True, env=env, timeout=600)
            if out.returncode:
                raise SystemExit(f"{name}: {out.stderr[-2000:]}")
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| case | peak RSS (MB) | wall (s) | result |\n|---|---:|---:|---|")
    for name, rs in runs.items():
        rss = statistics.median(r["rss_mb"] for r in rs)
        sec = statistics.median(r["s"] for r in rs)
        print(f"| {name} | {rss:.0f} | {sec:.2f} | {rs[-1]['result'][:70]} |")


if __name__ == "__main__":
    main()
