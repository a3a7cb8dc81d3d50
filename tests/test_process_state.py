"""A run leaves the caller's process as found: global random generators, dtype policy,
root logger."""

from __future__ import annotations

import contextlib
import logging
import random

import keras
import numpy as np
import pytest
from helpers import SMALL

from keras_minent import training
from keras_minent._process_state import kept_process_state
from keras_minent.testing import HAS_TF


def draws() -> list[float]:
    """The next numbers of Python's, NumPy's and Keras's global generators."""
    return [random.random(), float(np.random.random()), float(keras.random.uniform(()))]


@contextlib.contextmanager
def bare_root_logger():
    """The root logger without handlers (as in a fresh script; pytest adds its own
    during a test), restored afterwards."""
    root = logging.getLogger()
    saved = list(root.handlers)
    for handler in saved:
        root.removeHandler(handler)
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)


def test_kept_process_state_restores_generators_policy_and_logger():
    keras.utils.set_random_seed(7)
    expected = draws()
    keras.utils.set_random_seed(7)
    with bare_root_logger() as root:
        with kept_process_state():
            keras.utils.set_random_seed(123)
            draws()
            keras.config.set_dtype_policy("mixed_bfloat16")
            logging.basicConfig()  # what absl's first warning does to a bare root logger
            assert root.handlers
        assert root.handlers == []
    assert draws() == expected
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow")
def test_tensorflow_global_seed_gets_its_value_back():
    import tensorflow as tf

    tf.random.set_seed(5)
    expected = float(tf.random.uniform(()))
    tf.random.set_seed(5)
    with kept_process_state():
        tf.random.set_seed(99)
    assert float(tf.random.uniform(())) == expected


@pytest.mark.backend_matrix
def test_train_leaves_the_callers_random_numbers_and_logging_alone(tmp_path):
    keras.utils.set_random_seed(7)
    expected = draws()
    keras.utils.set_random_seed(7)
    config = training.TrainConfig(
        **SMALL,
        epochs=1,
        output_dir=str(tmp_path / "run"),
        data_dir=str(tmp_path),
    )
    with bare_root_logger() as root:
        result = training.train(config)
        assert root.handlers == []
    assert result["epochs"] == 1
    assert draws() == expected
