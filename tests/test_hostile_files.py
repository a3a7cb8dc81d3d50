"""Hostile and damaged files: what a run reads back never reaches outside its directory,
and every bad file ends in one line naming it (exit status 2), with nothing outside
the output directory touched and nothing intact inside it lost.

One tiny synthetic run is trained once (the session's `finished_run`); each case works
on a copy of it made of hard links (every write of a run replaces a file, never writes
into one).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import resource
import shutil
import struct
import zipfile
import zlib

import keras
import numpy as np
import pytest
from helpers import SMALL, SMALL_CLI, tiny_model

from keras_minent.cli import main
from keras_minent.datasets import folders, local
from keras_minent.datasets.idx import DataError
from keras_minent.training import files as files_lib
from keras_minent.training import joint_run, reproduce, train_seeds
from keras_minent.training.callbacks import RunState
from keras_minent.training.config import TrainConfig
from keras_minent.training.files import OutputError, ResumeError
from keras_minent.training.seeds import seed_configs


def _train(out, epochs: int, *extra: str) -> int:
    return main(["train", *SMALL_CLI, "--epochs", str(epochs), "--output-dir", str(out), *extra])


@pytest.fixture
def run(finished_run_copy, tmp_path):
    """A copy of the session's one-epoch run (hard links), with a victim file beside it."""
    (tmp_path / "victim.txt").write_text("precious")
    return finished_run_copy


def _snapshot(directory) -> dict:
    """Every file's size and content digest (large files: size and inode)."""
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            st = os.stat(path)
            if st.st_size > 1 << 20:
                out[os.path.relpath(path, directory)] = (st.st_size, st.st_ino)
            else:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                out[os.path.relpath(path, directory)] = (st.st_size, digest)
    return out


def _one_line_error(capsys, *names: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("keras-minent: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _refused(capsys, out, argv_epochs: int, *names: str) -> str:
    """Runs the copy again: exit 2, one line naming `names`, nothing lost, victim intact."""
    before = _snapshot(out)
    assert _train(out, argv_epochs) == 2
    line = _one_line_error(capsys, *names)
    after = _snapshot(out)
    # A copy's config.json and synthetic data record the directory they are in: a run
    # there rewrites them (same content but the path); every other file stays as it was.
    moved = [k for k in before if k == "config.json" or k.startswith("synthetic_tfds")]
    assert {k: after.get(k) for k in before if k not in moved} == {
        k: v for k, v in before.items() if k not in moved
    }
    assert all(k in after for k in moved)
    assert (out.parent / "victim.txt").read_text() == "precious"
    return line


def _edit_state(out, **changes) -> None:
    path = out / "state.json"
    state = json.loads(path.read_text())
    state.update(changes)
    path.unlink()  # a new file: the base run's copy stays as it is
    path.write_text(json.dumps(state))


def _replace(path, data: bytes, stable: str | None = None) -> None:
    """Writes `path` as a new file (the copy's hard links to the base stay intact);
    with `stable`, that name is made the same file (as a run leaves them)."""
    path.unlink()
    path.write_bytes(data)
    if stable is not None:
        (path.parent / stable).unlink()
        os.link(path, path.parent / stable)


# ---- names read back from state.json --------------------------------------------------


def test_absolute_best_name_is_refused_and_the_outside_file_kept(run, capsys):
    victim = run.parent / "victim.txt"
    _edit_state(run, best=str(victim), best_value=-1.0)
    line = _refused(capsys, run, 2, "state.json: best is", "not 'best-1.keras'")
    print(line)


@pytest.mark.parametrize("field", ["best", "checkpoint"])
def test_relative_path_out_of_the_directory_is_refused(run, capsys, field):
    _edit_state(run, **{field: "../victim.txt"})
    print(_refused(capsys, run, 2, f"state.json: {field} is '../victim.txt'"))
    assert not os.path.samefile(run / "best.keras", run.parent / "victim.txt")


def test_a_committed_file_that_is_a_link_is_refused(run, tmp_path):
    outside = tmp_path / "outside.keras"
    shutil.copy(run / "checkpoint-1.keras", outside)
    (run / "checkpoint-1.keras").unlink()
    os.symlink(outside, run / "checkpoint-1.keras")
    with pytest.raises(ResumeError, match=r"checkpoint-1.keras is a link.*never follows a link"):
        RunState(str(run), "val_accuracy", None)
    assert outside.exists()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"lr_rule": {"x": 1}}, "lr_rule"),
        ({"history": None}, "history"),
        ({"epoch_times": "fast"}, "epoch_times"),
        ({"best_epoch": 5}, "best_epoch"),
        ({"seed_states": [["a"]]}, "seed_states"),
    ],
)
def test_bad_values_in_state_are_one_line_naming_the_field(run, capsys, changes, field):
    _edit_state(run, **changes)
    print(_refused(capsys, run, 2, "state.json", f": {field} is"))


def test_random_states_that_do_not_fit_the_model_are_one_line(run, capsys):
    _edit_state(run, seed_states=[])
    print(_refused(capsys, run, 2, "state.json: seed_states: 0 random states"))


# ---- damaged or foreign models --------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_model_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("lambda") / "m.keras"
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(path)
    return path.read_bytes()


def test_lambda_model_as_best_is_refused_by_safe_mode_in_one_line(run, capsys, lambda_model_bytes):
    _replace(run / "best-1.keras", lambda_model_bytes, "best.keras")
    print(_refused(capsys, run, 1, "best-1.keras is refused by Keras's safe mode"))


def test_lambda_model_as_checkpoint_is_one_line(run, capsys, lambda_model_bytes):
    _replace(run / "checkpoint-1.keras", lambda_model_bytes, "checkpoint.keras")
    print(_refused(capsys, run, 2, "checkpoint-1.keras is corrupt or truncated"))


def _damage_shared(run, name: str, stable: str) -> None:
    """Truncates `name`, which (as a run leaves it) is one file with `stable`."""
    data = (run / name).read_bytes()
    _replace(run / name, data[: len(data) // 2], stable)


def test_damaged_shared_best_is_named_and_restored_from_the_checkpoint(run, capsys):
    _damage_shared(run, "best-1.keras", "best.keras")
    assert os.path.samefile(run / "best.keras", run / "best-1.keras")
    assert _train(run, 1) == 0
    out = capsys.readouterr().out
    assert "best-1.keras (and best.keras, the same file) is truncated" in out, out
    assert "restored from it" in out
    keras.saving.load_model(run / "best.keras")  # intact again
    assert json.loads((run / "results.json").read_text())["selected_epoch"] == 1


def test_damaged_best_and_checkpoint_stop_with_the_exact_state(run, capsys):
    _damage_shared(run, "best-1.keras", "best.keras")
    _damage_shared(run, "checkpoint-1.keras", "checkpoint.keras")
    line = _refused(capsys, run, 1, "best-1.keras (and best.keras, the same file) is truncated")
    assert "the model of the best epoch 1" in line and "damaged too" in line
    print(line)


def test_file_size_limit_names_the_file(tmp_path):
    """`ulimit -f` (EFBIG; Python ignores SIGXFSZ): the message names the file."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(300)])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8000, hard))
    try:
        with pytest.raises(OutputError) as e:
            with files_lib.output_errors(str(tmp_path)):
                files_lib.save_model(model, str(tmp_path / "checkpoint-1.keras"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    message = str(e.value)
    assert f"cannot use {tmp_path / 'checkpoint-1.keras'}" in message, message
    assert "file too large" in message and "\n" not in message
    assert os.listdir(tmp_path) == []


# ---- links planted where the run writes -----------------------------------------------


def test_symlinked_logs_directory_is_refused(run, capsys, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(run / "logs")
    os.symlink(elsewhere, run / "logs")
    print(_refused(capsys, run, 2, "links at logs"))
    assert os.listdir(elsewhere) == []


def test_symlinked_member_directories_are_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "seeds"
    out.mkdir()
    os.symlink(elsewhere, out / "seed_1")
    config = TrainConfig(output_dir=str(out), epochs=1, **SMALL)
    with pytest.raises(OutputError, match=r"seed_1 is a link"):
        train_seeds(config, 2)
    with pytest.raises(OutputError, match=r"seed_1 is a link"):
        joint_run.train_together(seed_configs(config, 2), str(out))
    arm = tmp_path / "rep"
    arm.mkdir()
    os.symlink(elsewhere, arm / "vgg5_ce")
    with pytest.raises(OutputError, match=r"vgg5_ce is a link"):
        reproduce(TrainConfig(output_dir=str(arm), **SMALL))
    assert os.listdir(elsewhere) == []


def test_joint_state_names_and_values_are_checked(tmp_path):
    path = tmp_path / "joint_state.json"
    for members, message in [
        ({"../x": {}}, r"member '\.\./x' is not a directory inside"),
        ({"/abs": {}}, r"member '/abs' is not a directory inside"),
        ({"seed_0": {"epochs_done": 1}}, r"\(member seed_0\) lacks"),
    ]:
        path.write_text(json.dumps({"epochs_done": 1, "members": members, "failed": {}}))
        with pytest.raises(ResumeError, match=message):
            joint_run.read_joint_state(str(tmp_path))


# ---- sizes written inside data files --------------------------------------------------


def _idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def _mnist_dir(directory, train_images: bytes) -> None:
    directory.mkdir()
    images = np.zeros((10, 28, 28), np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    blobs = {
        "train-images-idx3-ubyte": train_images,
        "train-labels-idx1-ubyte": _idx_header(10) + labels.tobytes(),
        "t10k-images-idx3-ubyte": _idx_header(10, 28, 28) + images.tobytes(),
        "t10k-labels-idx1-ubyte": _idx_header(10) + labels.tobytes(),
    }
    for name, blob in blobs.items():
        (directory / name).write_bytes(blob)


def _data_refused(capsys, tmp_path, dataset, *names: str) -> str:
    out = tmp_path / "out"
    argv = ["train", "--dataset", str(dataset), "--output-dir", str(out), "--verbose", "0"]
    assert main(argv) == 2
    return _one_line_error(capsys, *names)


def test_idx_dimensions_whose_product_overflows_are_one_line(tmp_path, capsys):
    d = tmp_path / "idx"
    _mnist_dir(d, _idx_header(2**31, 2**31, 4) + bytes(100))
    line = _data_refused(
        capsys, tmp_path, d, "train-images-idx3-ubyte", "(2147483648, 2147483648, 4)"
    )
    print(line)
    gz = tmp_path / "gz"
    _mnist_dir(gz, gzip.compress(_idx_header(2**31, 2**31, 4) + bytes(100)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: the header declares.*budget"):
        local.read_idx_file(str(gz / "train-images-idx3-ubyte"), 3)


def test_npz_whose_header_claims_a_huge_shape_is_one_line(tmp_path, capsys):
    path = tmp_path / "data.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, shape in [
            ("x_train", (10**7, 10**7)),
            ("y_train", (10,)),
            ("x_test", (10, 4)),
            ("y_test", (10,)),
        ]:
            with zf.open(f"{key}.npy", "w") as f:
                header = {"descr": "|u1", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(f, header)
                f.write(bytes(40 if len(shape) == 2 else 10))
    assert path.stat().st_size < 2000
    line = _data_refused(capsys, tmp_path, path, "data.npz (x_train)", "(10000000, 10000000)")
    print(line)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _image_classes(root, counts: dict) -> None:
    from PIL import Image

    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (8, 8), color=i * 20).save(root / name / f"{i}.png")


def test_decompression_bomb_in_a_class_folder_is_one_line(tmp_path, capsys):
    pytest.importorskip("PIL")
    root = tmp_path / "images"
    _image_classes(root, {"a": 3, "b": 3})
    (root / "b" / "huge.png").write_bytes(_png_header_only(14000, 14000))
    print(_data_refused(capsys, tmp_path, root, "huge.png: too many pixels"))


def test_empty_class_folder_is_refused_naming_it(tmp_path):
    pytest.importorskip("PIL")
    root = tmp_path / "images"
    _image_classes(root, {"a": 3, "b": 0, "c": 3})
    with pytest.raises(DataError, match=rf"{root / 'b'} holds no images.*class 1"):
        folders.read_image_folders(str(root))


def test_idx_file_and_a_different_gz_are_refused_naming_both(tmp_path):
    d = tmp_path / "idx"
    images = _idx_header(10, 28, 28) + bytes(7840)
    _mnist_dir(d, images)
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    local.read_idx_dir(str(d))  # the same data twice: fine
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images[:-1] + b"\x01"))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte and .*ubyte.gz are both"):
        local.read_idx_dir(str(d))


# ---- tune's files and report ----------------------------------------------------------


def test_search_report_keeps_the_recipe_and_the_note_and_torn_files_are_named(tmp_path, capsys):
    tuning = pytest.importorskip("keras_minent.tuning")
    out = tmp_path / "search"
    config = tuning.TuneConfig(
        **{**SMALL, "batch_size": 26},
        learning_rate=0.002,
        trials=1,
        epochs=1,
        losses=("min_ent",),
        output_dir=str(out),
    )
    tuning.search(config, model_builder=tiny_model)
    printed = capsys.readouterr().out
    assert "*** SYNTHETIC DATA" in printed.split("trial ")[0], printed  # above the table
    assert "--batch-size 26 --learning-rate 0.002" in printed, printed
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["note"].startswith("SYNTHETIC DATA") and best["loss"] == "min_ent"
    # keras-tuner writes oracle.json in place: a kill or a full disk leaves it torn.
    oracle = out / "search" / "oracle.json"
    oracle.write_text(oracle.read_text()[:40])
    with pytest.raises(
        ResumeError, match=rf"{oracle} \(keras-tuner's record.*tears it.*Restore it"
    ):
        tuning.search(config, model_builder=tiny_model)
    stored = json.loads((out / "search_config.json").read_text())
    (out / "search_config.json").write_text(json.dumps({**stored, "data_fingerprint": 5}))
    with pytest.raises(ResumeError, match=r"search_config.json: data_fingerprint is not a"):
        tuning.search(config, model_builder=tiny_model)
