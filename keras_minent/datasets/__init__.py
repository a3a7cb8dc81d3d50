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
    load_arrays_with_info,
    provenance,
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
from keras_minent.datasets.loaders import EvaluationBatches, TrainingBatches
from keras_minent.datasets.order import epoch_order, permutation

__all__ = [
    "SPLITS",
    "VALIDATION_SEED",
    "EmnistDataError",
    "builder",
    "emnist_letters",
    "evaluation_dataset",
    "load_arrays",
    "load_arrays_with_info",
    "provenance",
    "permutation",
    "epoch_order",
    "TrainingBatches",
    "EvaluationBatches",
    "read_directory",
    "read_zip",
    "steps_per_epoch",
    "synthetic_letters",
    "training_dataset",
    "validation_indices",
    "write_official_files",
]
