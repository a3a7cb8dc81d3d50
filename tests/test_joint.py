"""Several runs trained together (`keras_minent.training.joint`, issue 17).

Each member of a joint run must behave exactly as a separate run: the same
loss, gradients and updates from the same weights and batches, its own
learning rate, its own failures, and a kill-and-resume that continues every
member from the last committed epoch.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_minent import losses, models
from keras_minent.training import joint


class PerVariableAdam(keras.optimizers.Adam):
    """Keras's Adam through its per-variable update (as `MemberAdam`): on PyTorch plain
    `Adam` is a fused implementation whose round-off differs."""


def _member(seed: int, name: str) -> keras.Model:
    """A member (VGG-5 without dropout and augmentation), seeded, its paths under `name`."""
    keras.utils.set_random_seed(seed)
    with keras.name_scope(name):
        return models.vgg5(dropout=0.0, augment=False, seed=seed)


def _batches(n_members: int, steps: int):
    rng = np.random.default_rng(1)
    return [
        [
            (
                rng.integers(0, 256, (8, 28, 28, 1)).astype("float32"),
                rng.integers(0, 26, 8),
            )
            for _ in range(n_members)
        ]
        for _ in range(steps)
    ]


@pytest.mark.backend_matrix
def test_joint_steps_equal_separate_models():
    """Same weights, same batches: each member's losses and updated weights
    (BatchNorm statistics included) equal a separate model's, with its own loss
    and its own learning rate."""
    member_losses = [
        losses.get("min_ent", 0.3, from_logits=True),
        losses.get("mix_ent", 0.5, from_logits=True),
    ]
    rates = [0.01, 0.001]
    members = [_member(3, "m0"), _member(4, "m1")]
    separate = []
    for m, loss, rate in zip(members, member_losses, rates):
        copy = keras.models.clone_model(m)
        copy.set_weights(m.get_weights())
        copy.compile(PerVariableAdam(rate), loss)
        separate.append(copy)
    names = ["m0", "m1"]
    model = joint.joint_model(members, names)
    model.compile(
        optimizer=joint.MemberAdam([m.trainable_variables for m in members], rates),
        loss=dict(zip(names, member_losses)),
    )
    for step in _batches(2, 3):
        logs = model.train_on_batch(
            tuple(x for x, _ in step), {n: y for n, (_, y) in zip(names, step)}, return_dict=True
        )
        for k, (copy, (x, y)) in enumerate(zip(separate, step)):
            alone = copy.train_on_batch(x, y, return_dict=True)
            np.testing.assert_allclose(logs[f"m{k}_loss"], alone["loss"], rtol=1e-5)
    for k, (m, copy) in enumerate(zip(members, separate)):
        step = rates[k]  # an Adam step moves a weight by about its learning rate
        for a, b, w in zip(m.get_weights(), copy.get_weights(), m.weights):
            if "conv" in w.path and w.path.endswith("bias"):
                # A bias before BatchNorm has a zero gradient: Adam turns its round-off
                # into steps of +-lr, which differ with the summation order of a backend.
                continue
            # Within 1% of one step (round-off that Adam amplifies where a gradient is
            # tiny); a wrong rate or a leaked gradient moves weights by whole steps.
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=step / 100, err_msg=f"{k} {w.path}")
