"""`--precision auto`: what the GPU measurements showed is faster."""

from __future__ import annotations

import pytest

from keras_minent.training import devices
from keras_minent.training.devices import MIXED_PRECISION_MIN_BATCH, precision_choice

H200 = {"kind": "gpu", "name": "NVIDIA H200", "capability": "9.0"}
T4 = {"kind": "gpu", "name": "Tesla T4", "capability": "7.5"}
CPU = {"kind": "cpu", "name": "x86_64", "capability": None}


@pytest.mark.parametrize("batch", [1, 100, 256, MIXED_PRECISION_MIN_BATCH - 1])
@pytest.mark.parametrize("device", [H200, T4], ids=["h200", "t4"])
def test_auto_is_float32_on_a_gpu_at_the_recipes_batch(device, batch):
    # RESULTS.md section 1: mixed_bfloat16 29-45k vs float32 40-48k images/s at batch 100.
    choice = precision_choice("auto", device, batch)
    assert choice["policy"] == "float32"
    assert "not faster" in choice["reason"] and "RESULTS.md" in choice["reason"]
    assert devices.resolve_precision("auto", device, batch) == "float32"


def test_auto_is_mixed_at_large_batches_by_compute_capability():
    big = MIXED_PRECISION_MIN_BATCH
    assert devices.resolve_precision("auto", H200, big) == "mixed_bfloat16"
    assert devices.resolve_precision("auto", T4, 4096) == "mixed_float16"
    assert devices.resolve_precision("auto", H200) == "mixed_bfloat16"  # batch unknown
    assert precision_choice("auto", {"kind": "gpu", "capability": None}, big)["policy"] == (
        "mixed_float16"
    )


def test_auto_on_cpu_and_explicit_policies():
    assert precision_choice("auto", CPU, 100) == {
        "requested": "auto",
        "policy": "float32",
        "reason": "auto on a CPU: float32",
    }
    for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision_choice(policy, H200, 100) == {
            "requested": policy,
            "policy": policy,
            "reason": "requested",
        }


def test_auto_asks_the_backend_for_the_device(monkeypatch):
    monkeypatch.setattr(devices, "accelerator", lambda: dict(H200))
    assert devices.resolve_precision("auto", batch_size=100) == "float32"
    assert devices.resolve_precision("auto", batch_size=2000) == "mixed_bfloat16"
