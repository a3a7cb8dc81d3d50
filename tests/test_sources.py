"""`--dataset`: every source form on small generated files, and each bad-data message."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from data_files import arrays, good_npz, mnist_dir, save_npz, write_idx, write_png

from keras_minent.datasets import emnist, folders, idx, local, sources
from keras_minent.datasets.data_record import DataRecord
from keras_minent.datasets.idx import DataError
from keras_minent.datasets.selection import load_data_with_record, models_kwargs
from keras_minent.testing import requires_tf
from keras_minent.training import TrainConfig
from keras_minent.training.config import ConfigError


def config(dataset, tmp_path, **kw):
    return TrainConfig(dataset=str(dataset), output_dir=str(tmp_path / "out"), **kw)


def check_common(data, record, n_train, n_test, k, shape):
    assert record.counts == {"train": n_train, "test": n_test}
    assert record.num_classes == k and record.input_shape == tuple(shape)
    n_val = int(round(n_train / 12))
    assert {r: len(y) for r, (_, y) in data.items()} == {
        "fit": n_train - n_val,
        "val": n_val,
        "test": n_test,
    }
    for x, y in data.values():
        assert x.dtype == np.uint8 and x.shape[1:] == tuple(shape)
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < k
    assert len(record.fingerprint) == 64
    norm = record.normalization
    assert len(norm["mean"]) == shape[-1] and "fit split" in norm["source"]
    fit = data["fit"][0].astype(np.float64) / 255
    np.testing.assert_allclose(norm["mean"], fit.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(norm["std"], fit.std(axis=(0, 1, 2)), rtol=1e-6)


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True), (True, True)])
def test_idx_directory_mnist_layout(tmp_path, gz, dotted):
    d, raw = mnist_dir(tmp_path, gz, dotted)
    assert sources.kind_of(str(d)) == "idx"
    data, record = load_data_with_record(config(d, tmp_path))
    check_common(data, record, 24, 12, 3, (28, 28, 1))
    assert record.label_mapping == {"3": 0, "5": 1, "9": 2}
    assert record.source_fields["layout"] == "mnist" and record.location == str(d)
    assert len(record.source_fields["files_sha256"]) == 4
    for name, sha in record.source_fields["files_sha256"].items():
        assert sha == idx.sha256_of(d / name)
    # upright, in the files' order, labels mapped
    x_test, y_test = data["test"]
    np.testing.assert_array_equal(x_test[..., 0], raw["test"][0])
    np.testing.assert_array_equal(np.array([3, 5, 9])[y_test], raw["test"][1])


def test_idx_directory_emnist_layout_is_transposed_and_subsets_named(tmp_path):
    d = tmp_path / "gzip"
    d.mkdir()
    data = {"train": arrays(24, seed=1), "test": arrays(12, seed=2)}
    for subset in ("balanced", "digits"):
        for split in ("train", "test"):
            x, y = data[split]
            write_idx(d / f"emnist-{subset}-{split}-images-idx3-ubyte.gz", x.transpose(0, 2, 1), 1)
            write_idx(d / f"emnist-{subset}-{split}-labels-idx1-ubyte", y, 0)
    with pytest.raises(DataError, match="subsets balanced, digits: name one"):
        load_data_with_record(config(d, tmp_path))
    arrays_, record = load_data_with_record(config(d / "emnist-digits", tmp_path))
    assert record.source_fields["layout"].startswith("emnist") and record.kind == "idx"
    np.testing.assert_array_equal(arrays_["test"][0][..., 0], data["test"][0])


def test_emnist_letters_idx_files_read_generically_equal_the_builtin(tmp_path):
    d = tmp_path / "letters"
    official = {"train": idx.synthetic_letters(120, 1), "test": idx.synthetic_letters(24, 2)}
    idx.write_official_files(d, official)
    generic, record = sources.load(str(d))
    builtin = idx.read_directory(d)
    for split in ("train", "test"):
        np.testing.assert_array_equal(generic[split][0], builtin[split][0])
        np.testing.assert_array_equal(generic[split][1], builtin[split][1])
    assert record["layout"].startswith("emnist")


def test_npz_keras_layout_with_column_labels(tmp_path):
    (xt, yt), (xs, ys) = arrays(30, (32, 32, 3)), arrays(10, (32, 32, 3), seed=3)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=xt, y_train=yt[:, None], x_test=xs, y_test=ys[:, None])
    data, record = load_data_with_record(config(path, tmp_path))
    check_common(data, record, 30, 10, 3, (32, 32, 3))
    assert record.source_fields["files_sha256"] == {"data.npz": idx.sha256_of(path)}
    assert record.kind == "npz" and record.verified is None
    kw = models_kwargs(record)
    assert kw["input_shape"] == (32, 32, 3) and kw["num_classes"] == 3 and len(kw["std"]) == 3


def test_data_record_json_entry_and_read_back(tmp_path):
    (xt, yt), (xs, ys) = arrays(30, (32, 32, 3)), arrays(10, (32, 32, 3), seed=3)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    data, record = load_data_with_record(config(path, tmp_path, max_eval_examples=4))
    entry = record.to_json()
    assert list(entry) == [
        "source", "verified", "location", "description", "fingerprint", "arrays_sha256",
        "num_examples", "dataset", "kind", "files_sha256", "counts", "num_classes",
        "input_shape", "label_mapping", "normalization", "limits",
    ]  # fmt: skip
    assert entry["num_examples"] == {"fit": 28, "val": 2, "test": 4}  # round(30 / 12) = 2
    assert entry["input_shape"] == [32, 32, 3] and entry["verified"] is None
    assert entry["description"] == f"the .npz file {path}"
    assert entry["label_mapping"] == {"3": 0, "5": 1, "9": 2}
    # read back from the JSON written: the same record
    back = DataRecord.from_json(json.loads(json.dumps(entry)))
    assert back == record and back.to_json() == entry
    assert models_kwargs(entry) == models_kwargs(record)
    # an entry without the optional fields (an older file) reads as EMNIST-Letters' shape
    old = DataRecord.from_json({"fingerprint": "ab" * 32, "source": "synthetic"})
    assert (old.num_classes, old.input_shape, old.limits) == (26, (28, 28, 1), None)
    assert "limits" not in old.to_json() and old.to_json()["fingerprint"] == "ab" * 32


def test_image_folders_train_test_layout(tmp_path):
    root = tmp_path / "imgs"
    for split, n in (("train", 4), ("test", 2)):
        for c in ("zebra", "cat", "dog"):
            for i in range(n):
                write_png(root / split / c / f"{i}.png", value=i)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    assert folders.layout(str(root)) == "split"
    data, record = load_data_with_record(config(root, tmp_path))
    check_common(data, record, 12, 6, 3, (18, 20, 3))
    assert record.label_mapping == {"cat": 0, "dog": 1, "zebra": 2}
    assert (
        record.source_fields["num_files"] == 18
        and len(record.source_fields["files_list_sha256"]) == 64
    )
    assert np.bincount(data["test"][1]).tolist() == [2, 2, 2]


def test_image_folders_class_folders_hold_out_a_seeded_sixth(tmp_path):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        for i in range(18):
            write_png(root / c / f"{i:02d}.png", mode="L", value=i)
    data, record = load_data_with_record(config(root, tmp_path))
    check_common(data, record, 30, 6, 2, (18, 20, 1))
    assert "held out" in record.source_fields["test_split"]
    again, record2 = load_data_with_record(config(root, tmp_path))
    assert record2.fingerprint == record.fingerprint


def test_the_held_out_sixth_is_taken_class_by_class(tmp_path):
    """13 cats, 1 dog, 3 emus: each class gives its own sixth; the dog keeps its only image."""
    root = tmp_path / "imgs"
    for c, n in (("cat", 13), ("dog", 1), ("emu", 3)):
        for i in range(n):
            write_png(root / c / f"{i:02d}.png", value=i)
    data, _ = load_data_with_record(config(root, tmp_path))
    assert np.bincount(data["test"][1], minlength=3).tolist() == [2, 0, 0]  # round(3 / 6) = 0
    raw, _ = folders.read_image_folders(str(root))
    assert np.bincount(raw["train"][1], minlength=3).tolist() == [11, 1, 3]


def test_16_bit_grey_images_are_scaled_and_floats_of_whole_pixels_accepted(tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for c, value in (("dark", 1000), ("light", 60000)):
        for i in range(6):
            (root / c).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 20), value + i, np.uint16)).save(root / c / f"{i}.png")
    raw, _ = folders.read_image_folders(str(root))
    pixels = np.concatenate([raw["train"][0], raw["test"][0]])
    assert sorted(np.unique(pixels).tolist()) == [1000 >> 8, 60000 >> 8]  # the top byte
    path = save_npz(tmp_path, **good_npz(x_train=good_npz()["x_train"].astype(np.float64)))
    assert sources.load(path)[0]["train"][0].dtype == np.uint8


@requires_tf
def test_tfds_name_through_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from keras_minent.datasets import download

    monkeypatch.setattr(download, "network_reachable", lambda *a, **k: True)
    (tmp_path / "tfds").mkdir()  # a --data-dir must exist
    with tfds.testing.mock_data(num_examples=24, data_dir=str(tmp_path / "tfds")):
        data, record = load_data_with_record(
            config("cifar10", tmp_path, data_dir=str(tmp_path / "tfds"))
        )
    assert record.kind == "tfds" and record.source_fields["name"].startswith("cifar10/")
    assert record.source_fields["version"] == record.source_fields["name"].split("/")[-1]
    assert record.input_shape == (32, 32, 3)
    assert record.counts == {"train": 24, "test": 24}  # mock_data: the same examples
    assert len(record.label_mapping) == record.num_classes >= 2
    assert len(record.class_names) == record.num_classes


@requires_tf
def test_unknown_tfds_name_is_refused_at_once(tmp_path):
    with pytest.raises(DataError, match="'no_such_data' is not a tensorflow-datasets name"):
        sources.load("no_such_data", str(tmp_path))


@requires_tf
def test_known_tfds_name_not_prepared_offline_fails_fast(tmp_path, monkeypatch):
    from keras_minent.datasets import download

    monkeypatch.setattr(download, "network_reachable", lambda *a, **k: False)
    with pytest.raises(DataError, match="network is unreachable.*tfds build mnist"):
        sources.load("mnist", str(tmp_path))
    with pytest.raises(DataError, match="--no-download"):
        sources.load("mnist", str(tmp_path), download=False)


def test_emnist_letters_default_is_unchanged(tmp_path):
    d = tmp_path / "letters"
    idx.write_official_files(
        d, {"train": idx.synthetic_letters(120, 1), "test": idx.synthetic_letters(24, 2)}
    )
    (tmp_path / "cache").mkdir()
    cfg = TrainConfig(
        idx_dir=str(d), data_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "o")
    )
    data, record = load_data_with_record(cfg, loader="numpy")
    official, before = emnist.arrays_lib.prepared(str(tmp_path / "cache"), str(d))
    assert record.fingerprint == before["fingerprint"] and "num_classes" not in before
    assert record.num_classes == 26 and record.input_shape == (28, 28, 1)
    assert record.normalization["mean"] == 0.1307 and record.normalization["std"] == 0.3081
    from keras_minent import models

    assert (models.MEAN, models.STD) == (sources.MNIST_MEAN, sources.MNIST_STD)
    assert record.limits is None and "limits" not in record.to_json()


def test_max_examples_take_a_fixed_subset_after_the_carve_out(tmp_path):
    (xt, yt), (xs, ys) = arrays(120, seed=4), arrays(40, seed=5)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    full, _ = load_data_with_record(config(path, tmp_path))
    data, record = load_data_with_record(
        config(path, tmp_path, max_train_examples=50, max_eval_examples=7)
    )
    assert {r: len(y) for r, (_, y) in data.items()} == {"fit": 50, "val": 7, "test": 7}
    assert record.limits["examples_before_limits"] == {"fit": 110, "val": 10, "test": 40}
    # the subset is a part of the full split, the same every time, independent of --seed
    fit = {x.tobytes() for x in full["fit"][0]}
    assert all(x.tobytes() in fit for x in data["fit"][0])
    again, _ = load_data_with_record(
        config(path, tmp_path, max_train_examples=50, max_eval_examples=7, seed=3)
    )
    np.testing.assert_array_equal(again["fit"][0], data["fit"][0])
    assert record.normalization["source"].startswith("computed on the fit split (50 images")
    big, _ = load_data_with_record(config(path, tmp_path, max_train_examples=10**6))
    np.testing.assert_array_equal(big["fit"][0], full["fit"][0])


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"max_train_examples": 0}, "--max-train-examples must be none or >= 1"),
        ({"max_eval_examples": -3}, "--max-eval-examples must be none or >= 1"),
        ({"dataset": "mnist", "idx_dir": "x"}, "--idx-dir is EMNIST-Letters'"),
        ({"dataset": "mnist", "synthetic": True}, "--synthetic generates EMNIST-Letters"),
        ({"dataset": ""}, "--dataset must be a name or path"),
    ],
)
def test_invalid_data_options(kw, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kw)


def test_local_helpers_spellings(tmp_path):
    d, _ = mnist_dir(tmp_path, gz=False, dotted=True)
    assert local.is_idx_dir(str(d)) and not local.emnist_subsets(str(d))


def test_dataset_and_limits_are_options_of_train_tune_and_reproduce():
    from keras_minent.cli import build_parser

    parser = build_parser()
    for command in ("train", "tune", "reproduce"):
        args = parser.parse_args(
            [
                command,
                "--dataset",
                "mnist",
                "--max-train-examples",
                "5",
                "--max-eval-examples",
                "none",
            ]
        )
        assert (args.dataset, args.max_train_examples, args.max_eval_examples) == (
            "mnist",
            5,
            None,
        )
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--max-train-examples", "0"])


@pytest.mark.skipif(
    not os.environ.get("KERAS_MINENT_FASHION_MNIST"),
    reason="set KERAS_MINENT_FASHION_MNIST to a directory of Fashion-MNIST's four IDX files",
)
def test_real_fashion_mnist(tmp_path):
    d = os.environ["KERAS_MINENT_FASHION_MNIST"]
    data, record = load_data_with_record(config(d, tmp_path, max_eval_examples=100))
    assert record.counts == {"train": 60000, "test": 10000}
    assert record.num_classes == 10 and record.input_shape == (28, 28, 1)
    assert record.label_mapping == {str(i): i for i in range(10)}
    assert {r: len(y) for r, (_, y) in data.items()} == {"fit": 55000, "val": 100, "test": 100}
    assert np.bincount(data["fit"][1]).min() > 5000  # balanced classes, 6000 each in train
    assert 0.25 < record.normalization["mean"][0] < 0.32  # Fashion-MNIST's mean is ~0.286


def test_reproduce_table_shows_the_papers_numbers_only_for_emnist_letters(tmp_path, capsys):
    from keras_minent.training import reporting

    row = {"config": "vgg5/ce", "mean": 0.9, "std": 0.01, "n": 2}
    row |= {"test_ece_mean": 0.02, "test_mean_entropy_mean": 0.1}
    out = str(tmp_path)
    reporting.report_reproduction(TrainConfig(output_dir=out), [{**row, "paper": 95.86}])
    emnist_table = capsys.readouterr().out
    assert "95.860" in emnist_table and "paper: paper protocol" in emnist_table
    other = TrainConfig(output_dir=out, dataset="cifar10", max_train_examples=100)
    reporting.report_reproduction(other, [{**row, "paper": None}])
    table = capsys.readouterr().out
    assert "vgg5/ce" in table and "95.860" not in table and "EMNIST-Letters only" in table
    assert "SUBSET OF THE DATA: --max-train-examples 100" in table


def test_emnist_letters_is_the_builtin_and_a_path_of_that_name_is_written_dot_slash(
    tmp_path, monkeypatch
):
    d, _ = mnist_dir(tmp_path)
    os.rename(d, tmp_path / "emnist_letters")
    monkeypatch.chdir(tmp_path)
    assert sources.kind_of("emnist_letters") == "emnist_letters"
    assert sources.kind_of("./emnist_letters") == "idx"


def test_a_limit_that_leaves_nothing_out_is_not_a_subset(tmp_path):
    from keras_minent.training import reporting

    limits = {"examples_before_limits": {"fit": 100, "val": 10, "test": 20}}
    big = TrainConfig(output_dir=str(tmp_path), max_train_examples=100, max_eval_examples=50)
    assert reporting.subset_note(big, limits) is None
    small = TrainConfig(output_dir=str(tmp_path), max_train_examples=99, max_eval_examples=50)
    assert reporting.subset_note(small, limits).startswith(
        "SUBSET OF THE DATA: --max-train-examples 99 (of 100):"
    )
