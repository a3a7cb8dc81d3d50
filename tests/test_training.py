"""The training command on small generated data (no network)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from helpers import SMALL_284_CLI

from keras_minent import training
from keras_minent.cli import main
from keras_minent.testing import BACKEND, requires_tf

pytestmark = requires_tf


def _cmd(out, *extra):
    return [
        sys.executable,
        "-m",
        "keras_minent",
        "train",
        *SMALL_284_CLI,
        "--output-dir",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def three_epoch_run(tmp_path_factory):
    """A finished three-epoch `train` run (in this process), trained once: the run whose
    files are checked, and the reference of the interrupted run."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", *SMALL_284_CLI, "--epochs", "3", "--output-dir", str(out)]) == 0
    return out


@pytest.mark.backend_matrix
def test_full_run_writes_consistent_results(three_epoch_run):
    out = three_epoch_run
    for name in (
        "results.json",
        "best.keras",
        "checkpoint.keras",
        "state.json",
        "best_calibrated.keras",
    ):
        assert (out / name).is_file(), name
    for name in ("curves.png", "reliability.png", "entropy_histogram.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert any(os.scandir(out / "logs"))  # TensorBoard
    r = json.loads((out / "results.json").read_text())
    assert "meaningless" in r["note"]
    hist = r["history"]
    assert len(hist["loss"]) == r["epochs"] == 3
    best = int(np.argmax(hist["val_accuracy"]))
    assert r["selected_epoch"] == best + 1
    assert r["val_accuracy"] == max(hist["val_accuracy"])
    assert 0 <= r["test_accuracy"] <= 1 and r["images_per_second"] > 0
    assert r["config"]["loss"] == "min_ent" and r["versions"]["backend"] == BACKEND
    assert r["num_examples"] == {"fit": 260, "val": 24, "test": 47}
    assert {"val_ece", "val_predictive_entropy", "learning_rate"} <= set(hist)
    assert 0 <= r["test_ece"] <= 1 and 0 <= r["test_mean_entropy"] <= np.log(26) + 1e-6
    assert r["temperature"] > 0 and r["test_nll_after_temperature"] > 0
    # The best model loads after import keras_minent and scores what results.json says.
    from keras_minent import datasets

    model = keras.saving.load_model(out / "best.keras")
    x, y = datasets.load_arrays("test", idx_dir=out / "synthetic_raw", loader="numpy")
    acc = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    assert abs(acc - r["test_accuracy"]) < 1e-6
    # A changed configuration in the same directory is refused.
    assert main(["train", *SMALL_284_CLI, "--loss", "ce", "--output-dir", str(out)]) == 2


def test_interrupted_run_resumes_with_the_same_history(tmp_path, three_epoch_run):
    """A run killed in a fresh process and resumed in another ends with the history of
    the uninterrupted run."""
    ref, cut = three_epoch_run, tmp_path / "cut"
    proc = subprocess.Popen(_cmd(cut, "--epochs", "3"))
    state = cut / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state.is_file() and json.loads(state.read_text())["epochs_done"] >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # machine dies in epoch 2 (or 3)
    proc.wait(timeout=60)
    done = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done < 3
    subprocess.run(_cmd(cut, "--epochs", "3"), check=True, timeout=600)
    a = json.loads((ref / "results.json").read_text())["history"]
    b = json.loads((cut / "results.json").read_text())["history"]
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)


KILL_BETWEEN = """
import os, sys
from keras_minent import _atomic
from keras_minent.cli import main
from keras_minent.training import files
real = os.replace
def replace(src, dst):
    real(src, dst)
    if str(dst).endswith("checkpoint-2.keras"):  # killed before state.json says so
        os._exit(9)
fake = type("os", (), {{"__getattr__": lambda s, n: getattr(os, n),
                        "replace": staticmethod(replace)}})()
files.os = _atomic.os = fake  # the run's files and the shared atomic writes
sys.exit(main({argv!r}))
"""


@pytest.mark.slow
def test_kill_between_checkpoint_and_state_resumes_to_the_same_history(tmp_path, three_epoch_run):
    """Killed after epoch 2's checkpoint is in place but before state.json says so: the
    resumed run redoes epoch 2 and ends with the history of the uninterrupted run."""
    ref, cut = three_epoch_run, tmp_path / "cut"
    args = ["train", *SMALL_284_CLI, "--epochs", "3", "--output-dir"]
    script = textwrap.dedent(KILL_BETWEEN.format(argv=[*args, str(cut)]))
    proc = subprocess.run([sys.executable, "-c", script], timeout=600)
    assert proc.returncode == 9
    assert json.loads((cut / "state.json").read_text())["epochs_done"] == 1
    assert main([*args, str(cut)]) == 0
    a = json.loads((ref / "results.json").read_text())["history"]
    b = json.loads((cut / "results.json").read_text())["history"]
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)


def test_paper_learning_rate_rule():
    rule = training.PaperLearningRateRule(0.005, seed=42)
    draws = np.random.default_rng(42).uniform(size=2)
    assert rule.next_rate(0.5) is None  # improved
    assert rule.next_rate(0.4) == pytest.approx(0.005 * draws[0] ** 3)
    assert rule.next_rate(0.5) == pytest.approx(0.005 * draws[1] ** 3)  # equal: no improvement
    assert rule.next_rate(0.6) is None
    state = rule.get_state()
    again = training.PaperLearningRateRule(0.005, seed=0)
    again.set_state(json.loads(json.dumps(state)))
    assert again.next_rate(0.1) == rule.next_rate(0.1)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_precision_modes_run_a_step(precision):
    keras.config.set_dtype_policy(precision)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(5, dtype="float32"),
        ]
    )
    model.compile("adam", training.TrainConfig(loss="mix_ent").build_loss())
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype("float32")
    hist = model.fit(x, np.arange(8) % 5, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_precision_auto():
    assert training.resolve_precision("auto", {"kind": "cpu"}) == "float32"
    assert (
        training.resolve_precision("auto", {"kind": "gpu", "capability": "9.0"})
        == "mixed_bfloat16"
    )
    assert (
        training.resolve_precision("auto", {"kind": "gpu", "capability": "7.5"}) == "mixed_float16"
    )
    assert training.resolve_precision("mixed_float16") == "mixed_float16"


def test_seed_summary():
    s = training.summarize_seeds([0.95, 0.96, 0.97])
    assert s["mean"] == pytest.approx(0.96) and s["std"] == pytest.approx(0.01)
    assert s["ci95_low"] == pytest.approx(0.96 - 4.302653 * 0.01 / np.sqrt(3), rel=1e-5)


def test_t_quantile_without_scipy():
    from keras_minent.training.reporting import t_quantile_975

    # Published t(0.975, df) values beyond the table (df > 30), within 1e-4.
    for df, q in ((40, 2.021075), (60, 2.000298), (120, 1.979930), (1000, 1.962339)):
        assert t_quantile_975(df) == pytest.approx(q, abs=1e-4)


def test_bad_config_and_missing_data_fail_fast(tmp_path, capsys):
    with pytest.raises(ValueError, match="loss must be"):
        training.TrainConfig(loss="focal")
    with pytest.raises(ValueError, match="--reg-weight must be >= 0"):
        training.TrainConfig(reg_weight=-1.0)
    t0 = time.time()
    code = main(
        [
            "train",
            "--no-download",
            "--data-dir",
            str(tmp_path),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and time.time() - t0 < 60
    assert "gzip.zip" in capsys.readouterr().err


def test_command_line_is_generated_from_the_config():
    import dataclasses

    from keras_minent.cli import build_parser, options_to_config

    args = build_parser().parse_args(["train"])
    assert options_to_config(training.TrainConfig, args) == training.TrainConfig()
    assert args.seeds == 1
    args = build_parser().parse_args(["reproduce"])
    assert options_to_config(training.TrainConfig, args) == training.TrainConfig(
        output_dir="runs/reproduce"
    )
    args = build_parser().parse_args(
        ["train", "--paper-settings", "--xla", "off", "--no-augment", "--no-download"]
        + ["--steps-per-execution", "4", "--verbose", "2", "--reg-weight", "0.2"]
    )
    config = options_to_config(training.TrainConfig, args)
    assert config == dataclasses.replace(
        training.TrainConfig(),
        paper_loss_settings=True,
        jit_compile=False,
        augment=False,
        download=False,
        steps_per_execution=4,
        verbose=2,
        reg_weight=0.2,
    )
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for field in dataclasses.fields(training.TrainConfig):
        assert field.metadata["help"].split()[0] in text, field.name


def test_unexpected_errors_keep_their_traceback(monkeypatch, capsys):
    def bug(config):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(training, "train", bug)
    with pytest.raises(ZeroDivisionError):
        main(["train", "--synthetic"])

    def refused(config):
        raise training.ConfigError("refused")

    monkeypatch.setattr(training, "train", refused)
    assert main(["train", "--synthetic"]) == 2
    assert capsys.readouterr().err == "keras-minent: error: refused\n"
