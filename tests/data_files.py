"""Small generated dataset files (IDX, .npz, PNG folders) for the `--dataset` tests."""

from __future__ import annotations

import gzip

import numpy as np

from keras_minent.datasets import idx


def arrays(n, shape=(28, 28), labels=(3, 5, 9), seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n, *shape)).astype(np.uint8),
        rng.choice(np.asarray(labels), n).astype(np.uint8),
    )


def write_idx(path, array, gz):
    payload = idx.encode_idx(array)
    with open(path, "wb") as f:
        f.write(gzip.compress(payload, mtime=0) if gz else payload)


def mnist_dir(tmp_path, gz=True, dotted=False, n=(24, 12)):
    d = tmp_path / "mnist"
    d.mkdir()
    data = {"train": arrays(n[0], seed=1), "test": arrays(n[1], seed=2)}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind, a in zip(("images", "labels"), data[split]):
            dim = "idx3" if kind == "images" else "idx1"
            name = f"{prefix}-{kind}.{dim}-ubyte" if dotted else f"{prefix}-{kind}-{dim}-ubyte"
            write_idx(d / (name + (".gz" if gz else "")), a, gz)
    return d, data


def write_png(path, size=(20, 18), mode="RGB", value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    channels = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, channels).astype(np.uint8), mode).save(path)


def save_npz(tmp_path, **arrays_):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays_)
    return str(path)


def good_npz(**over):
    (xt, yt), (xs, ys) = arrays(20), arrays(8, seed=1)
    return {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys, **over}
