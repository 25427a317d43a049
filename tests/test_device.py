"""CPU set-up chosen before and around torch: OpenMP spinning, threads, bf16 where the CPU has it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charnn.runtime import device as device_mod
from charnn.runtime.device import bf16_autocast, cpu_has_native_bf16

REPO = Path(__file__).resolve().parents[1]


def _spincount(env: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} | env
    code = "import os, charnn; print(os.environ.get('GOMP_SPINCOUNT'))"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_charnn_sets_a_short_openmp_spin_unless_the_user_chose():
    assert _spincount({}) == "3000"
    assert _spincount({"GOMP_SPINCOUNT": "7"}) == "7"
    assert _spincount({"OMP_WAIT_POLICY": "PASSIVE"}) == "None"  # a wait policy of theirs is left alone


@pytest.mark.parametrize(("flags", "native"), [
    ("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True),
    ("fpu sse avx2 amx_bf16 amx_tile", True),
    ("fpu sse avx2 fma avx512f avx512bw", False),  # AVX-512 without BF16: emulated, slower
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n")
    assert cpu_has_native_bf16(str(info)) is native
    assert cpu_has_native_bf16(str(tmp_path / "missing")) is False


def test_bf16_autocast_on_the_cpu_only_where_it_is_native(monkeypatch):
    cpu = torch.device("cpu")
    x = torch.randn(4, 8)
    w = torch.randn(8, 8)
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    with bf16_autocast(cpu, True):
        assert (x @ w).dtype == torch.bfloat16
    with bf16_autocast(cpu, False):  # --no-bf16
        assert (x @ w).dtype == torch.float32
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    with bf16_autocast(cpu, True):
        assert (x @ w).dtype == torch.float32
