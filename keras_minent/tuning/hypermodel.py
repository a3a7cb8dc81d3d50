"""The hypermodel of the search: the loss and its regularizer weight; each trial a short
run of the `train` recipe (`keras_minent.training.recipe`), seeded per trial."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence

import keras
import keras_tuner

from keras_minent import losses as losses_lib
from keras_minent.training.config import ConfigError, TrainConfig
from keras_minent.training.devices import accelerator, resolve_precision
from keras_minent.training.recipe import build_recipe, fit


def trial_seed(seed: int, trial_id: str) -> int:
    """The seed of one trial (its `TrainConfig.seed`: weights, dropout, augmentation,
    data order and learning-rate rule): from the search's seed and the trial's id
    (SHA-256 of `"<seed>/<trial_id>"`, in `1 .. 2**31 - 1`)."""
    digest = hashlib.sha256(f"{int(seed)}/{trial_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1) + 1


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Searches the loss (`ce`, `min_ent`, `mix_ent`) and its regularizer weight; every
    trial trains with the `train` recipe.

    Hyperparameters: `loss` (a choice among `losses`; fixed if only one) and
    `reg_weight` (log-uniform in `weight_range`, active for `min_ent` and
    `mix_ent`). A trial is `recipe` with the trial's loss, weight and seed
    (`trial_config`), built and compiled by `keras_minent.training.build_recipe`
    (the network and its augmentation, Adam, the run's metrics, plus the
    `cross_entropy` metric of the `val_cross_entropy` objective) and trained
    with the recipe's learning-rate rule. Given the run's arrays (`data`), a
    trial trains as `train` does (`keras_minent.training.recipe.fit`: the
    batches of its seed, `recipe.epochs` or the tuner's epochs), so
    `train` with the trial's configuration repeats it; without them it trains
    on what the tuner's `search` gets.

    The dtype policy is set inside `build`, because keras-tuner calls
    `keras.backend.clear_session()` between trials, which resets it (`build`
    then puts back the global policy that was current when the hypermodel
    was made, so a search leaves the user's policy as it was); so is the
    trial's random seed (`trial_seed`, which the tuners of `make_tuner` set
    before each trial; other tuners train every trial with `recipe.seed`).

    Args:
        model_builder: Returns an uncompiled model with float32 logits;
            defaults to the recipe's network (`recipe.model`, with its
            dropout and augmentation, for the data of `data_entry`).
        losses: The arms of the search, from `("ce", "min_ent", "mix_ent")`.
        weight_range: `(low, high)` of the regularizer weight, both > 0.
        learning_rate: Adam's learning rate (default 0.005), when `recipe` is not given.
        precision: Dtype policy of every trial (e.g. `"mixed_bfloat16"`), or
            `"auto"` (resolved as the train command does); default `float32`,
            when `recipe` is not given.
        paper_bases: Use the paper's log bases and CE weights with the searched weight.
        name: Name of the hypermodel.
        batch_size: The batch size (default 100), when `recipe` is not given.
        recipe: The recipe of every trial (a `TrainConfig`; its loss options
            and seed are the trial's). Default: `TrainConfig`'s (the paper's
            recipe) with `learning_rate`, `precision` and `batch_size`.
        data: The run's arrays, `{"fit": (x, y), "val": (x, y)}`; then the
            tuner's `search` takes no data.
        data_entry: The data's entry (`input_shape`, `num_classes`,
            `normalization`) for the recipe's network.
        synchronized_bn: Synchronise BatchNorm across replicas (`distribute="gpus"`).

    Raises:
        ConfigError: On an unknown loss or an invalid range, or `learning_rate`,
            `precision` or `batch_size` given beside `recipe`.

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
        learning_rate: float | None = None,
        precision: str | None = None,
        paper_bases: bool = False,
        name: str = "regularization",
        batch_size: int | None = None,
        *,
        recipe: TrainConfig | None = None,
        data: dict | None = None,
        data_entry: dict | None = None,
        synchronized_bn: bool = False,
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
        beside = {"learning_rate": learning_rate, "precision": precision, "batch_size": batch_size}
        if recipe is None:
            recipe = TrainConfig(
                learning_rate=0.005 if learning_rate is None else learning_rate,
                precision=precision or "float32",
                batch_size=100 if batch_size is None else batch_size,
            )
        elif any(v is not None for v in beside.values()):
            given = ", ".join(k for k, v in beside.items() if v is not None)
            raise ConfigError(
                f"RegularizationHyperModel: {given} belong to the recipe: set them in `recipe`."
            )
        self.model_builder = model_builder
        self.losses = losses
        self.weight_range = (float(low), float(high))
        self.recipe = recipe
        self.learning_rate = recipe.learning_rate
        self.precision = resolve_precision(recipe.precision, batch_size=recipe.batch_size)
        self._user_policy = keras.config.dtype_policy()
        self.paper_bases = paper_bases
        self.data, self.data_entry = data, data_entry
        self.synchronized_bn = synchronized_bn
        self.trial_seed: int | None = None  # set by make_tuner's tuners per trial
        self._device: dict | None = None
        self._trial: tuple[TrainConfig, list] | None = None  # the built trial's, for fit

    def trial_config(
        self, hp: keras_tuner.HyperParameters, seed: int | None = None
    ) -> TrainConfig:
        """The `TrainConfig` of a trial: `recipe` with the trial's loss, weight and seed.

        Args:
            hp: The trial's hyperparameters (the search space is declared on it).
            seed: The trial's seed (`trial_seed`); None: `recipe.seed`.

        Returns:
            The configuration that `train` runs for the same setting.
        """
        loss = (
            hp.Choice("loss", list(self.losses))
            if len(self.losses) > 1
            else hp.Fixed("loss", self.losses[0])
        )
        regularized = [x for x in self.losses if x != "ce"]
        weight = None
        if regularized:
            with hp.conditional_scope("loss", regularized):
                weight = hp.Float("reg_weight", *self.weight_range, sampling="log")
        ce = loss == "ce"
        return dataclasses.replace(
            self.recipe,
            loss=loss,
            reg_weight=None if ce else weight,
            # paper_bases: the paper's log bases and CE weight, with the searched weight.
            paper_loss_settings=self.paper_bases and not ce,
            seed=self.recipe.seed if seed is None else int(seed),
        )

    def build_loss(self, hp: keras_tuner.HyperParameters) -> keras.losses.Loss:
        """The trial's loss (`trial_config(hp).build_loss()`)."""
        return self.trial_config(hp).build_loss()

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        config = self.trial_config(hp, self.trial_seed)
        if self._device is None:
            self._device = accelerator()
        keras.config.set_dtype_policy(self.precision)  # survives clear_session()
        try:  # its layers keep the trial's policy
            recipe = build_recipe(
                config,
                self._device,
                self.data_entry,
                synchronized_bn=self.synchronized_bn,
                model_builder=self.model_builder,
                extra_metrics=[
                    keras.metrics.SparseCategoricalCrossentropy(
                        from_logits=True, name="cross_entropy"
                    )
                ],
            )
        finally:
            keras.config.set_dtype_policy(self._user_policy)
        self._trial = (config, recipe.callbacks)
        return recipe.model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        """Trains the trial's model with the recipe's callbacks (before the tuner's).

        With `data`, as `train` does (`recipe.fit`, epochs `initial_epoch` to
        `epochs` from the tuner); else `model.fit(*args, **kwargs)`.

        Raises:
            ConfigError: If data are passed to a hypermodel that has its own.
        """
        if self._trial is None:
            raise ConfigError("RegularizationHyperModel.fit: build the trial's model first.")
        config, own = self._trial
        callbacks = [*own, *kwargs.pop("callbacks", [])]
        if self.data is None:
            return model.fit(*args, callbacks=callbacks, **kwargs)
        passed = [k for k in ("x", "y", "validation_data") if k in kwargs]
        if args or passed:
            raise ConfigError(
                "This RegularizationHyperModel trains on its own `data`: call the tuner's "
                "search without data (epochs and verbosity only)."
            )
        config = dataclasses.replace(config, epochs=int(kwargs.get("epochs", config.epochs)))
        return fit(model, config, self.data, callbacks, int(kwargs.get("initial_epoch", 0)))
