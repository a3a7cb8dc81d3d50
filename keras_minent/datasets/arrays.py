"""EMNIST-Letters into NumPy without TensorFlow or tfds, cached as one `.npz`.

Sources, in this order: `idx_dir` (NIST's `gzip.zip`, the four
`emnist-letters-*-ubyte.gz` files or a `gzip/` folder holding them); else
`<data_dir>/downloads/manual/` (the same choices); else a previous download
`<data_dir>/downloads/gzip.zip`; else NIST's archive downloaded there (checked
by its SHA-256). The decoded official split is cached as
`<data_dir>/emnist_letters_official.npz` with its provenance record beside it
(`emnist_letters_official.json`, see `records`). A cache is reused only for
the source that made it: a call naming another `idx_dir` (or the same one
with other files) rebuilds it.
"""

from __future__ import annotations

import logging
import os
import zipfile

import numpy as np

from keras_minent._atomic import atomic_save
from keras_minent.datasets import download as download_lib
from keras_minent.datasets import idx
from keras_minent.datasets import records as prov

logger = logging.getLogger(__name__)

CACHE_NAME = prov.DATASET + ".npz"
RECORD_NAME = prov.DATASET + ".json"


def default_data_dir() -> str:
    """`$KERAS_MINENT_DATA`, else `~/keras_minent_datasets`."""
    return os.environ.get("KERAS_MINENT_DATA") or os.path.join(
        os.path.expanduser("~"), "keras_minent_datasets"
    )


def _idx_files_dir(directory: str) -> str | None:
    """The directory holding the four `.gz` files: `directory` or its `gzip/`."""
    if not idx.missing_files(directory):
        return directory
    gz = os.path.join(directory, "gzip")
    if os.path.isdir(gz) and not idx.missing_files(gz):
        return gz
    return None


def identify(directory: str | os.PathLike, expected_zip_sha256: str | None = idx.ZIP_SHA256):
    """What reading `directory` would use: a source dict, or None if it holds no data.

    The dict has `source`, `location` (absolute path) and `files_sha256`.

    Raises:
        EmnistDataError: If it holds a zip whose SHA-256 is not the expected one.
    """
    directory = os.path.abspath(os.fspath(directory))
    if not os.path.isdir(directory):
        return None
    zip_path = os.path.join(directory, idx.ZIP_NAME)
    if os.path.isfile(zip_path):
        return _identify_zip(zip_path, expected_zip_sha256)
    files_dir = _idx_files_dir(directory)
    if files_dir is None:
        return None
    synthetic = os.path.isfile(os.path.join(files_dir, prov.SYNTHETIC_MARKER))
    return {
        "source": "synthetic" if synthetic else "idx_dir_unverified",
        "location": files_dir,
        "files_sha256": {n: idx.sha256_of(os.path.join(files_dir, n)) for n in idx.REQUIRED_FILES},
    }


def _identify_zip(zip_path: str, expected: str | None) -> dict:
    got = idx.sha256_of(zip_path)
    if expected is not None and got != expected:
        idx.check_zip(zip_path, expected)  # raises with the usual message
    return {
        "source": "nist_archive_verified" if got == idx.ZIP_SHA256 else "archive_unverified",
        "location": os.path.abspath(zip_path),
        "files_sha256": {idx.ZIP_NAME: got},
    }


class _NotOfficialCounts(logging.Filter):
    """Drops the warning that a split is not the official size: generated data never is."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "not the official" not in record.getMessage()


def read_source(source: dict) -> dict:
    """`{split: (images, labels)}` from a source `identify` returned (generated data
    without the warning that its counts are not the official ones)."""
    location = source["location"]
    if location.endswith(".zip"):
        return idx.read_zip(location)
    if source["source"] != "synthetic":
        return idx.read_directory(location)
    quiet = _NotOfficialCounts()
    idx.logger.addFilter(quiet)
    try:
        return idx.read_directory(location)
    finally:
        idx.logger.removeFilter(quiet)


def mismatch(record: dict | None, source: dict | None) -> str | None:
    """Why a prepared dataset with `record` is not the data of `source` (None: it is)."""
    if source is None:
        return None
    if record is None:
        return "it has no record of its source"
    if record.get("location") != source["location"]:
        return f"it was prepared from {record.get('location')}, not {source['location']}"
    if record.get("files_sha256") != source["files_sha256"]:
        return f"the files in {source['location']} changed since it was prepared"
    if record.get("source") != source["source"]:
        return f"it is recorded as {record.get('source')}, the source is now {source['source']}"
    return None


def missing_data_message(data_dir: str, where: str, download: bool) -> str:
    if not download:
        return (
            f"EMNIST-Letters is not prepared in {data_dir} and downloading is off "
            f"(--no-download, download=False). Put NIST's {idx.ZIP_NAME} or the four files "
            f"{', '.join(idx.REQUIRED_FILES)} in {where}, or pass --idx-dir (idx_dir=) "
            "the directory that holds them."
        )
    return (
        "EMNIST-Letters is not available offline and the network is unreachable.\n"
        f"Put NIST's {idx.ZIP_NAME} ({idx.URL}, {idx.ZIP_SIZE} bytes) in {where}, "
        "or pass `idx_dir=` (CLI: --idx-dir) a directory holding "
        + ", ".join(idx.REQUIRED_FILES)
        + " (NIST's gzip/ folder or torchvision's EMNIST/raw)."
    )


def check_idx_dir(idx_dir) -> None:
    """Raises a clear message if `idx_dir` holds neither the zip nor the four files."""
    idx_dir = os.fspath(idx_dir)
    if not os.path.isdir(idx_dir):
        what = "is not a directory" if os.path.exists(idx_dir) else "does not exist"
        raise idx.EmnistDataError(
            f"--idx-dir {idx_dir} {what}: give the directory that holds NIST's "
            f"{idx.ZIP_NAME} or the four emnist-letters-*-ubyte.gz files."
        )
    if os.path.isfile(os.path.join(idx_dir, idx.ZIP_NAME)):
        return
    if os.path.isdir(idx_dir) and _idx_files_dir(idx_dir) is not None:
        return
    missing = idx.missing_files(idx_dir)
    raise idx.EmnistDataError(
        f"--idx-dir {idx_dir} must hold NIST's {idx.ZIP_NAME} or the four files "
        f"{', '.join(idx.REQUIRED_FILES)}; it lacks {', '.join(missing)}."
    )


def manual_dir(data_dir: str) -> str:
    """`<data_dir>/downloads/manual`: where a user puts the files by hand (both loaders)."""
    return os.path.join(data_dir, "downloads", "manual")


def local_source(
    data_dir: str, manual: str | None = None, expected_zip_sha256: str | None = idx.ZIP_SHA256
) -> dict | None:
    """The data already on this machine, as `identify` describes it, or None.

    Looks in `manual` (default `manual_dir(data_dir)`), then at the archive a
    previous download left, `<data_dir>/downloads/gzip.zip`: the NumPy loader
    and the tfds builder share both, so one data directory serves every backend.
    """
    source = identify(manual or manual_dir(data_dir), expected_zip_sha256)
    downloaded = os.path.join(data_dir, "downloads", idx.ZIP_NAME)
    if source is None and os.path.isfile(downloaded):
        source = _identify_zip(downloaded, expected_zip_sha256)
    return source


def download_archive(data_dir: str) -> dict:
    """Downloads NIST's archive to `<data_dir>/downloads/gzip.zip` (checked); its source."""
    path = download_lib.download(
        idx.URL, os.path.join(data_dir, "downloads", idx.ZIP_NAME), idx.ZIP_SHA256, idx.ZIP_SIZE
    )
    return _identify_zip(path, idx.ZIP_SHA256)


def acquire(data_dir: str, idx_dir=None, download: bool = True) -> tuple[dict, dict]:
    """Finds (or downloads) the data: `({split: (images, labels)}, source)`."""
    if idx_dir is not None:
        check_idx_dir(idx_dir)
        source = identify(idx_dir)
        return read_source(source), source
    source = local_source(data_dir)
    if source is None:
        if not download or not download_lib.network_reachable():
            raise idx.EmnistDataError(
                missing_data_message(data_dir, manual_dir(data_dir), download)
            )
        source = download_archive(data_dir)
    return read_source(source), source


def _save_npz(path: str, arrays: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(
                f,
                train_images=arrays["train"][0],
                train_labels=arrays["train"][1],
                test_images=arrays["test"][0],
                test_labels=arrays["test"][1],
            )

    atomic_save(path, write)


def _load_npz(path: str) -> dict:
    with np.load(path) as z:
        return {
            s: (z[f"{s}_images"], z[f"{s}_labels"].astype(np.int64)) for s in ("train", "test")
        }


def prepared(
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[dict, dict]:
    """The official split and its provenance record, prepared on first use.

    Returns:
        `({"train": (images, labels), "test": (images, labels)}, record)`.

    Raises:
        EmnistDataError: If the data cannot be found or is corrupt.
    """
    data_dir = os.path.abspath(os.fspath(data_dir) if data_dir is not None else default_data_dir())
    cache = os.path.join(data_dir, CACHE_NAME)
    record_path = os.path.join(data_dir, RECORD_NAME)
    record = prov.read_record(record_path)
    if record is not None and os.path.isfile(cache):
        source = None
        if idx_dir is not None:
            check_idx_dir(idx_dir)
            source = identify(idx_dir)
        why = mismatch(record, source)
        if why is None:
            try:
                arrays = _load_npz(cache)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                why = f"its cache {cache} is unreadable ({e})"
            else:
                if prov.fingerprint_of(prov.arrays_sha256(arrays)) == record["fingerprint"]:
                    if not record.get("verified") and record.get("source") != "synthetic":
                        logger.warning(
                            "EMNIST-Letters in %s: %s.", data_dir, prov.describe(record)
                        )
                    return arrays, record
                why = f"its cache {cache} does not match its recorded fingerprint"
        logger.warning("Rebuilding EMNIST-Letters in %s: %s.", data_dir, why)
    arrays, source = acquire(data_dir, idx_dir, download)
    record = prov.make_record(arrays, source)
    _save_npz(cache, arrays)
    prov.write_record(record_path, record)
    return arrays, record
