"""Constants and builders shared by the test modules (`conftest.py` re-exports them).

The small configuration is defined here once: `SMALL` as `TrainConfig` / `TuneConfig`
keyword arguments, `SMALL_CLI` as the command line types it. A test module imports what it
needs (`from helpers import SMALL, SMALL_CLI, tiny_model`); the fixtures that train a run
once for several modules live in `conftest.py`.

This module imports only Keras: `conftest.py` loads it in every venv that runs the tests,
the lowest-versions one included.
"""

from __future__ import annotations

import os
import shutil

import keras

#: The small configuration's data: 113 generated EMNIST-like training images (104 fit,
#: 9 validation) and 18 test images, at the default verbosity (for tests that read what a
#: run prints). The fit examples are two whole batches of 52: every training step has
#: the same shape, so JAX compiles it once, not twice (about 5 s a run on these CPUs).
SMALL_DATA: dict = {"synthetic": True, "synthetic_size": 113, "batch_size": 52}

#: The small configuration: `SMALL_DATA`, silent.
SMALL: dict = {**SMALL_DATA, "verbose": 0}

#: The small configuration with 284 training images (260 fit: five whole batches of 52;
#: 24 validation) and 47 test images, for tests whose checks need more than a handful of
#: validation and test examples (a 62-way head's accuracy, the example counts they assert).
SMALL_284: dict = {**SMALL, "synthetic_size": 284}


def cli_args(config: dict) -> list[str]:
    """The command-line form of `TrainConfig` keyword arguments.

    Args:
        config: Keyword arguments, e.g. `SMALL`; `True` is a bare flag.

    Returns:
        The options as typed, e.g. `["--synthetic", "--synthetic-size", "113", ...]`.

    Example:
        >>> cli_args({"synthetic": True, "batch_size": 52})
        ['--synthetic', '--batch-size', '52']
    """
    argv: list[str] = []
    for name, value in config.items():
        option = "--" + name.replace("_", "-")
        argv += [option] if value is True else [option, str(value)]
    return argv


#: `SMALL` as typed on the command line.
SMALL_CLI: list[str] = cli_args(SMALL)

#: `SMALL_DATA` as typed on the command line.
SMALL_DATA_CLI: list[str] = cli_args(SMALL_DATA)

#: `SMALL_284` as typed on the command line.
SMALL_284_CLI: list[str] = cli_args(SMALL_284)


def tiny_model(
    input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 26, dropout: float = 0.0
) -> keras.Model:
    """A tiny classifier (logits) that trains in a fraction of a second.

    EMNIST-shaped images (28x28x1, stored 0..255) are rescaled to 0..1; images go through
    one strided convolution, feature vectors through one hidden dense layer. The output
    layer computes in float32 under every dtype policy.

    Args:
        input_shape: The shape of one example.
        classes: The number of outputs.
        dropout: The dropout rate before the output layer (0: none); with dropout, the
            seeding of dropout draws matters to a run's result.

    Returns:
        An unbuilt-optimizer `keras.Sequential` model.
    """
    layers = [keras.Input(input_shape)]
    if tuple(input_shape) == (28, 28, 1):
        layers.append(keras.layers.Rescaling(1 / 255))
    if len(input_shape) == 1:
        layers.append(keras.layers.Dense(8, activation="relu"))
    else:
        layers += [keras.layers.Conv2D(4, 3, strides=2, activation="relu"), keras.layers.Flatten()]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(classes, dtype="float32"))
    return keras.Sequential(layers)


def copy_run(source, destination) -> None:
    """Copies a run directory as hard links (every write of a run replaces a file, never
    writes into one, so the copy's changes leave `source` as it was).

    Args:
        source: The run directory to copy.
        destination: A path that does not exist yet.
    """
    shutil.copytree(source, destination, copy_function=os.link)
