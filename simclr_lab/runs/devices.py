"""Which accelerators the active Keras backend sees, for the default preset and the dashboard."""

from __future__ import annotations

import os
from pathlib import Path

import keras


def _visible_gpus() -> list[tuple[str, float]]:
    """(name, CUDA compute capability such as 9.0) of each GPU the active backend sees; the
    capability is 0.0 where the backend reports none (e.g. a non-CUDA GPU)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [
            (d.device_kind, float(getattr(d, "compute_capability", 0) or 0))
            for d in jax.devices()
            if d.platform == "gpu"
        ]
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            major, minor = details.get("compute_capability", (0, 0))
            found.append((details.get("device_name", device.name), major + minor / 10))
        return found
    if backend == "torch":
        import torch

        found = []
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            found.append((torch.cuda.get_device_name(i), major + minor / 10))
        return found
    return []


def gpu_names() -> list[str]:
    """Names of the GPUs visible to the active Keras backend (empty on a CPU-only machine)."""
    return [name for name, _ in _visible_gpus()]


def _gpu_capabilities() -> list[float]:
    """CUDA compute capabilities of the GPUs the active backend sees."""
    return [capability for _, capability in _visible_gpus()]


def _cpuinfo_field(name: str, cpuinfo: str) -> str | None:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name):
            return line.partition(":")[2].strip()
    return None


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as Linux gives it, with its core count: which machine ran."""
    name = _cpuinfo_field("model name", cpuinfo) or "unknown CPU"
    flags = cpu_flags(cpuinfo)
    bf16 = "AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else None
    return f"{name}, {os.cpu_count()} cores" + (f", {bf16}" if bf16 else "")


def machine_name() -> str:
    """Which machine ran, for results: the accelerators' names, else the CPU's (`cpu_name`)."""
    gpus = gpu_names()
    return ", ".join(gpus) if gpus else cpu_name()


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no such file)."""
    return set((_cpuinfo_field("flags", cpuinfo) or "").split())


BFLOAT16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def native_bfloat16() -> bool:
    """Whether bfloat16 arithmetic runs natively here, so `mixed_bfloat16` is faster.

    GPUs: compute capability 8.0 or later (Ampere, Hopper, ...). CPUs (no GPU seen): x86 with
    AVX512-BF16 or AMX-BF16. Elsewhere bfloat16 is emulated and slower than float32.
    """
    capabilities = _gpu_capabilities()
    if capabilities:
        return min(capabilities) >= 8.0
    return bool(cpu_flags() & BFLOAT16_CPU_FLAGS)


def resolve_precision(precision: str) -> str:
    """ "auto" -> "mixed_bfloat16" where `native_bfloat16()`, else "float32"; others as given."""
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if native_bfloat16() else "float32"


def describe() -> str:
    """One line: the backend and the device training runs on."""
    gpus = gpu_names()
    where = ", ".join(gpus) if gpus else f"CPU ({os.cpu_count()} cores)"
    return f"Keras {keras.__version__}, backend {keras.backend.backend()}, on {where}"
