"""Writes the `.keras` files of a tiny `train --synthetic` run, and their predictions.

Run by CI with the newest Keras (`python tests/workers/newest_keras_files.py DIR`);
`tests/test_lowest_versions.py` then loads the files in the lowest-versions venv
(Keras 3.10) and compares the predictions. Prints "OK" at the end.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import SMALL_CLI  # noqa: E402  (tests/helpers.py: the small configuration)

#: The files a run writes that a user deploys or resumes from.
KERAS_FILES = ("inference.keras", "best.keras", "best_calibrated.keras", "checkpoint.keras")


def images():
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1)).astype("float32")


def main(directory: str) -> None:
    import keras
    import numpy as np

    from keras_minent.cli import main as cli

    run = os.path.join(directory, "run")
    assert cli(["train", *SMALL_CLI, "--epochs", "1", "--output-dir", run]) == 0
    predictions = {}
    for name in KERAS_FILES:
        model = keras.saving.load_model(os.path.join(run, name))
        predictions[name] = model.predict(images(), verbose=0)
    np.savez(os.path.join(directory, "predictions.npz"), **predictions)
    print("keras", keras.__version__, "wrote", ", ".join(KERAS_FILES), "OK")


if __name__ == "__main__":
    main(sys.argv[1])
