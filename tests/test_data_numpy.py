"""The data layer without TensorFlow: permutation, NumPy loader, provenance, PyDataset.

Generated files in the official format, tmp directories only, no network.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile

import keras
import numpy as np
import pytest

from keras_minent import datasets
from keras_minent.datasets import arrays, download, idx, order, records

pytestmark = pytest.mark.backend_matrix

M64 = (1 << 64) - 1


def reference_permutation(n, key):
    """The module docstring's algorithm, in plain Python integers."""

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    s = 0
    for k in key:
        s = mix((s + 0x9E3779B97F4A7C15 + (k & M64)) & M64)
    v = [mix((s + (i + 1) * 0x9E3779B97F4A7C15) & M64) for i in range(n)]
    return sorted(range(n), key=lambda i: (v[i], i))


@pytest.mark.parametrize("n, key", [(1, (0,)), (50, (3,)), (97, (7, 2)), (64, (-1, 0))])
def test_permutation_is_the_documented_algorithm(n, key):
    assert order.permutation(n, key).tolist() == reference_permutation(n, key)


def test_validation_indices_are_pinned():
    """Which 10,400 of the official 124,800 are validation: fixed forever."""
    vi = datasets.validation_indices(124_800)
    assert len(vi) == 10_400 and len(np.unique(vi)) == 10_400
    assert vi[:5].tolist() == [10, 24, 27, 70, 71]
    assert (
        hashlib.sha256(vi.astype("<i4").tobytes()).hexdigest()
        == "ae36c5842c1f90e5b75e7fa0a15e7353f2bf094397b5de28506afb26abb50645"
    )
    assert datasets.validation_indices(124_800, seed=1)[:5].tolist() != [10, 24, 27, 70, 71]


def test_epoch_order_is_pinned():
    assert order.epoch_order(124_800, 0, 0)[:6].tolist() == [
        35561,
        30683,
        21634,
        29047,
        90013,
        101414,
    ]
    assert order.epoch_order(114_400, 0, 3)[:6].tolist() == [
        26512,
        92938,
        100212,
        114034,
        28805,
        73320,
    ]
    assert order.epoch_order(10, 7, 1).tolist() == [7, 8, 9, 4, 3, 1, 5, 6, 2, 0]
    assert sorted(order.epoch_order(1000, 5, 9).tolist()) == list(range(1000))


def write_files(directory, n_train=120, n_test=30, seed=0, **kw):
    rng = np.random.default_rng(seed)
    data = {
        split: (
            rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8),
            (np.arange(n) + seed) % 26,
        )
        for split, n in (("train", n_train), ("test", n_test))
    }
    idx.write_official_files(directory, data, **kw)
    return data


def test_numpy_loader_splits_cache_and_provenance(tmp_path):
    raw, data_dir = tmp_path / "raw", tmp_path / "data"
    want = write_files(raw)
    x, y, rec = datasets.load_arrays_with_info("train", data_dir, raw, loader="numpy")
    np.testing.assert_array_equal(x, want["train"][0])
    np.testing.assert_array_equal(y, want["train"][1])
    assert y.dtype == np.int64 and x.dtype == np.uint8 and x.shape == (120, 28, 28, 1)
    assert (data_dir / arrays.CACHE_NAME).is_file() and (data_dir / arrays.RECORD_NAME).is_file()
    assert rec["source"] == "idx_dir_unverified" and rec["verified"] is False
    assert rec["location"] == str(raw.resolve())
    digests = records.arrays_sha256(want)
    assert rec["arrays_sha256"] == digests and rec["fingerprint"] == records.fingerprint_of(
        digests
    )
    # Later calls without idx_dir: the cache, and the record says what it is.
    before = time.time()
    assert datasets.provenance(data_dir, loader="numpy") == rec
    vx, vy = datasets.load_arrays("validation", data_dir, loader="numpy", download=False)
    rx, _ = datasets.load_arrays("train_without_validation", data_dir, loader="numpy")
    vi = datasets.validation_indices(120)
    np.testing.assert_array_equal(vx, want["train"][0][vi])
    assert len(vx) == 10 and len(rx) == 110
    tx, ty = datasets.load_arrays("test", data_dir, loader="numpy")
    np.testing.assert_array_equal(ty, want["test"][1])
    assert time.time() - before < 30
    with pytest.raises(ValueError, match="Unknown split"):
        datasets.load_arrays("val", data_dir, loader="numpy")


def test_another_source_is_never_the_cached_data(tmp_path, caplog):
    a, b, data_dir = tmp_path / "a", tmp_path / "b", tmp_path / "data"
    want_a = write_files(a, seed=1)
    want_b = write_files(b, seed=2)
    _, ya, rec_a = datasets.load_arrays_with_info("train", data_dir, a, loader="numpy")
    np.testing.assert_array_equal(ya, want_a["train"][1])
    xb, yb, rec_b = datasets.load_arrays_with_info("train", data_dir, b, loader="numpy")
    np.testing.assert_array_equal(xb, want_b["train"][0])
    assert rec_b["location"] == str(b.resolve()) and rec_b["fingerprint"] != rec_a["fingerprint"]
    assert "Rebuilding" in caplog.text
    # The same directory with other files: rebuilt too.
    want_c = write_files(b, seed=3)
    xc, _, rec_c = datasets.load_arrays_with_info("train", data_dir, b, loader="numpy")
    np.testing.assert_array_equal(xc, want_c["train"][0])
    assert rec_c["fingerprint"] not in (rec_a["fingerprint"], rec_b["fingerprint"])
    # A corrupted cache is rebuilt, not used.
    cache = data_dir / arrays.CACHE_NAME
    cache.write_bytes(cache.read_bytes()[:1000])
    xd, _ = datasets.load_arrays("train", data_dir, b, loader="numpy")
    np.testing.assert_array_equal(xd, want_c["train"][0])


def test_default_data_dir_is_keras_minent_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MINENT_DATA", str(tmp_path / "env"))
    write_files(tmp_path / "raw")
    datasets.load_arrays("test", idx_dir=tmp_path / "raw", loader="numpy")
    assert (tmp_path / "env" / arrays.CACHE_NAME).is_file()


def test_synthetic_files_are_recorded_as_synthetic(tmp_path):
    write_files(tmp_path / "raw", synthetic=True)
    rec = datasets.provenance(tmp_path / "data", tmp_path / "raw", loader="numpy")
    assert rec["source"] == "synthetic" and not rec["verified"]
    write_files(tmp_path / "raw")  # rewritten without the flag: the marker goes
    rec = datasets.provenance(tmp_path / "data", tmp_path / "raw", loader="numpy")
    assert rec["source"] == "idx_dir_unverified"


def test_offline_without_data_fails_fast(tmp_path, monkeypatch):
    t0 = time.time()
    with pytest.raises(idx.EmnistDataError, match="gzip.zip.*downloads/manual"):
        datasets.load_arrays("train", tmp_path, download=False, loader="numpy")
    monkeypatch.setattr(download, "network_reachable", lambda *a, **k: False)
    with pytest.raises(idx.EmnistDataError, match="network is unreachable"):
        datasets.load_arrays("train", tmp_path, loader="numpy")
    with pytest.raises(idx.EmnistDataError, match="lacks"):
        datasets.load_arrays("train", tmp_path, idx_dir=tmp_path, loader="numpy")
    assert time.time() - t0 < 30
    assert not any(tmp_path.rglob("*.npz"))


def _zip(raw, path):
    with zipfile.ZipFile(path, "w") as zf:
        for name in idx.REQUIRED_FILES:
            zf.write(raw / name, f"gzip/{name}")
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size


def test_download_is_atomic_and_checked(tmp_path):
    raw = tmp_path / "raw"
    write_files(raw)
    sha, size = _zip(raw, tmp_path / "src.zip")
    url = (tmp_path / "src.zip").as_uri()
    dest = tmp_path / "dl" / "gzip.zip"
    with pytest.raises(idx.EmnistDataError, match="checksum mismatch"):
        download.download(url, dest, "0" * 64)
    with pytest.raises(idx.EmnistDataError, match="incomplete"):
        download.download(url, dest, sha, size + 1)
    assert list((tmp_path / "dl").iterdir()) == []  # nothing partial left
    download.download(url, dest, sha, size)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha


def test_nist_archive_downloaded_or_manual_is_verified(tmp_path, monkeypatch):
    """The whole path with a stand-in for NIST's archive (its SHA-256 patched in)."""
    raw = tmp_path / "raw"
    want = write_files(raw)
    sha, size = _zip(raw, tmp_path / "src.zip")
    monkeypatch.setattr(idx, "URL", (tmp_path / "src.zip").as_uri())
    monkeypatch.setattr(idx, "ZIP_SHA256", sha)
    monkeypatch.setattr(idx, "ZIP_SIZE", size)
    monkeypatch.setattr(download, "network_reachable", lambda *a, **k: True)
    x, y, rec = datasets.load_arrays_with_info("test", tmp_path / "data", loader="numpy")
    np.testing.assert_array_equal(x, want["test"][0])
    assert rec["source"] == "nist_archive_verified" and rec["verified"]
    assert (tmp_path / "data" / "downloads" / "gzip.zip").is_file()
    # A zip in the manual directory that is not NIST's is refused.
    manual = tmp_path / "other" / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "gzip.zip").write_bytes(b"PK not the archive")
    with pytest.raises(idx.EmnistDataError, match="checksum mismatch"):
        datasets.load_arrays("train", tmp_path / "other", download=False, loader="numpy")


def test_training_batches_follow_seed_and_epoch():
    images, labels = idx.synthetic_letters(50, seed=3)
    ds = datasets.training_dataset(images, labels, 16, seed=7, epochs=3, pipeline="numpy")
    assert isinstance(ds, keras.utils.PyDataset) and len(ds) == 4
    seen = []
    for epoch in range(3):
        assert ds.epoch == epoch
        batches = [ds[i] for i in range(len(ds))]
        want = order.epoch_batches(50, 16, 7, epoch)
        for (x, y), b in zip(batches, want):
            np.testing.assert_array_equal(y, labels[b])
            np.testing.assert_array_equal(x, images[b])
        seen.append(np.concatenate([y for _, y in batches]))
        ds.on_epoch_end()
    assert sorted(seen[0].tolist()) == sorted(labels.tolist())
    assert seen[0].tolist() != seen[1].tolist()
    # An epoch that was only peeked at (fit builds the model on one batch) does not count.
    resumed = datasets.training_dataset(images, labels, 16, 7, 3, 2, pipeline="numpy")
    resumed[0]
    resumed.on_epoch_end()
    assert resumed.epoch == 2
    with pytest.warns(UserWarning, match="shuffle=False"):
        resumed[2]  # fit(shuffle=True) would ask in a random order
    np.testing.assert_array_equal(np.concatenate([resumed[i][1] for i in range(4)]), seen[2])
    dropped = datasets.training_dataset(
        images, labels, 16, 7, 2, drop_remainder=True, pipeline="numpy"
    )
    assert len(dropped) == 3 and all(len(dropped[i][1]) == 16 for i in range(3))
    with pytest.raises(ValueError, match="equal parts"):
        datasets.training_dataset(images, labels, 16, 7, 2, shard=(0, 2), pipeline="numpy")
    ev = datasets.evaluation_dataset(images, labels, 16, pipeline="numpy")
    np.testing.assert_array_equal(np.concatenate([ev[i][1] for i in range(len(ev))]), labels)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="custom JAX train_step")
@pytest.mark.parametrize("batch, with_callback", [(8, False), (8, True), (40, True)])
def test_fit_sees_the_order_of_each_epoch_and_resumes_exactly(batch, with_callback):
    """Epoch e of fit trains on the batches of (seed, e), also from initial_epoch=1.

    One batch per epoch (batch 40) needs `epoch_callback()` (see `loaders`)."""
    images, labels = idx.synthetic_letters(40, seed=1)

    class Recorder(keras.Model):
        seen: list = []

        def train_step(self, state, data):
            Recorder.seen.append(np.asarray(data[1]).tolist())
            return super().train_step(state, data)

    def run(initial_epoch):
        Recorder.seen = []
        inputs = keras.Input((28, 28, 1))
        outputs = keras.layers.Dense(26)(keras.layers.Flatten()(inputs))
        model = Recorder(inputs, outputs)
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.run_eagerly = True
        ds = datasets.training_dataset(
            images, labels, batch, 5, 2, initial_epoch, pipeline="numpy"
        )
        callbacks = [ds.epoch_callback()] if with_callback else []
        model.fit(
            ds,
            epochs=2,
            initial_epoch=initial_epoch,
            steps_per_epoch=datasets.steps_per_epoch(40, batch),
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, per (seed, epoch)
            verbose=0,
        )
        return Recorder.seen

    want = [labels[b].tolist() for e in (0, 1) for b in order.epoch_batches(40, batch, 5, e)]
    assert run(0) == want
    assert run(1) == want[len(want) // 2 :]


def test_no_tensorflow_imported_by_the_numpy_path(tmp_path):
    from keras_minent.testing import run_python

    write_files(tmp_path / "raw")
    code = f"""
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow fails
sys.modules["tensorflow_datasets"] = None
from keras_minent import datasets
x, y = datasets.load_arrays("train_without_validation", {str(tmp_path / "d")!r},
                            {str(tmp_path / "raw")!r}, loader="numpy")
ds = datasets.training_dataset(x, y, 16, seed=0, epochs=1, pipeline="numpy")
print(len(x), len(ds), ds[0][0].shape)
"""
    # Keras's NumPy backend: importable wherever Keras is, whatever this process runs.
    out = run_python(code, env={"KERAS_BACKEND": "numpy"})
    assert out.split() == ["110", "7", "(16,", "28,", "28,", "1)"]
    assert os.path.isfile(tmp_path / "d" / arrays.CACHE_NAME)
