"""A run's files always agree, or the run stops and says why.

The commit protocol is tested on a tiny model with `RunState` directly (fast,
every file operation of an epoch); the command line on `--synthetic` data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import SMALL, SMALL_CLI, tiny_model

from keras_minent import _atomic, datasets
from keras_minent.cli import main
from keras_minent.datasets import idx
from keras_minent.testing import BACKEND
from keras_minent.training import files as files_lib
from keras_minent.training.callbacks import PaperLearningRateRule, RunState, read_state
from keras_minent.training.files import NonFiniteLossError, OutputError, ResumeError

X = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
Y = np.arange(64) % 3


def _tiny_fit(out, epochs, extra_callbacks=(), lr=0.05):
    """Fits a tiny seeded model under `RunState` in `out`; returns the state."""
    keras.utils.set_random_seed(1)
    model = tiny_model((6,), 3)
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=True,  # a tiny model: tracing would cost more than it saves
    )
    rule = PaperLearningRateRule(lr, "val_accuracy", seed=3)
    state = RunState(str(out), "val_accuracy", rule, config={"c": 1}, data={"fingerprint": "f"})
    model.fit(
        X,
        Y,
        batch_size=16,
        epochs=epochs,
        initial_epoch=state.initial_epoch,
        validation_data=(X[:16], Y[:16]),
        shuffle=False,
        callbacks=[rule, state, *extra_callbacks],
        verbose=0,
    )
    return state, model


class _Killed(BaseException):
    """Stands for a kill: nothing catches it."""


class _Proxy:
    """`os` with some functions replaced."""

    def __init__(self, module, overrides):
        self._module, self._overrides = module, overrides

    def __getattr__(self, name):
        return self._overrides.get(name) or getattr(self._module, name)


@pytest.fixture
def count_file_ops(monkeypatch):
    """Counts (and, with `kill_at`, kills at) the renames, links and removals of the writes."""
    counter = {"n": 0, "kill_at": None, "ops": []}

    def wrap(name, fn):
        def op(*args, **kwargs):
            counter["n"] += 1
            counter["ops"].append((name, os.path.basename(str(args[-1]))))
            if counter["n"] == counter["kill_at"]:
                raise _Killed(name)
            return fn(*args, **kwargs)

        return op

    overrides = {name: wrap(name, getattr(os, name)) for name in ("replace", "link", "remove")}
    for module in (files_lib, _atomic):  # the run's files and the shared atomic writes
        monkeypatch.setattr(module, "os", _Proxy(os, overrides))
    return counter


def test_a_kill_at_every_file_operation_of_an_epoch_resumes_to_the_same_history(
    tmp_path, count_file_ops
):
    ref, _ = _tiny_fit(tmp_path / "ref", 3)
    ref_weights = keras.saving.load_model(tmp_path / "ref" / "checkpoint.keras").get_weights()
    count_file_ops.update(n=0, ops=[])
    _tiny_fit(tmp_path / "count1", 1)
    first = count_file_ops["n"]
    count_file_ops.update(n=0, ops=[])
    _tiny_fit(tmp_path / "count3", 3)
    total = count_file_ops["n"]
    assert total - first >= 10, count_file_ops["ops"]  # saves, state, links, removals
    for k in range(first + 1, total + 1):  # every operation of epochs 2 and 3
        out = tmp_path / f"kill{k}"
        count_file_ops.update(n=0, kill_at=k)
        with pytest.raises(_Killed):
            _tiny_fit(out, 3)
        count_file_ops.update(kill_at=None)
        done = read_state(str(out))["epochs_done"]
        assert done in (1, 2, 3), (k, done)
        resumed, _ = _tiny_fit(out, 3)
        assert resumed.history.keys() == ref.history.keys()
        for key in ref.history:
            np.testing.assert_allclose(
                resumed.history[key], ref.history[key], rtol=1e-6, err_msg=f"kill {k}: {key}"
            )
        got = keras.saving.load_model(out / "checkpoint.keras").get_weights()
        for a, b in zip(got, ref_weights):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        left = sorted(n for n in os.listdir(out) if n.startswith(".") or "-" in n)
        assert left == ["best-3.keras", "checkpoint-3.keras"] or left == [
            f"best-{ref.best_epoch + 1}.keras",
            "checkpoint-3.keras",
        ], (k, left)


def test_state_of_epoch_n_beside_the_checkpoint_of_epoch_n_plus_1_is_refused(tmp_path):
    """The old race: checkpoint replaced, killed before state.json (stable names)."""
    _tiny_fit(tmp_path / "a", 1)
    _tiny_fit(tmp_path / "b", 2)
    a = tmp_path / "a"
    state = json.loads((a / "state.json").read_text())
    # The interleaving: epoch 1's state names a file that holds epoch 2's weights.
    shutil.copy(tmp_path / "b" / "checkpoint-2.keras", a / state["checkpoint"])
    with pytest.raises(ResumeError, match=r"checkpoint-1.keras holds 8 optimizer steps.*4"):
        _tiny_fit(a, 3)


def test_a_leftover_uncommitted_epoch_is_removed_not_resumed(tmp_path):
    out = tmp_path / "r"
    _tiny_fit(out, 1)
    # A kill in epoch 2 after its checkpoint, before the commit; and a killed temp file.
    shutil.copy(out / "checkpoint-1.keras", out / "checkpoint-2.keras")
    (out / ".checkpoint-2.abc123.tmp.keras").write_bytes(b"partial")
    state = RunState(str(out), "val_accuracy", None)
    assert state.initial_epoch == 1
    assert not (out / "checkpoint-2.keras").exists()
    assert not (out / ".checkpoint-2.abc123.tmp.keras").exists()


def test_missing_checkpoint_or_state_is_refused_not_restarted(tmp_path):
    out = tmp_path / "r"
    _tiny_fit(out, 1)
    os.remove(out / "checkpoint-1.keras")
    os.remove(out / "checkpoint.keras")
    with pytest.raises(ResumeError, match=r"checkpoint-1.keras is missing.*state.json"):
        _tiny_fit(out, 2)
    out = tmp_path / "s"
    _tiny_fit(out, 1)
    before = (out / "checkpoint.keras").read_bytes()
    os.remove(out / "state.json")
    with pytest.raises(ResumeError, match=r"state.json is missing.*checkpoint.keras"):
        _tiny_fit(out, 2)
    assert (out / "checkpoint.keras").read_bytes() == before


def test_corrupt_checkpoint_and_state_files_are_named(tmp_path):
    out = tmp_path / "r"
    _tiny_fit(out, 1)
    ckpt = out / "checkpoint-1.keras"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    with pytest.raises(ResumeError, match=r"checkpoint-1.keras is corrupt or truncated"):
        _tiny_fit(out, 2)
    for text in ("", "{garbled", "{}", "[]"):
        (out / "state.json").write_text(text)
        with pytest.raises(ResumeError, match=r"state.json.*(corrupt|lacks).*--output-dir"):
            _tiny_fit(out, 2)


def test_resume_on_other_data_is_refused(tmp_path):
    out = tmp_path / "r"
    _tiny_fit(out, 1)
    with pytest.raises(ResumeError, match="trained on other data"):
        RunState(str(out), "val_accuracy", None, data={"fingerprint": "other"})


def test_non_finite_loss_stops_before_the_epoch_is_committed(tmp_path):
    out = tmp_path / "r"
    _tiny_fit(out, 1)
    before = (out / "state.json").read_text()

    with pytest.raises(NonFiniteLossError, match=r"loss of epoch 2 is nan.*epoch 1 stays"):
        keras.utils.set_random_seed(1)
        state = RunState(str(out), "val_accuracy", None, config={"c": 1}, data=None)
        model = tiny_model((6,), 3)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        state.set_model(model)
        state.on_epoch_begin(1)
        state.on_epoch_end(1, {"loss": float("nan"), "val_loss": 1.0, "val_accuracy": 0.5})
    assert (out / "state.json").read_text() == before
    assert not (out / "checkpoint-2.keras").exists()


# ---- the command line -------------------------------------------------------------


def _run(*args):
    return main(["train", *SMALL_CLI, *map(str, args)])


def test_the_small_configuration_fits_in_whole_batches(finished_run):
    """What `SMALL` gives a run (its written counts): whole batches to fit, so every
    training step has one shape (JAX compiles it once)."""
    r = json.loads((finished_run / "results.json").read_text())
    assert r["num_examples"] == {"fit": 104, "val": 9, "test": 18}
    assert r["num_examples"]["fit"] % SMALL["batch_size"] == 0


def test_cli_refusals_of_a_finished_run(finished_run_copy, tmp_path, capsys):
    """A changed configuration, links planted at output names and an output path that is
    a file, on a copy of one finished run (one epoch)."""
    out = finished_run_copy
    (out / "config.json").unlink()
    assert _run("--epochs", "1", "--loss", "ce", "--output-dir", out) == 2
    err = capsys.readouterr().err
    assert "state.json: loss: 'min_ent' -> 'ce'" in err, err
    assert _run("--epochs", "1", "--output-dir", out) == 0  # config.json is written again
    capsys.readouterr()
    assert _run("--epochs", "1", "--loss", "ce", "--output-dir", out) == 2  # committed: kept
    assert "config.json: loss: 'min_ent' -> 'ce'" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["loss"] == "min_ent" and results["epochs"] == 1
    # A link planted at an output name is refused; its target is untouched.
    target = tmp_path / "outside.txt"
    target.write_text("precious")
    (out / "best_calibrated.keras").unlink()
    os.symlink(target, out / "best_calibrated.keras")
    assert _run("--epochs", "2", "--output-dir", out) == 2
    assert "links at best_calibrated.keras" in capsys.readouterr().err
    assert target.read_text() == "precious"
    # An output path that is a file.
    assert _run("--epochs", "1", "--output-dir", target) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_fewer_epochs_than_done_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "state.json").write_text(
        json.dumps(
            {
                "epochs_done": 3,
                "history": {},
                "best_epoch": 2,
                "best_value": 0.5,
                "epoch_times": [1, 1, 1],
                "seed_states": [],
            }
        )
    )
    assert _run("--epochs", "1", "--output-dir", out) == 2
    assert "3 finished epochs; --epochs 1 is fewer" in capsys.readouterr().err


def test_diverging_run_stops_with_a_message_and_no_results(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run("--epochs", "2", "--learning-rate", "1e38", "--output-dir", out) == 2
    err = capsys.readouterr().err
    assert "loss of epoch 1 is nan" in err and "lower --learning-rate" in err, err
    assert not (out / "results.json").exists() and not (out / "curves.png").exists()
    assert not (out / "state.json").exists()


def test_unverified_data_is_recorded_and_other_data_refused(tmp_path, capsys):
    """Generated IDX files (not NIST's): results.json and the console say so;
    resuming with other files (another fingerprint) is refused."""
    a, b = tmp_path / "a", tmp_path / "b"
    idx.write_official_files(
        a, {"train": idx.synthetic_letters(104, 1), "test": idx.synthetic_letters(17, 2)}
    )
    idx.write_official_files(
        b, {"train": idx.synthetic_letters(104, 5), "test": idx.synthetic_letters(17, 2)}
    )
    out = tmp_path / "run"
    # Prepared from a's files earlier; the run names no --idx-dir.
    datasets.provenance(tmp_path / "d", idx_dir=a, download=False)
    common = ["--batch-size", "52", "--verbose", "0", "--epochs", "1", "--no-download"]
    argv = ["train", *common, "--output-dir", str(out), "--data-dir", str(tmp_path / "d")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "UNVERIFIED DATA" in printed
    data = json.loads((out / "results.json").read_text())["data"]
    assert data["source"] == "idx_dir_unverified" and data["verified"] is False
    assert data["location"] == str(a) and len(data["fingerprint"]) == 64
    assert set(data["arrays_sha256"]) == {
        "train_images",
        "train_labels",
        "test_images",
        "test_labels",
    }
    assert data["num_examples"] == {"fit": 95, "val": 9, "test": 17}
    argv[argv.index("--epochs") + 1] = "2"
    assert main([*argv, "--idx-dir", str(b)]) == 2
    assert "trained on other data" in capsys.readouterr().err


def test_output_errors_are_one_line(tmp_path):
    with pytest.raises(OutputError, match="no space left"):
        with files_lib.output_errors("x"):
            raise OSError(28, "No space left on device", str(tmp_path / "f"))
    with pytest.raises(FileNotFoundError):
        with files_lib.output_errors("x"):
            raise FileNotFoundError(2, "nope")


def test_atomic_writes_replace_links_and_leave_no_temp_files(tmp_path):
    target = tmp_path / "outside"
    target.write_text("precious")
    link = tmp_path / "results.json"
    os.symlink(target, link)
    files_lib.write_json(str(link), {"a": 1})
    assert target.read_text() == "precious" and not link.is_symlink()

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("x" * 1000)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        files_lib.atomic_save(str(tmp_path / "big.keras"), fail)
    assert sorted(os.listdir(tmp_path)) == ["outside", "results.json"]
    assert BACKEND  # the module runs on every backend


def test_links_at_old_temporary_names_are_not_followed(tmp_path):
    """The old code wrote through `checkpoint.tmp.keras` / `best.keras.tmp.keras` links."""
    out = tmp_path / "r"
    out.mkdir()
    target = tmp_path / "outside"
    target.write_text("precious")
    for name in ("checkpoint.tmp.keras", "best.tmp.keras", f"checkpoint.{os.getpid()}.tmp.keras"):
        os.symlink(target, out / name)
    _tiny_fit(out, 1)
    assert target.read_text() == "precious"
    assert (out / "checkpoint.keras").is_file() and not (out / "checkpoint.keras").is_symlink()


@pytest.mark.slow
def test_file_size_limit_is_one_line_and_leaves_no_temp_file(tmp_path):
    """A full disk, simulated by `ulimit -f` (20 MB; a checkpoint is 44 MB)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "keras_minent", "train", *SMALL_CLI, "--epochs", "1"]
    script = f"ulimit -f 20000; exec {' '.join(cmd)} --output-dir {out}"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("keras-minent: error: cannot use") and "file too large" in last
    assert not [n for n in os.listdir(out) if ".tmp" in n]
    assert not (out / "state.json").exists()


def test_empty_splits_and_non_integer_labels_are_refused(tmp_path, capsys):
    from keras_minent.datasets.selection import _check_labels

    images = np.zeros((3, 28, 28, 1), np.uint8)
    _check_labels("fit", images, np.array([0.0, 1.0, 25.0]), {})  # whole floats: fine
    with pytest.raises(idx.EmnistDataError, match="not whole numbers"):
        _check_labels("fit", images, np.array([0.0, 1.5, 2.0]), {})
    with pytest.raises(idx.EmnistDataError, match="0..25"):
        _check_labels("fit", images, np.array([0, 1, 26]), {})
    x, y = idx.synthetic_letters(104, 1)
    a = tmp_path / "a"
    idx.write_official_files(a, {"train": (x[:0], y[:0]), "test": idx.synthetic_letters(17, 2)})
    (tmp_path / "d").mkdir()
    argv = ["train", "--idx-dir", a, "--data-dir", tmp_path / "d", "--no-download"]
    assert main([*map(str, argv), "--output-dir", str(tmp_path / "o"), "--verbose", "0"]) == 2
    assert "has 0 labels for 0 images" in capsys.readouterr().err
