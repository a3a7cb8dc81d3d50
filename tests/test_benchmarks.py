"""Each benchmark runs once in a tiny configuration, so the scripts cannot rot.

No timing is asserted: speed is measured by the benchmarks themselves.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.benchmark
ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(args, env=None, timeout=600):
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_loss_cost(backend, tmp_path):
    j = tmp_path / "r.jsonl"
    run(
        ["benchmarks/loss_cost.py", "--batch-sizes", "8", "--repeats", "2", "--json", str(j)],
        {"KERAS_BACKEND": backend},
    )
    rows = [json.loads(x) for x in j.read_text().splitlines()]
    assert {r["loss"] for r in rows} == {"ce", "min_ent", "mix_ent"}
    assert all(r["us"] > 0 for r in rows)


def test_train_step_and_summary(tmp_path):
    j = tmp_path / "r.jsonl"
    run(
        [
            "benchmarks/train_step.py",
            "--batch-sizes",
            "4",
            "--steps",
            "2",
            "--epochs",
            "2",
            "--losses",
            "ce",
            "min_ent",
            "--json",
            str(j),
        ],
        {"KERAS_BACKEND": "jax"},
    )
    run(
        [
            "benchmarks/torch_peer.py",
            "--modes",
            "paper",
            "--batch",
            "4",
            "--steps",
            "2",
            "--json",
            str(j),
        ]
    )
    out = run(["benchmarks/summarize.py", str(j)])
    assert "GPU suite summary" in out and "pytorch (plain) paper" in out


def test_loss_exactness():
    out = run(["benchmarks/loss_exactness.py"], {"KERAS_BACKEND": "jax"})
    assert float(out.split()[-1]) < 1e-5


def test_input_pipeline(tmp_path):
    out = run(
        ["benchmarks/input_pipeline.py", "--num", "520", "--batches", "5", "--tfds-num", "104"],
        {"KERAS_BACKEND": "tensorflow"},
    )
    assert "training_dataset" in out and "load_arrays" in out


def test_gpu_suite_script_runs_tiny_on_cpu(tmp_path):
    if os.environ.get("KERAS_MINENT_FULL_SUITE_TEST") != "1":
        pytest.skip("the whole suite takes ~4 min on 2 CPUs; set KERAS_MINENT_FULL_SUITE_TEST=1")
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_suite.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TINY": "1", "OUT": str(tmp_path)},
    )
    assert "GPU suite summary" in proc.stdout, proc.stdout[-3000:]
