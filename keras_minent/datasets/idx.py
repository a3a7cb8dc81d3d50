"""Reading EMNIST-Letters from NIST's IDX files, with strict checks (NumPy only).

NIST distributes EMNIST as one zip, `gzip.zip`, whose folder `gzip/` holds
gzipped IDX files; torchvision's `EMNIST/raw` holds the same files. For the
letters, four files matter:

```
emnist-letters-train-images-idx3-ubyte.gz   124,800 images, 28x28 uint8
emnist-letters-train-labels-idx1-ubyte.gz   124,800 labels, 1..26
emnist-letters-test-images-idx3-ubyte.gz     20,800 images
emnist-letters-test-labels-idx1-ubyte.gz     20,800 labels
```

Images are stored transposed; labels count from 1 (a/A = 1).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import math
import os
import zipfile
from collections.abc import Iterable

import numpy as np

from keras_minent._atomic import write_bytes
from keras_minent.errors import DataError, EmnistDataError

logger = logging.getLogger(__name__)

#: NIST's archive of all EMNIST data, and its size and SHA-256 (as tfds records them).
URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
ZIP_NAME = "gzip.zip"
ZIP_SIZE = 561753746
ZIP_SHA256 = "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"

NUM_CLASSES = 26
IMAGE_SHAPE = (28, 28, 1)
#: Sizes of the official split.
OFFICIAL_COUNTS = {"train": 124_800, "test": 20_800}
SPLITS = ("train", "test")


def file_name(split: str, kind: str) -> str:
    """Name of an official file, e.g. `file_name("train", "images")`."""
    idx = "idx3" if kind == "images" else "idx1"
    return f"emnist-letters-{split}-{kind}-{idx}-ubyte.gz"


REQUIRED_FILES = tuple(file_name(s, k) for s in SPLITS for k in ("images", "labels"))


_IDX_DTYPES = {0x08: np.uint8}


def memory_budget() -> int:
    """The most bytes one data array may take: half of this machine's memory (64 GiB
    where that is unknown). Sizes a file declares are checked against it (and
    against the file's own size) before anything is allocated."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 64 << 30


def check_budget(nbytes: int, name: str, declared: str) -> None:
    """Refuses `declared` (what a file's header says, `nbytes` in all) over `memory_budget`.

    Raises:
        DataError: Naming `name`, before anything is allocated.
    """
    budget = memory_budget()
    if nbytes > budget:
        raise DataError(
            f"{name}: {declared} ({nbytes} bytes), more than the memory budget of "
            f"{budget} bytes (half this machine's memory): the file is corrupt or not "
            "a dataset. Download or export it again."
        )


def idx_header(data: bytes, name: str = "<bytes>") -> tuple[int, tuple[int, ...], int]:
    """`(dtype code, shape, header bytes)` of the IDX file whose first bytes are `data`.

    Raises:
        EmnistDataError: If the magic number is wrong or the header truncated.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise EmnistDataError(
            f"{name}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; "
            "expected 0x0000080N). Is it the right file, and un-gzipped?"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code not in _IDX_DTYPES or ndim not in (1, 3):
        raise EmnistDataError(
            f"{name}: bad magic number 0x{data[:4].hex()}: expected unsigned bytes "
            "(0x08) with 1 (labels) or 3 (images) dimensions."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise EmnistDataError(f"{name}: truncated IDX header.")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return dtype_code, shape, header


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parses one (uncompressed) IDX file.

    Args:
        data: The file's bytes.
        name: Name used in error messages.

    Returns:
        The array, with the shape the header declares.

    Raises:
        EmnistDataError: If the magic number is wrong, the dtype is not
            uint8, or the file is truncated or too long.
    """
    dtype_code, shape, header = idx_header(data, name)
    expected = header + math.prod(shape)  # Python integers: no overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise EmnistDataError(
            f"{name}: {what}: the header declares shape {shape} "
            f"({expected} bytes in all) but the file has {len(data)} bytes. "
            "Download the file again."
        )
    return np.frombuffer(data, dtype=_IDX_DTYPES[dtype_code], offset=header).reshape(shape)


def gunzip_idx(raw: bytes, name: str) -> bytes:
    """The uncompressed IDX file in the gzip data `raw`: its header is read first, and
    no more than the size it declares (within `memory_budget`) is decompressed.

    Raises:
        EmnistDataError: If the gzip data or the IDX header is corrupt, or the
            declared size is over the budget.
    """
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            head = f.read(16)  # the longest header (3 dimensions)
            _, shape, header = idx_header(head, name)
            expected = header + math.prod(shape)
            check_budget(expected, name, f"the header declares shape {shape}")
            return head + f.read(max(0, expected + 1 - len(head)))  # one more: a longer file shows
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise EmnistDataError(
            f"{name}: corrupt or truncated gzip file ({e}). Download it again."
        ) from e


def decode_split(
    image_bytes: bytes, label_bytes: bytes, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes one split from its two gzipped IDX files.

    Args:
        image_bytes: Contents of `emnist-letters-{split}-images-idx3-ubyte.gz`.
        label_bytes: Contents of `emnist-letters-{split}-labels-idx1-ubyte.gz`.
        split: `"train"` or `"test"` (for messages and the count check).

    Returns:
        `(images, labels)`: uint8 images of shape `(N, 28, 28, 1)`, upright,
        and int64 labels in `0..25` (a/A = 0).

    Raises:
        EmnistDataError: On any format error, a count mismatch between
            images and labels, or labels outside 1..26.
    """
    img_name, lab_name = file_name(split, "images"), file_name(split, "labels")
    images = parse_idx(gunzip_idx(image_bytes, img_name), img_name)
    labels = parse_idx(gunzip_idx(label_bytes, lab_name), lab_name)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise EmnistDataError(f"{img_name}: expected 28x28 images, got shape {images.shape}.")
    if labels.ndim != 1:
        raise EmnistDataError(f"{lab_name}: expected a 1-D label file, got shape {labels.shape}.")
    if len(images) != len(labels):
        raise EmnistDataError(
            f"EMNIST-Letters {split}: {len(images)} images but {len(labels)} labels; "
            "the two files do not belong together."
        )
    if len(labels) and (labels.min() < 1 or labels.max() > NUM_CLASSES):
        raise EmnistDataError(
            f"{lab_name}: labels must be 1..26 (EMNIST-Letters), found "
            f"{labels.min()}..{labels.max()}. Is this the letters file?"
        )
    if len(images) != OFFICIAL_COUNTS[split]:
        logger.warning(
            "EMNIST-Letters %s has %d examples, not the official %d: results on it "
            "are not comparable with the paper.",
            split,
            len(images),
            OFFICIAL_COUNTS[split],
        )
    upright = np.ascontiguousarray(images.transpose(0, 2, 1))[..., None]
    return upright, labels.astype(np.int64) - 1


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_zip(path: str | os.PathLike, sha256: str | None = ZIP_SHA256) -> None:
    """Verifies NIST's `gzip.zip` by its SHA-256.

    Raises:
        EmnistDataError: If the checksum does not match.
    """
    if sha256 is None:
        return
    got = sha256_of(path)
    if got != sha256:
        raise EmnistDataError(
            f"{path}: checksum mismatch (SHA-256 {got}, expected {sha256} for NIST's "
            f"{ZIP_NAME}, {ZIP_SIZE} bytes). The file is incomplete or not the "
            f"original: delete it and download {URL} again."
        )


def read_zip(path: str | os.PathLike, splits: Iterable[str] = SPLITS) -> dict:
    """Reads splits from NIST's `gzip.zip` (files under `gzip/`), without extracting it.

    Returns:
        `{split: (images, labels)}` as `decode_split` returns them.

    Raises:
        EmnistDataError: If the zip is corrupt or lacks a file.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = {os.path.basename(n): n for n in zf.namelist()}
            out = {}
            for split in splits:
                blobs = []
                for kind in ("images", "labels"):
                    name = file_name(split, kind)
                    if name not in members:
                        raise EmnistDataError(
                            f"{path}: {name} is missing from the zip; expected NIST's "
                            f"EMNIST {ZIP_NAME} (folder gzip/)."
                        )
                    blobs.append(zf.read(members[name]))
                out[split] = decode_split(*blobs, split)
            return out
    except zipfile.BadZipFile as e:
        raise EmnistDataError(f"{path}: not a valid zip file ({e}). Download it again.") from e


def missing_files(directory: str | os.PathLike) -> list[str]:
    """The official files that `directory` lacks."""
    return [n for n in REQUIRED_FILES if not os.path.isfile(os.path.join(directory, n))]


def read_directory(directory: str | os.PathLike, splits: Iterable[str] = SPLITS) -> dict:
    """Reads splits from a directory of the four `emnist-letters-*-ubyte.gz` files.

    That is the layout of the `gzip/` folder of NIST's zip and of
    torchvision's `EMNIST/raw`.

    Returns:
        `{split: (images, labels)}` as `decode_split` returns them.

    Raises:
        EmnistDataError: If a file is missing or corrupt.
    """
    missing = missing_files(directory)
    if missing:
        raise EmnistDataError(f"{directory} lacks {', '.join(missing)}.")
    out = {}
    for split in splits:
        blobs = []
        for kind in ("images", "labels"):
            with open(os.path.join(directory, file_name(split, kind)), "rb") as f:
                blobs.append(f.read())
        out[split] = decode_split(*blobs, split)
    return out


def encode_idx(array: np.ndarray) -> bytes:
    """Encodes a uint8 array as an IDX file (for tests and tools)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.tobytes()


def write_official_files(
    directory: str | os.PathLike,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    zip_path: str | os.PathLike | None = None,
    synthetic: bool = False,
) -> None:
    """Writes upright images and 0-based labels in the official format.

    The inverse of `read_directory`: images are transposed back and labels
    stored as 1..26, gzipped. With `zip_path`, also writes a zip in NIST's
    layout (`gzip/emnist-letters-*`). Used by the tests and by `--synthetic`.

    Args:
        directory: Where to write the four files.
        data: `{split: (images (N, 28, 28[, 1]) uint8, labels 0..25)}`.
        zip_path: Optional path of a zip to write as well.
        synthetic: Also leave a marker file (`keras_minent_synthetic.json`)
            so that data prepared from the directory is recorded as
            `"synthetic"` (else it is `"idx_dir_unverified"`).
    """
    os.makedirs(directory, exist_ok=True)
    marker = os.path.join(directory, "keras_minent_synthetic.json")
    if synthetic:
        write_bytes(marker, b'{"synthetic": true}\n')
    elif os.path.isfile(marker):
        os.unlink(marker)
    zf = zipfile.ZipFile(zip_path, "w") if zip_path else None
    try:
        for split, (images, labels) in data.items():
            images = np.asarray(images, np.uint8).reshape(len(images), 28, 28)
            files = {
                file_name(split, "images"): encode_idx(images.transpose(0, 2, 1)),
                file_name(split, "labels"): encode_idx(np.asarray(labels) + 1),
            }
            for name, payload in files.items():
                blob = gzip.compress(payload, compresslevel=1, mtime=0)
                write_bytes(os.path.join(directory, name), blob)
                if zf is not None:
                    zf.writestr(f"gzip/{name}", blob)
    finally:
        if zf is not None:
            zf.close()


def synthetic_letters(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generated images in EMNIST's format: class-dependent blobs plus noise.

    They are learnable (so a smoke test shows accuracy rising) but say
    nothing about EMNIST: numbers measured on them are meaningless.

    Returns:
        `(images uint8 (num, 28, 28, 1), labels int64 0..25)`.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=num)
    yy, xx = np.mgrid[0:28, 0:28]
    angle = 2 * np.pi * labels / NUM_CLASSES
    cy = 14 + 8 * np.sin(angle)[:, None, None]
    cx = 14 + 8 * np.cos(angle)[:, None, None]
    bar = (labels % 4)[:, None, None]
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 12.0)
    stripe = (np.abs(xx - 4 - 6 * bar) < 2) * 0.6
    img = 255 * np.clip(blob + stripe + rng.normal(0, 0.15, (num, 28, 28)), 0, 1)
    return img.astype(np.uint8)[..., None], labels.astype(np.int64)
