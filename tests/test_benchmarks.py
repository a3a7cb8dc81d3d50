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
    _covered_by_the_suite()
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
        pytest.skip("the whole suite takes ~5 min on 2 CPUs; set KERAS_MINENT_FULL_SUITE_TEST=1")
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_suite.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "SUITE_SMOKE": "1", "OUT": str(tmp_path)},
    )
    out = proc.stdout
    assert "GPU suite summary" in out and "!! failed" not in out, out[-3000:]
    assert "whole epochs (validation, checkpoint, metrics) vs steps" in out, out[-3000:]
    assert "Seeds trained together (--seed-parallel)" in out, out[-3000:]
    assert "pytorch (plain) paper" in out and "jax min_ent | mixed_bfloat16" in out, out[-3000:]
    # The rows the separate smoke tests check when the suite does not run (CI runs the suite).
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    (jax_run,) = [r for r in rows if r.get("backend") == "jax" and "epoch_images_per_s" in r]
    assert jax_run["epochs"] == 3 and jax_run["precision"] == "float32"
    assert jax_run["epoch_images_per_s"] > 0 and jax_run["step_images_per_s"] > 0
    assert jax_run["recipe_200_epochs_min"] == round(200 * jax_run["epoch_s"] / 60, 2)
    ops = {r["implementation"]: r["aten_ops_per_step"] for r in rows if "aten_ops_per_step" in r}
    batched = ops["keras torch: train command (aug, metrics, eager)"]
    per_image = ops["keras torch: train command, Keras's per-image augmentation"]
    assert batched < per_image, (batched, per_image)
    together = [r for r in rows if "vs_alone" in r]
    assert [r["members"] for r in together] == [1, 2] and together[0]["vs_alone"] == 1.0


def _covered_by_the_suite() -> None:
    if os.environ.get("KERAS_MINENT_FULL_SUITE_TEST") == "1":
        pytest.skip("the GPU suite's smoke test runs this script and checks the same rows")


def test_train_command_benchmark_smoke(tmp_path):
    """The GPU suite's main row: the real train command, timed per epoch, vs its steps."""
    _covered_by_the_suite()
    j = tmp_path / "r.jsonl"
    run(
        [
            "benchmarks/train_command.py",
            "--size",
            "284",
            "--batch-size",
            "52",
            "--epochs",
            "3",
            "--output-dir",
            str(tmp_path / "run"),
            "--json",
            str(j),
        ],  # fmt: skip
        {"KERAS_BACKEND": "jax"},
    )
    (row,) = [json.loads(x) for x in j.read_text().splitlines()]
    assert row["fit_images"] == 260 and row["epochs"] == 3 and row["precision"] == "float32"
    assert row["epoch_images_per_s"] > 0 and row["step_images_per_s"] > 0
    assert row["recipe_200_epochs_min"] == round(200 * row["epoch_s"] / 60, 2)
    out = run(["benchmarks/summarize.py", str(j)])
    assert "whole epochs (validation, checkpoint, metrics) vs steps" in out


def test_torch_backend_benchmark_smoke(tmp_path):
    _covered_by_the_suite()
    j = tmp_path / "r.jsonl"
    run(
        [
            "benchmarks/torch_backend.py",
            "--batch",
            "4",
            "--steps",
            "2",
            "--rounds",
            "1",
            "--configs",
            "train command (aug, metrics, eager)",
            "train command, Keras's per-image augmentation",
            "--json",
            str(j),
        ],  # fmt: skip
        {"KERAS_BACKEND": "torch"},
    )
    rows = [json.loads(x) for x in j.read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["vs_peer"] == 1.0
    batched, per_image = rows[1]["aten_ops_per_step"], rows[2]["aten_ops_per_step"]
    assert batched < per_image, (batched, per_image)
