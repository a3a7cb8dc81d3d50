"""Fixtures of the test suite; shared helpers live in `keras_minent.testing`."""

from __future__ import annotations

import keras
import pytest


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    keras.config.set_dtype_policy("float32")
