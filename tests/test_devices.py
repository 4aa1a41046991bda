import os
import subprocess
import sys

import pytest

from simclr_lab.encoder import get_encoder
from simclr_lab.runs import devices
from simclr_lab.runs.presets import get_preset


def test_cpu_flags_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\nbogomips\t: 1\n")
    assert devices.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert devices.cpu_flags(str(tmp_path / "missing")) == set()


@pytest.mark.parametrize(
    "gpus, flags, expected",
    [
        ([], {"avx2", "fma"}, "float32"),  # a laptop without bfloat16 units
        ([], {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
        ([], {"amx_bf16"}, "mixed_bfloat16"),
        ([7.5], {"avx512_bf16"}, "float32"),  # a T4 emulates bfloat16: the GPU decides
        ([9.0], set(), "mixed_bfloat16"),  # H100/H200
        ([8.0, 7.0], set(), "float32"),  # the slowest GPU decides
    ],
)
def test_auto_precision_follows_the_hardware(monkeypatch, gpus, flags, expected):
    monkeypatch.setattr(devices, "_gpu_capabilities", lambda: gpus)
    monkeypatch.setattr(devices, "cpu_flags", lambda: flags)
    assert devices.resolve_precision("auto") == expected
    assert devices.resolve_precision("float32") == "float32"  # explicit choices stay
    assert get_preset("smoke", **{"model.precision": "auto"}).model.precision == expected
    encoder = get_encoder(16, 32, devices.resolve_precision("auto"))
    assert encoder.layers[0].dtype_policy.name == expected


ALLOCATOR = """
import os, sys
if sys.argv[1] == "kernel":
    import ipykernel  # noqa: F401  (as in a notebook's kernel)
import simclr_lab  # noqa: F401
print(os.environ.get("TF_ONEDNN_USE_SYSTEM_ALLOCATOR"))
"""


@pytest.mark.parametrize("where, expected", [("kernel", "1"), ("script", "None")])
def test_only_a_notebook_kernel_trades_the_onednn_pool_for_memory(where, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
    ran = subprocess.run(
        [sys.executable, "-c", ALLOCATOR, where], capture_output=True, text=True, env=env
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().splitlines()[-1] == expected
