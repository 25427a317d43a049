"""Which device to train on, and how many CPU threads to use."""

from __future__ import annotations

import os
from functools import lru_cache

from charnn.errors import CharnnError


def pick_device(spec: str = "auto"):
    """``auto`` picks CUDA, then Apple MPS, then CPU; an explicit choice must exist."""
    import torch

    spec = (spec or "auto").lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CharnnError(f"--device {spec} asked for CUDA, but no CUDA GPU is available here.")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CharnnError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s).")
        return dev
    if spec == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CharnnError("--device mps asked for Apple's GPU, but MPS is not available here.")
        return torch.device("mps")
    if spec == "cpu":
        return torch.device("cpu")
    raise CharnnError(f"Unknown --device {spec!r}; use auto, cpu, cuda, cuda:N or mps.")


def physical_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def set_cpu_threads(threads: int = 0, world: int = 1) -> int:
    """One intra-op thread per core we may use (oversubscription is many times slower).

    An explicit ``OMP_NUM_THREADS`` is the user's choice and wins over the core count.
    """
    import torch

    env = os.environ.get("OMP_NUM_THREADS", "")
    n = threads or (int(env) if env.isdigit() and int(env) > 0 else max(1, physical_cores() // max(1, world)))
    torch.set_num_threads(n)
    return n


@lru_cache(maxsize=4)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): there bf16 matrix
    products run about 3x faster than fp32; elsewhere they are emulated and slower."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def bf16_autocast(device, enabled: bool = True):
    """The bf16 autocast context for ``device`` (CUDA; a CPU with native bf16), else a no-op one."""
    import contextlib

    import torch

    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    if enabled and device.type == "cpu" and cpu_has_native_bf16():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
