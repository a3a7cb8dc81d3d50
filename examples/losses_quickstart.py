"""MinEntLoss / MixEntLoss in any Keras model: compile, fit, save, load.

KERAS_BACKEND=jax python examples/losses_quickstart.py
"""

import keras
import numpy as np

import keras_minent

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
model.fit(x, y, epochs=5, batch_size=64, verbose=2)
model.save("/tmp/minent_quickstart.keras")
restored = keras.saving.load_model("/tmp/minent_quickstart.keras")  # no custom_objects
print(restored.loss)
print(
    "entropy of predictions:",
    float(np.mean(keras_minent.losses.entropy(restored.predict(x, verbose=0), from_logits=True))),
)
