"""Datasets in local files: a `.npz` of `keras.datasets`' layout, or a directory of IDX files.

IDX directories come in two layouts:

* MNIST's (also Fashion-MNIST's, KMNIST's): `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`,
  each possibly gzipped (`.gz`), also spelled `train-images.idx3-ubyte`;
  images stored upright.
* EMNIST's: `emnist-<subset>-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]`
  (NIST's `gzip/` folder, torchvision's `EMNIST/raw`); images stored
  transposed (read upright here). A directory holding several subsets is
  named with the subset: `<dir>/emnist-balanced`.

Gzipped files are recognised by their content, not their name.
"""

from __future__ import annotations

import math
import os
import re
import zipfile

import numpy as np

from keras_minent.datasets import idx
from keras_minent.datasets.idx import DataError

#: MNIST's file names (without `.gz`) by (split, kind), in the order they are tried.
MNIST_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_EMNIST_FILE = re.compile(r"^emnist-(.+)-(train|test)-(images-idx3|labels-idx1)-ubyte(\.gz)?$")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _candidates(directory: str, stems) -> list[str]:
    return [
        os.path.join(directory, stem + suffix)
        for stem in stems
        for suffix in ("", ".gz")
        if os.path.isfile(os.path.join(directory, stem + suffix))
    ]


def _find(directory: str, stems) -> str | None:
    """The file of one of `stems` (gzipped or not), or None.

    Raises:
        DataError: If several are there and their contents differ (which one is
            meant cannot be known), naming them.
    """
    found = _candidates(directory, stems)
    if len(found) > 1:
        first = _uncompressed(found[0])
        for other in found[1:]:
            if _uncompressed(other) != first:
                raise DataError(
                    f"{found[0]} and {other} are both there but hold different data: "
                    "which one is meant is ambiguous. Remove one of them."
                )
    return found[0] if found else None


def _uncompressed(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    return idx.gunzip_idx(data, path) if data[:2] == b"\x1f\x8b" else data


def _mnist_files(directory: str) -> dict | None:
    """`{(split, kind): path}` of MNIST's layout; None if none of its files is there.

    Raises:
        DataError: If some of the four files are there and others missing.
    """
    found = {key: _find(directory, stems) for key, stems in MNIST_NAMES.items()}
    if not any(found.values()):
        return None
    missing = [MNIST_NAMES[k][0] + "[.gz]" for k, p in found.items() if p is None]
    if missing:
        raise DataError(
            f"{directory} holds MNIST-layout IDX files but lacks {', '.join(missing)}."
        )
    return found


def emnist_subsets(directory: str) -> list[str]:
    """The EMNIST subsets whose files are in `directory` (sorted)."""
    if not os.path.isdir(directory):
        return []
    return sorted({m.group(1) for n in os.listdir(directory) if (m := _EMNIST_FILE.match(n))})


def emnist_prefix_files(prefix: str) -> dict | None:
    """`{(split, kind): path}` for `<dir>/emnist-<subset>`; None if no such files."""
    directory, base = os.path.split(prefix)
    m = re.match(r"^emnist-(.+)$", base)
    if not m or m.group(1) not in emnist_subsets(directory or "."):
        return None
    return _emnist_files(directory or ".", m.group(1))


def _emnist_files(directory: str, subset: str) -> dict:
    kinds = {"images": "images-idx3", "labels": "labels-idx1"}
    found = {
        (s, k): _find(directory, [f"emnist-{subset}-{s}-{kinds[k]}-ubyte"])
        for s in ("train", "test")
        for k in kinds
    }
    missing = [
        f"emnist-{subset}-{s}-{kinds[k]}-ubyte[.gz]" for (s, k), p in found.items() if not p
    ]
    if missing:
        raise DataError(f"{directory} lacks {', '.join(missing)}.")
    return found


def is_idx_dir(directory: str) -> bool:
    """Whether `directory` holds IDX files of either layout (complete or not)."""
    found = any(_candidates(directory, stems) for stems in MNIST_NAMES.values())
    return found or bool(emnist_subsets(directory))


def _idx_files(path: str) -> tuple[dict, bool]:
    """`({(split, kind): file}, transposed)` of an IDX directory or EMNIST prefix."""
    if not os.path.isdir(path):
        files = emnist_prefix_files(path)
        if files is None:
            raise DataError(f"{path}: no such directory or EMNIST subset.")
        return files, True
    mnist = _mnist_files(path)
    if mnist is not None:
        return mnist, False
    subsets = emnist_subsets(path)
    if len(subsets) > 1:
        raise DataError(
            f"{path} holds the EMNIST subsets {', '.join(subsets)}: name one, e.g. --dataset "
            f"{os.path.join(path, 'emnist-' + subsets[0])}."
        )
    if not subsets:
        raise DataError(f"{path} holds no IDX files.")
    return _emnist_files(path, subsets[0]), True


def read_idx_file(path: str, ndim: int) -> np.ndarray:
    """One IDX file (gzipped or not, by content) with `ndim` dimensions.

    Raises:
        DataError: If it is unreadable, corrupt, or of another dimension.
    """
    name = os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = idx.gunzip_idx(data, path)
    array = idx.parse_idx(data, path)
    if array.ndim != ndim:
        what = "images (3 dimensions)" if ndim == 3 else "labels (1 dimension)"
        raise DataError(f"{path}: expected {what}, got shape {array.shape} ({name}).")
    return array


def read_idx_dir(path: str) -> tuple[dict, dict]:
    """Reads a directory of IDX files (or `<dir>/emnist-<subset>`).

    Returns:
        `({split: (images, labels)}, info)`: uint8 images `(N, H, W)`
        (upright), original labels, and the record's fields (`location`,
        `layout`, `files_sha256`, `where`).

    Raises:
        DataError: If a file is missing, corrupt or of another kind.
    """
    files, transposed = _idx_files(path)
    raw = {}
    for split in ("train", "test"):
        images = read_idx_file(files[(split, "images")], 3)
        labels = read_idx_file(files[(split, "labels")], 1)
        if len(images) != len(labels):
            raise DataError(
                f"{files[(split, 'images')]} holds {len(images)} images but "
                f"{files[(split, 'labels')]} {len(labels)} labels: they do not belong together."
            )
        if transposed:
            images = np.ascontiguousarray(images.transpose(0, 2, 1))
        raw[split] = (images, labels)
    info = {
        "location": os.path.abspath(path),
        "layout": "emnist (images transposed)" if transposed else "mnist",
        "files_sha256": {os.path.basename(p): idx.sha256_of(p) for p in files.values()},
        "where": {
            s: f"{files[(s, 'images')]} / {os.path.basename(files[(s, 'labels')])}"
            for s in ("train", "test")
        },
    }
    return raw, info


def check_npz_sizes(path: str) -> None:
    """Checks the shape each `.npy` header in the `.npz` at `path` declares against the
    size of its member and `idx.memory_budget`, before any array is allocated.

    Raises:
        DataError: Naming the file and the array whose header does not fit.
        zipfile.BadZipFile, ValueError: If the file or a header is unreadable.
    """
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(f)
                header = f.tell()
            nbytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
            name = f"{path} ({info.filename[:-4]})"
            declared = f"the header declares shape {shape} of {dtype}"
            if not dtype.hasobject and header + nbytes != info.file_size:
                raise DataError(
                    f"{name}: {declared} ({nbytes} bytes) but the array holds "
                    f"{info.file_size - header} bytes: the file is corrupt or not a dataset. "
                    "Export it again (numpy.savez)."
                )
            idx.check_budget(nbytes, name, declared)


def read_npz(path: str) -> tuple[dict, dict]:
    """Reads a `.npz` holding `x_train`, `y_train`, `x_test`, `y_test`.

    Returns:
        `({split: (images, labels)}, info)` with `location`, `files_sha256`, `where`.

    Raises:
        DataError: If the file is not a readable `.npz` or lacks a key.
    """
    try:
        check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataError(
                    f"{path} lacks {', '.join(missing)} (it holds {', '.join(z.files) or 'nothing'}"
                    "); a dataset .npz holds x_train, y_train, x_test, y_test."
                )
            arrays = {k: z[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{path}: not a readable .npz file ({e}); a dataset .npz holds x_train, y_train, "
            "x_test, y_test (numpy.savez)."
        ) from e
    raw = {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "test")}
    info = {
        "location": os.path.abspath(path),
        "files_sha256": {os.path.basename(path): idx.sha256_of(path)},
        "where": {s: f"{path} (x_{s}, y_{s})" for s in ("train", "test")},
    }
    return raw, info
