"""MinEntLoss / MixEntLoss in any Keras model: compile, fit, save, load.

KERAS_BACKEND=jax python examples/losses_quickstart.py [--epochs 5] [--output-dir /tmp]
"""

import argparse
import os

import keras
import numpy as np

import keras_minent

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--output-dir", default="/tmp")
args = parser.parse_args()
path = os.path.join(args.output_dir, "minent_quickstart.keras")

rng = np.random.default_rng(0)
x = rng.normal(size=(512, 20)).astype("float32")
y = np.argmax(x[:, :5] + rng.normal(0, 0.5, size=(512, 5)), axis=-1)  # 5 classes

model = keras.Sequential(
    [keras.Input((20,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(5)]
)  # logits
model.compile(
    optimizer="adam",
    loss=keras_minent.MinEntLoss(entropy_weight=0.1, from_logits=True),
    # or keras_minent.MinEntLoss.from_paper(from_logits=True)
    # or keras_minent.losses.get("min_ent", 0.1, from_logits=True)
    # or keras_minent.MixEntLoss(swapped_weight=0.1, from_logits=True)
    metrics=["accuracy"],
)
model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=2)
model.save(path)
restored = keras.saving.load_model(path)  # no custom_objects
print(restored.loss)
print(
    "entropy of predictions:",
    float(np.mean(keras_minent.losses.entropy(restored.predict(x, verbose=0), from_logits=True))),
)
