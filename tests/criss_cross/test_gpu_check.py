"""tools/bench/gpu_check.sh: the script parses, and on a machine without CUDA it says so in one
line (its steps' scripts are tested in test_bf16.py; `gpu_check.sh OUT --device cpu --quick`
runs the whole thing at toy sizes in ~4 minutes on 2 cores)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def test_the_shell_script_parses():
    proc = subprocess.run(["bash", "-n", str(ROOT / "tools" / "bench" / "gpu_check.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_cuda_it_names_the_cpu_smoke_mode(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        str(ROOT / "packages" / p / "src") for p in ("biosig-prep", "criss-cross", "fusion-emotion"))}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bench" / "gpu_check.py"),
                           "--work", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: torch sees no CUDA device; run with --device cpu "
                                   "--quick for a smoke test")
