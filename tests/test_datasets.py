"""EMNIST-Letters: IDX files written by hand in the official format, no network."""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import zipfile

import numpy as np
import pytest

from keras_minent.datasets import idx
from keras_minent.testing import requires_tf

pytestmark = requires_tf


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX written from the format's definition (not with the package's encoder)."""
    array = np.asarray(array, np.uint8)
    magic = bytes([0, 0, 8, array.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic + dims + array.tobytes()


def official_files(directory, n_train=48, n_test=24, seed=0, transform=None):
    """Writes the four gz files; images stored transposed, labels 1..26.

    Returns the upright images and 0-based labels the reader must give back.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        upright = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels0 = np.arange(n) % 26  # every class, a = 0
        files = {
            idx.file_name(split, "images"): idx_bytes(upright.transpose(0, 2, 1)),
            idx.file_name(split, "labels"): idx_bytes(labels0 + 1),
        }
        if transform:
            files = transform(split, files)
        for name, payload in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(gzip.compress(payload))
        out[split] = (upright[..., None], labels0)
    return out


def test_reader_counts_labels_and_orientation(tmp_path):
    want = official_files(tmp_path)
    # Plant an asymmetric pattern: an "L" in the upright image.
    upright = np.zeros((1, 28, 28), np.uint8)
    upright[0, 2:20, 3] = 255  # vertical stroke on the left
    upright[0, 19, 3:15] = 255  # horizontal stroke at the bottom
    with open(tmp_path / idx.file_name("test", "images"), "wb") as f:
        f.write(gzip.compress(idx_bytes(upright.transpose(0, 2, 1))))
    with open(tmp_path / idx.file_name("test", "labels"), "wb") as f:
        f.write(gzip.compress(idx_bytes(np.array([1]))))
    got = idx.read_directory(tmp_path)
    images, labels = got["train"]
    assert images.shape == (48, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, want["train"][0])
    np.testing.assert_array_equal(labels, want["train"][1])
    assert labels.min() == 0 and labels.max() == 25
    test_images, test_labels = got["test"]
    assert test_labels.tolist() == [0]
    assert test_images[0, 10, 3, 0] == 255 and test_images[0, 19, 10, 0] == 255
    assert test_images[0, 3, 10, 0] == 0  # not transposed


def test_zip_in_nist_layout(tmp_path):
    want = official_files(tmp_path)
    zpath = tmp_path / "gzip.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name in idx.REQUIRED_FILES:
            zf.write(tmp_path / name, f"gzip/{name}")
    got = idx.read_zip(zpath)
    np.testing.assert_array_equal(got["train"][0], want["train"][0])
    np.testing.assert_array_equal(got["test"][1], want["test"][1])
    with pytest.raises(idx.EmnistDataError, match="checksum mismatch"):
        idx.check_zip(zpath)  # not NIST's archive
    idx.check_zip(zpath, hashlib.sha256(zpath.read_bytes()).hexdigest())


def _corrupt(kind):
    def transform(split, files):
        name = idx.file_name(split, "images" if kind != "labels" else "labels")
        data = files[name]
        if kind == "magic":
            data = b"\x00\x00\x09\x03" + data[4:]
        elif kind == "truncated":
            data = data[:-100]
        elif kind == "labels":
            data = data[:-1] + bytes([27])
        elif kind == "count":
            files[idx.file_name(split, "labels")] = files[idx.file_name(split, "labels")][:-1]
            b = bytearray(files[idx.file_name(split, "labels")])
            b[4:8] = (int.from_bytes(b[4:8], "big") - 1).to_bytes(4, "big")
            files[idx.file_name(split, "labels")] = bytes(b)
        files[name] = data
        return files

    return transform


@pytest.mark.parametrize(
    "kind, message",
    [
        ("magic", "bad magic number"),
        ("truncated", "truncated"),
        ("labels", r"labels must be 1\.\.26"),
        ("count", "images but"),
    ],
)
def test_bad_files_are_rejected(tmp_path, kind, message):
    official_files(tmp_path, transform=_corrupt(kind))
    with pytest.raises(idx.EmnistDataError, match=message):
        idx.read_directory(tmp_path)


def test_corrupt_gzip_and_missing_file(tmp_path):
    official_files(tmp_path)
    path = tmp_path / idx.file_name("train", "labels")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(idx.EmnistDataError, match="corrupt or truncated gzip"):
        idx.read_directory(tmp_path)
    path.unlink()
    with pytest.raises(idx.EmnistDataError, match="lacks emnist-letters-train-labels"):
        idx.read_directory(tmp_path)


def test_non_official_counts_warn(tmp_path, caplog):
    official_files(tmp_path)
    idx.read_directory(tmp_path)
    assert "not the official 124800" in caplog.text


# ------------------------------------------------------------ the tfds builder


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    want = official_files(raw, n_train=120, n_test=30)
    data_dir = tmp_path_factory.mktemp("tfds")
    from keras_minent import datasets

    datasets.builder(data_dir=data_dir, idx_dir=raw)
    return data_dir, want


def test_builder_splits_and_carve_out(prepared):
    from keras_minent import datasets

    data_dir, want = prepared
    train = datasets.load_arrays("train", data_dir=data_dir, download=False, loader="tfds")
    np.testing.assert_array_equal(train[0], want["train"][0])
    np.testing.assert_array_equal(train[1], want["train"][1])
    test = datasets.load_arrays("test", data_dir=data_dir, download=False, loader="tfds")
    np.testing.assert_array_equal(test[1], want["test"][1])
    val = datasets.load_arrays("validation", data_dir=data_dir, download=False, loader="tfds")
    rest = datasets.load_arrays(
        "train_without_validation", data_dir=data_dir, download=False, loader="tfds"
    )
    vi = datasets.validation_indices(120)
    assert len(vi) == 10 and len(val[0]) == 10 and len(rest[0]) == 110
    np.testing.assert_array_equal(val[0], want["train"][0][vi])
    # Disjoint, together the training split, and the same every time.
    keys = lambda a: {x.tobytes() for x in a}  # noqa: E731
    assert not keys(val[0]) & keys(rest[0])
    assert keys(val[0]) | keys(rest[0]) == keys(train[0])
    np.testing.assert_array_equal(vi, datasets.validation_indices(120))
    assert len(datasets.validation_indices(124_800)) == 10_400
    # The tf.data form: (image uint8 28x28x1, label int64).
    x, y = next(iter(datasets.emnist_letters("test", data_dir=data_dir, download=False)))
    assert x.shape == (28, 28, 1) and x.dtype.name == "uint8" and y.dtype.name == "int64"
    with pytest.raises(ValueError, match="Unknown split"):
        datasets.emnist_letters("val", data_dir=data_dir)


def test_builder_from_zip_in_manual_dir(tmp_path, monkeypatch):
    from keras_minent import datasets
    from keras_minent.datasets.tfds_builder import EmnistLettersOfficial

    raw = tmp_path / "raw"
    raw.mkdir()
    want = official_files(raw)
    manual = tmp_path / "tfds" / "downloads" / "manual"
    manual.mkdir(parents=True)
    with zipfile.ZipFile(manual / "gzip.zip", "w") as zf:
        for name in idx.REQUIRED_FILES:
            zf.write(raw / name, f"gzip/{name}")
    # NIST's real checksum: the small zip is rejected as a mismatch.
    with pytest.raises(idx.EmnistDataError, match="checksum mismatch"):
        datasets.builder(data_dir=tmp_path / "tfds", download=False)
    sha = hashlib.sha256((manual / "gzip.zip").read_bytes()).hexdigest()
    monkeypatch.setattr(EmnistLettersOfficial, "expected_zip_sha256", sha)
    b = datasets.builder(data_dir=tmp_path / "tfds", download=False)
    assert b.info.splits["train"].num_examples == 48
    images, labels = datasets.load_arrays("train", data_dir=tmp_path / "tfds", loader="tfds")
    np.testing.assert_array_equal(labels, want["train"][1])


def test_offline_without_data_fails_fast(tmp_path, monkeypatch):
    from keras_minent import datasets
    from keras_minent.datasets import download

    t0 = time.time()
    with pytest.raises(idx.EmnistDataError, match="gzip.zip"):
        datasets.builder(data_dir=tmp_path, download=False)
    monkeypatch.setattr(download, "network_reachable", lambda *a, **k: False)
    with pytest.raises(idx.EmnistDataError, match="network is unreachable"):
        datasets.builder(data_dir=tmp_path)
    with pytest.raises(idx.EmnistDataError, match="lacks"):
        datasets.builder(data_dir=tmp_path, idx_dir=tmp_path)
    assert time.time() - t0 < 30
    assert list(tmp_path.iterdir()) == []  # tfds created nothing: the message came first


def test_one_data_directory_for_both_loaders(tmp_path, monkeypatch):
    """$KERAS_MINENT_DATA is the tfds builder's directory too; the messages name it, and
    the builder reads the archive the NumPy loader downloaded there (no second download)."""
    from keras_minent import datasets
    from keras_minent.datasets import download

    home = tmp_path / "data"
    monkeypatch.setenv("KERAS_MINENT_DATA", str(home))
    monkeypatch.setattr(download, "network_reachable", lambda *a, **k: False)
    with pytest.raises(idx.EmnistDataError) as e:
        datasets.builder(download=False)
    assert f"not prepared in {home} " in str(e.value)
    assert f"in {home / 'downloads' / 'manual'}," in str(e.value)
    with pytest.raises(idx.EmnistDataError, match=f"in {home / 'downloads' / 'manual'},"):
        datasets.load_arrays("test", loader="numpy", download=False)
    # An archive in <data_dir>/downloads, where the NumPy loader downloads it.
    raw = tmp_path / "raw"
    raw.mkdir()
    want = official_files(raw)
    (home / "downloads").mkdir(parents=True)
    with zipfile.ZipFile(home / "downloads" / "gzip.zip", "w") as zf:
        for name in idx.REQUIRED_FILES:
            zf.write(raw / name, f"gzip/{name}")
    sha = hashlib.sha256((home / "downloads" / "gzip.zip").read_bytes()).hexdigest()
    from keras_minent.datasets.tfds_builder import EmnistLettersOfficial

    monkeypatch.setattr(EmnistLettersOfficial, "expected_zip_sha256", sha)
    x, y = datasets.load_arrays("test", loader="tfds")
    np.testing.assert_array_equal(y, want["test"][1])
    assert (home / "emnist_letters_official").is_dir()


def test_training_dataset_is_a_function_of_seed_and_epoch():
    from keras_minent import datasets

    images, labels = idx.synthetic_letters(50, seed=3)
    kw = dict(pipeline="tf.data")
    full = list(datasets.training_dataset(images, labels, 16, seed=7, epochs=3, **kw))
    resumed = list(
        datasets.training_dataset(images, labels, 16, seed=7, epochs=3, initial_epoch=2, **kw)
    )
    steps = datasets.steps_per_epoch(50, 16)
    assert steps == 4 and len(full) == 3 * steps and len(resumed) == steps
    for (xa, ya), (xb, yb) in zip(full[2 * steps :], resumed):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    epoch0 = np.concatenate([y for _, y in full[:steps]])
    epoch1 = np.concatenate([y for _, y in full[steps : 2 * steps]])
    assert sorted(epoch0.tolist()) == sorted(labels.tolist())  # a permutation
    assert epoch0.tolist() != epoch1.tolist()  # reshuffled every epoch
    full_batches = list(
        datasets.training_dataset(images, labels, 16, 7, 2, drop_remainder=True, **kw)
    )
    assert datasets.steps_per_epoch(50, 16, drop_remainder=True) == 3
    assert len(full_batches) == 6 and all(len(y) == 16 for _, y in full_batches)


def test_training_dataset_shards_are_the_parts_of_each_global_batch():
    """Multi-process JAX: process i feeds part i of every batch; in process
    order the parts are the global batch."""
    from keras_minent import datasets

    images, labels = idx.synthetic_letters(50, seed=3)
    kw = dict(batch_size=16, seed=7, epochs=2, drop_remainder=True, pipeline="tf.data")
    whole = list(datasets.training_dataset(images, labels, **kw))
    parts = [list(datasets.training_dataset(images, labels, shard=(i, 4), **kw)) for i in range(4)]
    assert all(len(p) == len(whole) == 6 for p in parts)
    for step, (x, y) in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([p[step][1] for p in parts]), y)
        np.testing.assert_array_equal(np.concatenate([p[step][0] for p in parts]), x)
    with pytest.raises(ValueError, match="equal parts"):
        datasets.training_dataset(
            images, labels, 16, 7, 2, drop_remainder=True, shard=(0, 3), pipeline="tf.data"
        )
    with pytest.raises(ValueError, match="equal parts"):
        datasets.training_dataset(images, labels, 16, 7, 2, shard=(0, 2), pipeline="tf.data")


def test_vgg5_trains_one_epoch_through_the_pipeline(prepared):
    import keras

    import keras_minent
    from keras_minent import datasets

    data_dir, _ = prepared
    x, y = datasets.load_arrays("train_without_validation", data_dir=data_dir, loader="tfds")
    vx, vy = datasets.load_arrays("validation", data_dir=data_dir, loader="tfds")
    keras.utils.set_random_seed(0)
    model = keras_minent.vgg5(augment=True, seed=0)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras_minent.MinEntLoss(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(
        datasets.training_dataset(x, y, 32, seed=0, epochs=1),
        steps_per_epoch=datasets.steps_per_epoch(len(x), 32),
        validation_data=datasets.evaluation_dataset(vx, vy, 32),
        epochs=1,
        shuffle=False,  # the dataset shuffles itself, per (seed, epoch)
        verbose=0,
    )
    assert np.isfinite(hist.history["loss"][0]) and "val_accuracy" in hist.history


@pytest.mark.parametrize("initial_epoch", [0, 1])
@pytest.mark.parametrize("drop_remainder, shard", [(False, None), (True, None), (True, (1, 4))])
def test_tf_data_and_numpy_pipelines_give_the_same_batches(initial_epoch, drop_remainder, shard):
    """Results do not depend on the backend's loader: same batches, same order."""
    from keras_minent import datasets

    images, labels = idx.synthetic_letters(50, seed=3)
    kw = dict(
        batch_size=16,
        seed=7,
        epochs=3,
        initial_epoch=initial_epoch,
        drop_remainder=drop_remainder,
        shard=shard,
    )
    tf_batches = list(datasets.training_dataset(images, labels, pipeline="tf.data", **kw))
    ds = datasets.training_dataset(images, labels, pipeline="numpy", **kw)
    np_batches = []
    for _ in range(initial_epoch, 3):
        np_batches += [ds[i] for i in range(len(ds))]
        ds.on_epoch_end()
    steps = datasets.steps_per_epoch(50, 16, drop_remainder)
    assert len(tf_batches) == len(np_batches) == steps * (3 - initial_epoch)
    for (xa, ya), (xb, yb) in zip(tf_batches, np_batches):
        np.testing.assert_array_equal(np.asarray(ya), yb)
        np.testing.assert_array_equal(np.asarray(xa), xb)
    ev_tf = list(datasets.evaluation_dataset(images, labels, 16, pipeline="tf.data"))
    ev_np = datasets.evaluation_dataset(images, labels, 16, pipeline="numpy")
    assert len(ev_tf) == len(ev_np) == 4
    for (xa, ya), i in zip(ev_tf, range(4)):
        np.testing.assert_array_equal(np.asarray(xa), ev_np[i][0])
        np.testing.assert_array_equal(np.asarray(ya), ev_np[i][1])


def test_tfds_and_numpy_loaders_agree_and_record_their_source(prepared, tmp_path):
    from keras_minent import datasets

    data_dir, want = prepared
    raw = tmp_path / "raw"
    raw.mkdir()
    official_files(raw, n_train=120, n_test=30)  # the fixture's files, rewritten
    rec_tfds = datasets.provenance(data_dir, loader="tfds")
    rec_np = datasets.provenance(tmp_path / "np", raw, loader="numpy")
    assert rec_tfds["fingerprint"] == rec_np["fingerprint"]
    assert rec_tfds["source"] == "idx_dir_unverified" and not rec_tfds["verified"]
    assert rec_tfds["arrays_sha256"] == rec_np["arrays_sha256"]
    for split in ("train", "test", "validation", "train_without_validation"):
        a = datasets.load_arrays(split, data_dir, loader="tfds")
        b = datasets.load_arrays(split, tmp_path / "np", loader="numpy")
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[1].dtype == b[1].dtype == np.int64


def test_tfds_directory_is_rebuilt_for_another_source(tmp_path):
    from keras_minent import datasets

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    official_files(a, seed=1)
    want_b = official_files(b, seed=2)
    data_dir = tmp_path / "tfds"
    rec_a = datasets.provenance(data_dir, a, loader="tfds")
    assert rec_a["location"] == str(a.resolve())
    x, y, rec_b = datasets.load_arrays_with_info("train", data_dir, b, loader="tfds")
    np.testing.assert_array_equal(x, want_b["train"][0])
    assert rec_b["location"] == str(b.resolve()) and rec_b["fingerprint"] != rec_a["fingerprint"]
    # Without idx_dir: the data of b, and the record says so.
    assert datasets.provenance(data_dir, loader="tfds") == rec_b
    # A directory prepared before records existed: "unknown", and rebuilt for an idx_dir.
    record = next(data_dir.rglob("keras_minent_provenance.json"))
    record.unlink()
    rec = datasets.provenance(data_dir, loader="tfds")
    assert rec["source"] == "unknown" and rec["fingerprint"] == rec_b["fingerprint"]
    assert datasets.provenance(data_dir, b, loader="tfds") == rec_b
