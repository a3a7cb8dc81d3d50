"""Where a run trains: the accelerator, its precision, its distribution, the versions."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

import keras

import keras_minent
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


#: The smallest batch at which `--precision auto` trains a GPU in mixed precision.
#: Measured (benchmarks/RESULTS.md, section 1: H200, JAX backend, VGG-5, 2026-11-26):
#: at the recipe's batch of 100, mixed_bfloat16 was not faster than float32 (29-45k
#: against 40-48k images/s; mixed_float16 26-30k), because a 100-image step is bound by
#: kernel launches and the casts add kernels; at batch 1000 mixed_bfloat16 ran at 200k
#: images/s (25% of the bf16 matmul peak). Below this batch `auto` keeps float32.
MIXED_PRECISION_MIN_BATCH = 1000


def precision_choice(
    precision: str, device: dict | None = None, batch_size: int | None = None
) -> dict[str, str]:
    """The dtype policy a run trains with, and why (`results.json`'s `precision_choice`).

    `"auto"` gives float32 on a CPU, and float32 on a GPU at batches below
    `MIXED_PRECISION_MIN_BATCH` (where the GPU benchmark measured no gain from
    mixed precision); at larger batches (or an unknown batch, `None`),
    mixed_bfloat16 on GPUs with compute capability >= 8.0 and mixed_float16 (with
    loss scaling) on older GPUs. Any other value is taken as given.

    Returns:
        `{"requested", "policy", "reason"}`.
    """
    if precision != "auto":
        return {"requested": precision, "policy": precision, "reason": "requested"}
    device = device or accelerator()
    if device["kind"] != "gpu":
        policy, reason = "float32", "auto on a CPU: float32"
    elif batch_size is not None and batch_size < MIXED_PRECISION_MIN_BATCH:
        policy = "float32"
        reason = (
            f"auto on a GPU at batch {batch_size} < {MIXED_PRECISION_MIN_BATCH}: float32, "
            "since mixed_bfloat16 was not faster than float32 at batch 100 "
            "(H200, benchmarks/RESULTS.md section 1)"
        )
    else:
        cap = device.get("capability")
        major = int(str(cap).split(".")[0]) if cap else 0
        policy = "mixed_bfloat16" if major >= 8 else "mixed_float16"
        at = "an unknown batch" if batch_size is None else f"batch {batch_size}"
        reason = f"auto on a GPU of compute capability {cap} at {at}: {policy}"
    return {"requested": precision, "policy": policy, "reason": reason}


def resolve_precision(
    precision: str, device: dict | None = None, batch_size: int | None = None
) -> str:
    """The dtype policy of `precision_choice` (its rule is documented there)."""
    return precision_choice(precision, device, batch_size)["policy"]


def distribution(mode: str):
    """The `keras_minent.distribute.TrainingCluster` of `mode` (before other TensorFlow work).

    Raises:
        ConfigError: For an unknown mode, an unsupported backend, a
            multi-worker cluster not described in the environment, or a Keras
            whose TensorFlow trainer the distributed modes cannot correct.
    """
    from keras_minent._keras_tf_trainer_fix import UnsupportedKerasError
    from keras_minent.distribute import TrainingCluster

    try:
        return TrainingCluster.create(mode)
    except (ValueError, UnsupportedKerasError) as e:
        raise ConfigError(str(e)) from e


def versions() -> dict[str, str]:
    """Versions of Python, Keras, the backend and keras-minent, and of TensorFlow, JAX,
    PyTorch and NumPy where installed: `__version__` if imported, else the installed
    distribution's (importing a backend the run does not use costs seconds)."""
    out = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_minent": keras_minent.__version__,
        "backend": keras.backend.backend(),
    }
    for name in ("tensorflow", "jax", "torch", "numpy"):
        if name in sys.modules:
            version = getattr(sys.modules[name], "__version__", None)
        else:  # TensorFlow's CPU-only build installs `tensorflow` as tensorflow-cpu
            dists = (name, f"{name}-cpu")
            version = next(filter(None, map(_distribution_version, dists)), None)
        if version:
            out[name] = version
    return out


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
