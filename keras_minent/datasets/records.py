"""Where a prepared dataset came from, and a fingerprint of its contents.

A prepared dataset (the NumPy cache `<data_dir>/emnist_letters_official.npz`
or a tfds directory) has a JSON record beside it:

```
{
  "format": 1,
  "dataset": "emnist_letters_official",
  "source": "nist_archive_verified" | "idx_dir_unverified" | "synthetic"
            | "archive_unverified" | "unknown",
  "verified": true | false,          # true only for NIST's archive by its SHA-256
  "location": "/abs/path",           # the archive or the idx directory read
  "files_sha256": {name: sha256},    # the files read (archive or the four .gz)
  "arrays_sha256": {"train_images": ..., "train_labels": ...,
                    "test_images": ..., "test_labels": ...},
  "fingerprint": "sha256",           # of the four lines "<name> <sha256>\\n" above, in that order
  "counts": {"train": N, "test": M}
}
```

Array digests are SHA-256 of the C-ordered bytes of `images` (uint8,
`(N, 28, 28, 1)`) and `labels` (little-endian int64, `0..25`), as
`load_arrays("train"/"test")` returns them; so the fingerprint is the same
whichever loader (NumPy or tfds) prepared the data.

Sources: `"nist_archive_verified"`: NIST's `gzip.zip` matched `idx.ZIP_SHA256`;
`"idx_dir_unverified"`: four `.gz` files from a directory, not verified (they
may be anything in the official format, generated test files included);
`"synthetic"`: files written by `write_official_files(..., synthetic=True)`;
`"archive_unverified"`: a zip checked against another SHA-256 than NIST's;
`"unknown"`: a tfds directory prepared before records existed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np

from keras_minent._atomic import write_json

logger = logging.getLogger(__name__)

FORMAT = 1
DATASET = "emnist_letters_official"
RECORD_NAME = "keras_minent_provenance.json"
#: Marker `write_official_files(..., synthetic=True)` leaves in its directory.
SYNTHETIC_MARKER = "keras_minent_synthetic.json"
SOURCES = (
    "nist_archive_verified",
    "idx_dir_unverified",
    "synthetic",
    "archive_unverified",
    "unknown",
)
ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's C-ordered bytes (labels as little-endian int64)."""
    a = np.asarray(array)
    if a.dtype.kind in "iu" and a.dtype != np.uint8:
        a = a.astype("<i8")
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def arrays_sha256(arrays: dict) -> dict[str, str]:
    """`{"train_images": sha, ...}` of `{split: (images, labels)}`."""
    out = {}
    for split in ("train", "test"):
        images, labels = arrays[split]
        out[f"{split}_images"] = array_sha256(images)
        out[f"{split}_labels"] = array_sha256(labels)
    return out


def fingerprint_of(digests: dict[str, str]) -> str:
    """The dataset's fingerprint from its four array digests."""
    text = "".join(f"{name} {digests[name]}\n" for name in ARRAY_NAMES)
    return hashlib.sha256(text.encode()).hexdigest()


def make_record(arrays: dict, source: dict) -> dict:
    """A record for `arrays` (`{split: (images, labels)}`) read from `source`.

    `source` holds `source`, `location` and optionally `files_sha256`.
    """
    if source["source"] not in SOURCES:
        raise ValueError(f"Unknown source {source['source']!r}; expected one of {SOURCES}.")
    digests = arrays_sha256(arrays)
    return {
        "format": FORMAT,
        "dataset": DATASET,
        "source": source["source"],
        "verified": source["source"] == "nist_archive_verified",
        "location": source.get("location"),
        "files_sha256": source.get("files_sha256", {}),
        "arrays_sha256": digests,
        "fingerprint": fingerprint_of(digests),
        "counts": {s: int(len(arrays[s][1])) for s in ("train", "test")},
    }


def write_record(path: str | os.PathLike, record: dict) -> None:
    """Writes a record (sorted keys, a final newline) atomically, making its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    write_json(path, record, sort_keys=True, newline=True)


def read_record(path: str | os.PathLike) -> dict | None:
    """The record at `path`, or None if there is none or it is unreadable."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        logger.warning("Ignoring unreadable dataset record %s (%s).", path, e)
        return None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or "fingerprint" not in rec:
        logger.warning("Ignoring dataset record %s of an unknown format.", path)
        return None
    return rec


def describe(record: dict) -> str:
    """One line saying where the data came from."""
    src, where = record.get("source"), record.get("location")
    if src == "nist_archive_verified":
        return f"NIST's archive {where} (SHA-256 verified)"
    if src == "synthetic":
        return f"generated (synthetic) files in {where}: numbers on them say nothing about EMNIST"
    if src == "idx_dir_unverified":
        return f"unverified IDX files in {where} (not checked against NIST's archive)"
    if src == "archive_unverified":
        return f"an archive {where} not verified as NIST's"
    return "an unrecorded source (prepared before records existed)"
