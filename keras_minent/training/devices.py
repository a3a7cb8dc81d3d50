"""Where a run trains: the accelerator, its precision and its distribution."""

from __future__ import annotations

import platform
from typing import Any

import keras

from keras_minent.training.config import ConfigError


def accelerator() -> dict[str, Any]:
    """The first accelerator Keras's backend sees: `{"kind", "name", "capability"}`."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform == "gpu":
                cap = getattr(dev, "compute_capability", None)
                return {"kind": "gpu", "name": dev.device_kind, "capability": cap}
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                major, minor = torch.cuda.get_device_capability(0)
                cap = f"{major}.{minor}"
                return {"kind": "gpu", "name": torch.cuda.get_device_name(0), "capability": cap}
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                cap = details.get("compute_capability")
                cap = ".".join(map(str, cap)) if cap else None
                return {"kind": "gpu", "name": details.get("device_name"), "capability": cap}
    except Exception:  # a broken driver is reported as "cpu"
        pass
    return {"kind": "cpu", "name": platform.processor() or platform.machine(), "capability": None}


def resolve_precision(precision: str, device: dict | None = None) -> str:
    """`"auto"`: mixed_bfloat16 on GPUs with compute capability >= 8.0,
    mixed_float16 (with loss scaling) on older GPUs, float32 on CPU."""
    if precision != "auto":
        return precision
    device = device or accelerator()
    if device["kind"] != "gpu":
        return "float32"
    cap = device.get("capability")
    major = int(str(cap).split(".")[0]) if cap else 0
    return "mixed_bfloat16" if major >= 8 else "mixed_float16"


def distribution(mode: str):
    """The `keras_minent.distribute.TrainingCluster` of `mode` (before other TensorFlow work).

    Raises:
        ConfigError: For an unknown mode, an unsupported backend, or a
            multi-worker cluster not described in the environment.
    """
    from keras_minent.distribute import TrainingCluster

    try:
        return TrainingCluster.create(mode)
    except ValueError as e:
        raise ConfigError(str(e)) from e
