"""Files written by the newest Keras load in the lowest supported one (Keras 3.10).

CI writes them first with its newest Keras (`tests/workers/newest_keras_files.py`),
then runs this test in the lowest-versions venv with `KERAS_MINENT_NEWEST_FILES`
set to that directory; elsewhere it is skipped.
"""

from __future__ import annotations

import os
import pathlib
import sys

import keras
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent / "workers"))
from newest_keras_files import KERAS_FILES, images  # noqa: E402

import keras_minent  # noqa: E402,F401 - registers the package's classes for loading

NEWEST = os.environ.get("KERAS_MINENT_NEWEST_FILES")


@pytest.mark.skipif(not NEWEST, reason="CI's lowest-versions step sets KERAS_MINENT_NEWEST_FILES")
@pytest.mark.parametrize("name", KERAS_FILES)
def test_a_file_written_by_the_newest_keras_loads_and_predicts_the_same(name):
    model = keras.saving.load_model(os.path.join(NEWEST, "run", name))
    want = np.load(os.path.join(NEWEST, "predictions.npz"))[name]
    # Another Keras and backend: the same weights, float32 rounding apart.
    np.testing.assert_allclose(model.predict(images(), verbose=0), want, rtol=1e-4, atol=1e-4)
