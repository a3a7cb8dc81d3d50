"""Datasets: EMNIST-Letters with the official split (tfds builder, IDX reader).

TensorFlow and tensorflow-datasets are imported only when a dataset is built.
"""

from keras_minent.datasets.emnist import (
    SPLITS,
    VALIDATION_SEED,
    builder,
    emnist_letters,
    evaluation_dataset,
    load_arrays,
    steps_per_epoch,
    training_dataset,
    validation_indices,
)
from keras_minent.datasets.idx import (
    EmnistDataError,
    read_directory,
    read_zip,
    synthetic_letters,
    write_official_files,
)

__all__ = [
    "SPLITS",
    "VALIDATION_SEED",
    "EmnistDataError",
    "builder",
    "emnist_letters",
    "evaluation_dataset",
    "load_arrays",
    "read_directory",
    "read_zip",
    "steps_per_epoch",
    "synthetic_letters",
    "training_dataset",
    "validation_indices",
    "write_official_files",
]
