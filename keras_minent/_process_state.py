"""The caller's process as found: the global random generators a run reseeds, the
Keras dtype policy it sets, and the root logger.

A run seeds what it owns with `keras.utils.set_random_seed(seed)` (its weights,
data order, augmentation): that reseeds Python's `random`, NumPy's global
generator, TensorFlow's global seed, PyTorch's generator on the torch backend
and Keras's global `SeedGenerator`. Importing TensorFlow Datasets makes absl
add a handler to the root logger. `kept_process_state` puts all of this back
when the run returns (or fails), so a notebook's own random numbers and log
lines are the same with or without a run in between.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np


def _keras_seed_state() -> tuple[Any, ...] | None:
    """Keras's global seed and global `SeedGenerator` (Keras offers no public getter)."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # another Keras layout: left as the run leaves it
        return None
    names = (GLOBAL_RANDOM_SEED, GLOBAL_SEED_GENERATOR)
    return global_state, names, [global_state.get_global_attribute(n) for n in names]


def _tf_seed() -> tuple[Any, ...] | None:
    """TensorFlow's global (eager) seed, where TensorFlow is imported."""
    import sys

    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.eager import context
    except ImportError:
        return None
    return (context.global_seed(),)


def _torch_state() -> tuple[Any, ...] | None:
    if keras.backend.backend() != "torch":
        return None
    import torch

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


@contextlib.contextmanager
def kept_process_state() -> Iterator[None]:
    """Restores the global random generators, the dtype policy and the root logger on exit.

    Restored exactly: the global dtype policy (`keras.config.dtype_policy()`), Python's `random`, NumPy's global generator, Keras's global
    seed and `SeedGenerator` (`keras.random` calls without a seed), PyTorch's
    generators (torch backend) and the root logger's handlers and level.
    TensorFlow's global seed (`tf.random.set_seed`) gets its previous value back;
    TensorFlow offers no way to restore how far its op seeds had advanced, so
    after a run a seeded TensorFlow program's next unseeded op draws as just after
    `tf.random.set_seed(previous seed)`.

    Example:
        >>> with kept_process_state():
        ...     keras.utils.set_random_seed(0)
    """
    policy = keras.config.dtype_policy()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    py_state, np_state = random.getstate(), np.random.get_state()
    keras_state, tf_seed, torch_state = _keras_seed_state(), _tf_seed(), _torch_state()
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        random.setstate(py_state)
        np.random.set_state(np_state)
        if keras_state is not None:
            global_state, names, values = keras_state
            for name, value in zip(names, values, strict=True):
                global_state.set_global_attribute(name, value)
        if tf_seed is None:
            tf_seed = _tf_seed() and (None,)  # imported during the run: unseeded before it
        if tf_seed is not None:
            import tensorflow as tf

            tf.random.set_seed(tf_seed[0])
        if torch_state is not None:
            import torch

            torch.set_rng_state(torch_state[0])
            if torch_state[1] is not None:
                torch.cuda.set_rng_state_all(torch_state[1])
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        for handler in [h for h in handlers if h not in root.handlers]:
            root.addHandler(handler)
        root.setLevel(level)
