"""Datasets: EMNIST-Letters with the official split (tfds builder, IDX reader),
any other image-classification dataset (`sources`: tfds names, IDX files, `.npz`,
image folders), and the selection of a run's arrays (`load_data`).

TensorFlow and tensorflow-datasets are imported only where used (the tfds builder and
the tf.data pipeline of the TensorFlow backend); the NumPy loader and `PyDataset`
batches work without them.
"""

from keras_minent.datasets.data_record import DataRecord
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
    DataError,
    EmnistDataError,
    read_directory,
    read_zip,
    synthetic_letters,
    write_official_files,
)
from keras_minent.datasets.loaders import EvaluationBatches, TrainingBatches
from keras_minent.datasets.order import epoch_order, permutation
from keras_minent.datasets.selection import load_data, write_synthetic

__all__ = [
    "SPLITS",
    "VALIDATION_SEED",
    "DataError",
    "DataRecord",
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
    "load_data",
    "read_directory",
    "read_zip",
    "steps_per_epoch",
    "synthetic_letters",
    "training_dataset",
    "validation_indices",
    "write_official_files",
    "write_synthetic",
]
