"""Device and thread helpers."""

from __future__ import annotations

import pytest
import torch

from criss_cross.runtime import resolve_device, torch_threads


def test_cpu_and_auto_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("choice", ["tpu", "cuda:x", "gpu0"])
def test_unknown_device_is_one_clear_line(choice):
    with pytest.raises(ValueError, match="unknown device .*use one of auto, cpu, cuda, mps"):
        resolve_device(choice)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_names_the_fix():
    with pytest.raises(ValueError, match="use --device cpu"):
        resolve_device("cuda")


def test_torch_threads_restores():
    old = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old
