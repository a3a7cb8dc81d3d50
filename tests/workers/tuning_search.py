"""One process of a keras-tuner chief/worker search (run by test_tuning_distributed).

`python tuning_search.py DIRECTORY`; the role comes from `KERASTUNER_TUNER_ID`.
A worker with `CRASH_AFTER_EPOCH=0` dies at the end of its first epoch (a
machine dying mid-trial). The chief prints `TRIALS [(trial, status), ...]`.
"""

from __future__ import annotations

import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import tiny_model  # noqa: E402  (tests/helpers.py)

from keras_minent import tuning  # noqa: E402


class Crash(keras.callbacks.Callback):
    """Kills this worker at the end of its first epoch (a machine dying mid-trial)."""

    def on_epoch_end(self, epoch, logs=None):
        if os.environ.get("CRASH_AFTER_EPOCH") == str(epoch):
            os._exit(9)
        time.sleep(0.5)


def model():
    return tiny_model((6,), 3)


def main(directory: str) -> None:
    hm = tuning.RegularizationHyperModel(model, losses=("min_ent", "mix_ent"))
    tuner = tuning.make_tuner("random", hm, directory, max_trials=4, epochs=2, seed=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = np.argmax(x[:, :3], axis=-1)
    tuner.search(
        x,
        y,
        validation_data=(x, y),
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[Crash()],
    )
    if os.environ["KERASTUNER_TUNER_ID"] == "chief":
        rows = tuning.trial_table(tuner)
        print("TRIALS", [(r["trial"], r["status"]) for r in rows])


if __name__ == "__main__":
    main(sys.argv[1])
