"""Which accelerators the active Keras backend sees, for the default preset and the dashboard."""

from __future__ import annotations

import os

import keras


def gpu_names() -> list[str]:
    """Names of the GPUs visible to the active Keras backend (empty on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "tensorflow":
        import tensorflow as tf

        names = []
        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            names.append(details.get("device_name", device.name))
        return names
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def describe() -> str:
    """One line: the backend and the device training runs on."""
    gpus = gpu_names()
    where = ", ".join(gpus) if gpus else f"CPU ({os.cpu_count()} cores)"
    return f"Keras {keras.__version__}, backend {keras.backend.backend()}, on {where}"
