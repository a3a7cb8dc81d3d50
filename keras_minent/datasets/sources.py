"""Any image-classification dataset as a run's official split: what `--dataset` names.

How a `--dataset` string is read, in this order:

1. `emnist_letters` (the default): EMNIST-Letters with the official split,
   the package's own loader (`arrays`, `emnist`; `--idx-dir` applies). A file
   or directory of that name is written `./emnist_letters`.
2. An existing path, recognised by its content (`local`, `folders`):
   * a file: a `.npz` holding `x_train`, `y_train`, `x_test`, `y_test`
     (the layout of `keras.datasets`);
   * a directory of IDX files, MNIST's layout (`train-images-idx3-ubyte[.gz]`,
     `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`,
     `t10k-labels-idx1-ubyte[.gz]`, also spelled `train-images.idx3-ubyte`)
     or EMNIST's (`emnist-<subset>-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]`,
     images stored transposed);
   * a directory of images in class folders (`train/` and `test/` each with
     one folder per class, or the class folders directly: then 1/6 of each
     class's images, chosen by a fixed permutation, are the test split).
3. `<dir>/emnist-<subset>` (no such file): that EMNIST subset among several in `<dir>`.
4. Otherwise a tensorflow-datasets name (`mnist`, `cifar10`, `emnist/balanced`,
   `fashion_mnist:3.*`; `tfds_source`), prepared by tfds in `--data-dir`.

Every source gives `({"train": (images, labels), "test": (images, labels)},
record)`: uint8 images `(N, H, W, C)` and int64 labels `0..K-1` (the sorted
original labels, or the sorted class folder names), and a record (`records`
documents the EMNIST fields) with `dataset`, `kind`, `location`, `version`
(tfds) or `files_sha256`, `counts`, `num_classes`, `input_shape`,
`label_mapping` (`{original label or folder name: class id}`), `arrays_sha256`
and `fingerprint` (of the arrays, as for EMNIST-Letters).
"""

from __future__ import annotations

import os
import re

import numpy as np

from keras_minent.datasets import records
from keras_minent.datasets.idx import DataError

EMNIST_LETTERS = "emnist_letters"
#: A tensorflow-datasets name: `name[/config][:version]`.
TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?(:[0-9.*]+)?$")
#: The models pool four times by 2.
MIN_SIZE = 16
PUBLISHED_NOTE = "published (MNIST's constants, the recipe's)"
#: The recipe's normalisation of EMNIST-Letters (MNIST's constants; `models.MEAN`, `models.STD`).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def kind_of(dataset: str) -> str:
    """How `dataset` is read: `"emnist_letters"`, `"npz"`, `"idx"`, `"image_folders"`
    or `"tfds"` (see the module docstring).

    Raises:
        DataError: If `dataset` is a path of neither form, or neither a path
            nor a tensorflow-datasets name.
    """
    from keras_minent.datasets import folders, local

    if not isinstance(dataset, str) or not dataset:
        raise DataError(f"--dataset must be a name or a path, got {dataset!r}.")
    if dataset == EMNIST_LETTERS:
        return EMNIST_LETTERS
    path = os.path.expanduser(dataset)
    if os.path.isfile(path):
        return "npz"
    if os.path.isdir(path):
        if local.is_idx_dir(path):
            return "idx"
        if folders.layout(path) is not None:
            return "image_folders"
        raise DataError(
            f"--dataset {dataset}: the directory holds neither IDX files (MNIST's "
            "train-images-idx3-ubyte[.gz] ... or EMNIST's emnist-<subset>-train-images-idx3-"
            "ubyte[.gz] ...) nor images in class folders (train/<class>/*.png and "
            "test/<class>/*.png, or <class>/*.png)."
        )
    if local.emnist_prefix_files(path) is not None:
        return "idx"
    if TFDS_NAME.match(dataset) and not dataset.startswith((".", "~")):
        return "tfds"
    raise DataError(
        f"--dataset {dataset}: no such file or directory, and not a tensorflow-datasets name."
    )


def load(dataset: str, data_dir: str | None = None, download: bool = True) -> tuple[dict, dict]:
    """The official split of a dataset other than `emnist_letters`, and its record.

    Args:
        dataset: A path or a tensorflow-datasets name (see the module docstring).
        data_dir: The data directory of tensorflow-datasets names (default
            `arrays.default_data_dir()`); unused by files.
        download: If False, tfds never uses the network.

    Returns:
        `({"train": (images, labels), "test": (images, labels)}, record)`.

    Raises:
        DataError: If the data cannot be found or read, or is inconsistent
            (the message names the file and what is wrong).
        MissingExtraError: If the source needs an optional part (tfds, Pillow).

    Example:
    ```python
    official, record = keras_minent.datasets.sources.load("data/fashion")
    x_train, y_train = official["train"]  # uint8 (60000, 28, 28, 1), int64 0..9
    ```
    """
    from keras_minent.datasets import folders, local, tfds_source

    kind = kind_of(dataset)
    if kind == EMNIST_LETTERS:
        raise ValueError("emnist_letters is read by keras_minent.datasets.selection.")
    path = os.path.abspath(os.path.expanduser(dataset))
    if kind == "npz":
        raw, info = local.read_npz(path)
    elif kind == "idx":
        raw, info = local.read_idx_dir(path)
    elif kind == "image_folders":
        raw, info = folders.read_image_folders(path)
    else:
        raw, info = tfds_source.read_tfds(dataset, data_dir, download)
    return finish(raw, {"dataset": dataset, "kind": kind, **info})


def _images(images, where: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(
            f"{where}: images must be (N, height, width[, channels]), got shape {images.shape}."
        )
    if images.dtype == np.uint8:
        return images
    in_range = images.size == 0 or (images.min() >= 0 and images.max() <= 255)
    if images.dtype.kind in "iu" and in_range:
        return images.astype(np.uint8)
    if images.dtype.kind == "f" and in_range and np.all(images == np.round(images)):
        return images.astype(np.uint8)  # whole numbers 0..255 stored as floats
    raise DataError(
        f"{where}: images must be whole pixel values 0..255 (the models scale by 1/255; "
        "images scaled to 0..1 must be multiplied by 255 first), "
        f"got {images.dtype}"
        + (f" in {images.min()}..{images.max()}" if images.size else "")
        + "."
    )


def _labels(labels, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"{where}: labels must be one integer per image, got shape {labels.shape}."
        )
    if labels.dtype.kind in "iu":
        return labels.astype(np.int64)
    if (
        labels.dtype.kind == "f"
        and np.all(np.isfinite(labels))
        and np.all(labels == np.round(labels))
    ):
        return labels.astype(np.int64)
    example = labels[:3].tolist()
    raise DataError(
        f"{where}: labels must be integers (class ids), got {labels.dtype} such as {example}."
    )


def finish(raw: dict, info: dict) -> tuple[dict, dict]:
    """Checks a source's arrays, maps the labels to `0..K-1` and makes the record.

    Args:
        raw: `{"train": (images, labels), "test": (images, labels)}` as read,
            with the original labels (integers; for class folders, indices
            into `info["class_names"]`).
        info: The source's fields of the record; `where` (`{split: the files
            read}`) names the files in messages and is dropped.

    Raises:
        DataError: On an empty split, image and label counts that differ,
            labels that are not integers, fewer than 2 classes, test labels
            that the training split lacks, or images of other shapes than
            the training images or smaller than 16x16.
    """
    info = dict(info)
    where = info.pop("where", {})
    out = {}
    for split in ("train", "test"):
        name = where.get(split) or f"{info.get('dataset')} ({split})"
        images, labels = raw[split]
        images, labels = _images(images, name), _labels(labels, name)
        if len(images) != len(labels):
            raise DataError(
                f"{name}: {len(images)} images but {len(labels)} labels; they must be as many."
            )
        if len(labels) == 0:
            raise DataError(f"{name}: the {split} split is empty.")
        out[split] = (images, labels)
    shape = out["train"][0].shape[1:]
    if out["test"][0].shape[1:] != shape:
        raise DataError(
            f"{where.get('test') or info.get('dataset')}: test images are "
            f"{out['test'][0].shape[1:]}, the training images {shape}: they must be the same."
        )
    if min(shape[:2]) < MIN_SIZE:
        raise DataError(
            f"{info.get('dataset')}: images of {shape[0]}x{shape[1]}; the models pool four times "
            f"by 2 and need at least {MIN_SIZE}x{MIN_SIZE}."
        )
    classes = np.unique(out["train"][1])
    if len(classes) < 2:
        raise DataError(
            f"{where.get('train') or info.get('dataset')}: {len(classes)} class(es) "
            f"({classes.tolist()}); classification needs at least 2."
        )
    unseen = np.setdiff1d(np.unique(out["test"][1]), classes)
    if len(unseen):
        raise DataError(
            f"{where.get('test') or info.get('dataset')}: labels {unseen[:10].tolist()} "
            "occur in the test split but not in the training split."
        )
    mapped = {s: (x, np.searchsorted(classes, y).astype(np.int64)) for s, (x, y) in out.items()}
    names = info.pop("class_names", None)
    if info.get("kind") == "image_folders":
        mapping = {names[int(c)]: i for i, c in enumerate(classes)}
    else:
        mapping = {str(int(c)): i for i, c in enumerate(classes)}
        if names is not None:
            info["class_names"] = [str(names[int(c)]) for c in classes]
    digests = records.arrays_sha256(mapped)
    record = {
        "format": records.FORMAT,
        "source": info.get("kind"),
        "verified": None,
        **info,
        "arrays_sha256": digests,
        "fingerprint": records.fingerprint_of(digests),
        "counts": {s: int(len(mapped[s][1])) for s in ("train", "test")},
        "num_classes": int(len(classes)),
        "input_shape": [int(d) for d in shape],
        "label_mapping": mapping,
    }
    return mapped, record


def emnist_record(record: dict) -> dict:
    """A copy of an EMNIST-Letters record with the fields every source records."""
    return {
        **record,
        "dataset": EMNIST_LETTERS,
        "kind": EMNIST_LETTERS,
        "num_classes": 26,
        "input_shape": [28, 28, 1],
        "label_mapping": {str(i + 1): i for i in range(26)},
        "class_names": [chr(ord("a") + i) for i in range(26)],
    }


def channel_statistics(images: np.ndarray, chunk: int = 4096) -> tuple[list, list]:
    """Per-channel mean and standard deviation of uint8 images, in the [0, 1] scale.

    Computed in float64, `chunk` images at a time.

    Raises:
        DataError: If there are no images or a channel is constant.
    """
    n, channels = len(images), images.shape[-1]
    if n == 0:
        raise DataError("No images to compute the normalisation statistics from.")
    total = np.zeros(channels)
    squares = np.zeros(channels)
    for start in range(0, n, chunk):
        x = images[start : start + chunk].astype(np.float64) / 255.0
        total += x.sum(axis=(0, 1, 2))
        squares += np.square(x).sum(axis=(0, 1, 2))
    count = n * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    if np.any(std <= 1e-6):
        raise DataError(
            f"Channel(s) {np.flatnonzero(std <= 1e-6).tolist()} of the training images are "
            "constant: there is nothing to learn from them."
        )
    return [float(v) for v in mean], [float(v) for v in std]


def describe(record: dict) -> str:
    """One line saying where the data came from (any source)."""
    kind = record.get("kind")
    if kind in (None, EMNIST_LETTERS):
        return records.describe(record)
    if kind == "tfds":
        return (
            f"tensorflow-datasets {record.get('name')} {record.get('version')} in "
            f"{record.get('location')}"
        )
    what = {"npz": "the .npz file", "idx": "IDX files in", "image_folders": "image folders in"}
    return f"{what.get(kind, kind)} {record.get('location')}"
