"""The hypermodel of the search: the loss and its regularizer weight, seeded per trial."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import keras
import keras_tuner

from keras_minent import losses as losses_lib
from keras_minent import models
from keras_minent.training.config import ConfigError
from keras_minent.training.devices import resolve_precision


def trial_seed(seed: int, trial_id: str) -> int:
    """The seed of one trial's weights, dropout and augmentation: from the search's seed
    and the trial's id (SHA-256 of `"<seed>/<trial_id>"`, in `1 .. 2**31 - 1`)."""
    digest = hashlib.sha256(f"{int(seed)}/{trial_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1) + 1


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Searches the loss (`ce`, `min_ent`, `mix_ent`) and its regularizer weight.

    Hyperparameters: `loss` (a choice among `losses`; fixed if only one) and
    `reg_weight` (log-uniform in `weight_range`, active for `min_ent` and
    `mix_ent`). The dtype policy is set inside `build`, because keras-tuner
    calls `keras.backend.clear_session()` between trials, which resets it
    (`build` then puts back the global policy that was current when the
    hypermodel was made, so a search leaves the user's policy as it was);
    so is the trial's random seed (`trial_seed`, which the tuners of
    `make_tuner` set before each trial), so each trial's weights, dropout
    and augmentation depend only on the search's seed and the trial.

    Args:
        model_builder: Returns an uncompiled model with float32 logits;
            defaults to `keras_minent.vgg5`.
        losses: The arms of the search, from `("ce", "min_ent", "mix_ent")`.
        weight_range: `(low, high)` of the regularizer weight, both > 0.
        learning_rate: Adam's learning rate.
        precision: Dtype policy of every trial (e.g. `"mixed_bfloat16"`), or
            `"auto"` (resolved as the train command does).
        paper_bases: Use the paper's log bases and CE weights with the searched weight.
        name: Name of the hypermodel.
        batch_size: The batch size the trials train with; only used to
            resolve `precision="auto"` (as the train command does).

    Raises:
        ConfigError: On an unknown loss or an invalid range.

    Example:
    ```python
    tuner = keras_tuner.RandomSearch(RegularizationHyperModel(), "val_accuracy", max_trials=10)
    ```
    """

    def __init__(
        self,
        model_builder: Callable[[], keras.Model] | None = None,
        losses: Sequence[str] = ("min_ent",),
        weight_range: tuple[float, float] = (1e-3, 1.0),
        learning_rate: float = 0.005,
        precision: str = "float32",
        paper_bases: bool = False,
        name: str = "regularization",
        batch_size: int | None = None,
    ):
        super().__init__(name=name)
        losses = tuple(losses)
        if not losses or any(x not in losses_lib.LOSS_NAMES for x in losses):
            raise ConfigError(
                f"`losses` must be a non-empty subset of ce/min_ent/mix_ent: {losses}"
            )
        low, high = weight_range
        if not 0 < low < high:
            raise ConfigError(
                f"`weight_range` must satisfy 0 < low < high. Received: {weight_range}"
            )
        self.model_builder = model_builder or models.vgg5
        self.losses = losses
        self.weight_range = (float(low), float(high))
        self.learning_rate = learning_rate
        self.precision = resolve_precision(precision, batch_size=batch_size)
        self._user_policy = keras.config.dtype_policy()
        self.paper_bases = paper_bases
        self.trial_seed: int | None = None  # set by make_tuner's tuners per trial

    def build_loss(self, hp: keras_tuner.HyperParameters) -> keras.losses.Loss:
        loss = (
            hp.Choice("loss", list(self.losses))
            if len(self.losses) > 1
            else hp.Fixed("loss", self.losses[0])
        )
        regularized = [x for x in self.losses if x != "ce"]
        weight = 0.0
        if regularized:
            with hp.conditional_scope("loss", regularized):
                weight = hp.Float("reg_weight", *self.weight_range, sampling="log")
        if loss == "ce":
            return losses_lib.get("ce", from_logits=True)
        # paper_bases: the paper's log bases and CE weight, with the searched weight.
        return losses_lib.get(loss, weight, paper_settings=self.paper_bases, from_logits=True)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        keras.config.set_dtype_policy(self.precision)  # survives clear_session()
        try:
            return self._build_and_compile(hp)  # its layers keep the trial's policy
        finally:
            keras.config.set_dtype_policy(self._user_policy)

    def _build_and_compile(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        if self.trial_seed is not None:
            keras.utils.set_random_seed(self.trial_seed)  # after clear_session()
        model = self.model_builder()
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=self.build_loss(hp),
            metrics=[
                "accuracy",
                keras.metrics.SparseCategoricalCrossentropy(
                    from_logits=True, name="cross_entropy"
                ),
            ],
        )
        return model
