"""The record of a run's data: `DataRecord`, the `data` entry of `state.json` and
`results.json`.

`selection.load_data_with_record` makes it once, from the prepared dataset's
provenance record (`records` for EMNIST-Letters, `sources` for other data), the
run's arrays, any `--max-*-examples` limits and the input normalisation. The
run writes `to_json()`; a resumed run, an evaluation or a search reads a
written entry back with `DataRecord.from_json`; the model builders get their
data arguments from `model_kwargs()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras_minent.datasets import sources

#: Fields that only some sources record (tfds: `name`, `version`; IDX and `.npz`
#: files: `layout`, `files_sha256`; image folders: `layout`, `files_list_sha256`,
#: `num_files`, `test_split`; ...), kept in `DataRecord.source_fields` where the
#: source has them.
SOURCE_FIELDS = (
    "name",
    "version",
    "layout",
    "files_sha256",
    "files_list_sha256",
    "num_files",
    "test_split",
)

#: The keys of the `data` entry, in the order `to_json` writes them; an optional
#: one only where the record has it.
ENTRY_KEYS = (
    "source",
    "verified",
    "location",
    "description",
    "fingerprint",
    "arrays_sha256",
    "num_examples",
    "dataset",
    "kind",
    *SOURCE_FIELDS,
    "counts",
    "num_classes",
    "input_shape",
    "label_mapping",
    "class_names",
    "normalization",
    "limits",
)

#: The entry's keys copied from the provenance record where it has them (the
#: others are computed: `description`, `num_examples`, `verified` as a bool).
DATA_ENTRY_FIELDS = ENTRY_KEYS[ENTRY_KEYS.index("dataset") :]

_OPTIONAL = (
    "dataset",
    "kind",
    "counts",
    "label_mapping",
    "class_names",
    "normalization",
    "limits",
)


@dataclasses.dataclass(frozen=True)
class DataRecord:
    """Where a run's data came from and what the models need to know of it.

    Attributes:
        source: How the data were obtained (`"nist_archive_verified"`,
            `"idx_dir_unverified"`, `"synthetic"`, ... for EMNIST-Letters; the
            kind of source, e.g. `"npz"`, for other data).
        verified: True only for NIST's archive checked by its SHA-256; None for
            data other than EMNIST-Letters (nothing to verify them against).
        location: The file or directory read (None where unknown).
        description: One line saying where the data came from.
        fingerprint: SHA-256 over the arrays' digests (the same for the same
            arrays, whichever loader prepared them).
        arrays_sha256: The digests of the official splits' images and labels.
        num_examples: The run's examples by role (`"fit"`, `"val"`, `"test"`).
        dataset: What `--dataset` named (`"emnist_letters"`, a tfds name, a path).
        kind: `"emnist_letters"`, `"tfds"`, `"idx"`, `"npz"` or
            `"image_folders"`.
        source_fields: The `SOURCE_FIELDS` this source records, as recorded.
        counts: The official splits' sizes (`{"train": N, "test": M}`).
        num_classes: The number of classes.
        input_shape: One image's shape `(height, width, channels)`.
        label_mapping: The dataset's label (as text) -> class id.
        class_names: The classes' names by class id, where the source has them.
        normalization: The models' input `mean`, `std` (per channel or one
            number, in the [0, 1] scale) and their `source`; None where no
            "fit" split was loaded.
        limits: `--max-train-examples` / `--max-eval-examples` and the sizes
            before them; None without limits.

    Example:
    ```python
    data, record = load_data_with_record(config)
    json_entry = record.to_json()
    assert DataRecord.from_json(json_entry).fingerprint == record.fingerprint
    ```
    """

    source: str | None
    verified: bool | None
    location: str | None
    description: str
    fingerprint: str | None
    arrays_sha256: dict[str, str] | None
    num_examples: dict[str, int]
    dataset: str | None = None
    kind: str | None = None
    source_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] | None = None
    num_classes: int = 26
    input_shape: tuple[int, ...] = (28, 28, 1)
    label_mapping: dict[str, int] | None = None
    class_names: list[str] | None = None
    normalization: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None

    @classmethod
    def from_provenance(cls, record: Mapping[str, Any], data: Mapping[str, tuple]) -> DataRecord:
        """The record of a run's arrays `data` (`{role: (images, labels)}`) read from a
        dataset whose provenance record (`records`, `sources`, extended with
        `normalization` and `limits`) is `record`."""
        verified = record.get("verified")
        return cls._of(
            record,
            verified=None if verified is None else bool(verified),
            description=sources.describe(record),
            num_examples={role: int(len(y)) for role, (_, y) in data.items()},
        )

    @classmethod
    def from_json(cls, entry: Mapping[str, Any] | None) -> DataRecord:
        """The record a `data` entry of `state.json` or `results.json` holds.

        Lenient: a key missing from an older file reads as None (as
        EMNIST-Letters' shape and classes for `num_classes` and `input_shape`).

        Args:
            entry: The entry (`to_json()`'s output, read back), or None.

        Returns:
            The `DataRecord`.
        """
        entry = entry or {}
        return cls._of(
            entry,
            verified=entry.get("verified"),
            description=entry.get("description") or "",
            num_examples=dict(entry.get("num_examples") or {}),
        )

    @classmethod
    def _of(cls, fields: Mapping[str, Any], **computed: Any) -> DataRecord:
        return cls(
            source=fields.get("source"),
            location=fields.get("location"),
            fingerprint=fields.get("fingerprint"),
            arrays_sha256=fields.get("arrays_sha256"),
            dataset=fields.get("dataset"),
            kind=fields.get("kind"),
            source_fields={k: fields[k] for k in SOURCE_FIELDS if k in fields},
            counts=fields.get("counts"),
            num_classes=int(fields.get("num_classes", 26)),
            input_shape=tuple(int(d) for d in fields.get("input_shape", (28, 28, 1))),
            label_mapping=fields.get("label_mapping"),
            class_names=fields.get("class_names"),
            normalization=fields.get("normalization"),
            limits=fields.get("limits"),
            **computed,
        )

    def to_json(self) -> dict[str, Any]:
        """The `data` entry of `state.json` and `results.json` (JSON types, keys in
        `ENTRY_KEYS`' order; an optional field only where the data have it)."""
        values = {
            **dataclasses.asdict(self),
            **self.source_fields,
            "input_shape": list(self.input_shape),
        }
        return {
            key: values[key]
            for key in ENTRY_KEYS
            if key in values and not (key in _OPTIONAL and values[key] is None)
        }

    def model_kwargs(self) -> dict[str, Any]:
        """The data's arguments of the model builders (`vgg5`, `spinal_vgg5`):
        `input_shape`, `num_classes`, `mean` and `std` (MNIST's constants where
        the record has no normalisation)."""
        norm = self.normalization or {}
        return {
            "input_shape": tuple(self.input_shape),
            "num_classes": int(self.num_classes),
            "mean": norm.get("mean", sources.MNIST_MEAN),
            "std": norm.get("std", sources.MNIST_STD),
        }
