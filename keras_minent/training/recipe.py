"""The training recipe, in one place: the network, its compilation, its callbacks, its fit.

`build_recipe(config, device, data)` builds a configured network (seeded by
`config.seed`), compiles it (the configured loss, Adam at
`config.learning_rate`, the run's metrics) and makes the recipe's callbacks
(the learning-rate rule of `config.lr_rule`); `fit` trains it on the run's
batches (their order depends only on the seed and the epoch). `train`
(`keras_minent.training.run`), the runs trained together
(`keras_minent.training.joint_run`) and every trial of a search
(`keras_minent.tuning.RegularizationHyperModel`) use these functions, so a
trial is a short run of the `train` command its search prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras

from keras_minent import datasets
from keras_minent.datasets.selection import models_kwargs
from keras_minent.metrics import ExpectedCalibrationError, PredictiveEntropy
from keras_minent.training.config import MODELS, PAPER_OUTPUTS, ConfigError, TrainConfig
from keras_minent.training.lr_rule import PaperLearningRateRule

#: The metric that selects the best epoch and drives the learning-rate rule.
MONITOR = "val_accuracy"


@dataclasses.dataclass
class Recipe:
    """A network built and compiled by the recipe, and the recipe's callbacks.

    Attributes:
        model: The compiled network.
        lr_rule: The learning-rate rule (`config.lr_rule="paper"`), or None.
    """

    model: keras.Model
    lr_rule: PaperLearningRateRule | None

    @property
    def callbacks(self) -> list[keras.callbacks.Callback]:
        """The recipe's callbacks for `fit` (the learning-rate rule, if any)."""
        return [self.lr_rule] if self.lr_rule is not None else []


def build_recipe(
    config: TrainConfig,
    device: dict,
    data: dict | None = None,
    *,
    synchronized_bn: bool = False,
    model_builder: Callable[[], keras.Model] | None = None,
    extra_metrics: Sequence = (),
) -> Recipe:
    """The recipe of `config`: its network, seeded, built and compiled, and its callbacks.

    Seeds Keras, NumPy and Python with `config.seed` (`keras.utils.set_random_seed`)
    and builds the network under the current dtype policy (set it to the run's
    precision first: `keras_minent.training.resolve_precision`).

    Args:
        config: The run's configuration.
        device: The run's accelerator (`keras_minent.training.accelerator()`).
        data: The run's data entry (`run.data_entry`): the input shape, the
            number of classes and the normalisation; without it, EMNIST-Letters'.
        synchronized_bn: Synchronise BatchNorm across replicas (distributed runs).
        model_builder: Returns the uncompiled network (float32 logits) instead
            of `config.model`'s builder.
        extra_metrics: Metrics compiled after the run's own (e.g. what a
            search's objective needs); they do not change the training.

    Returns:
        The `Recipe`: the compiled network and the learning-rate rule.

    Example:
    ```python
    recipe = build_recipe(TrainConfig(loss="min_ent"), accelerator())
    recipe.model.fit(x, y, callbacks=recipe.callbacks, validation_data=(vx, vy))
    ```
    """
    lr_rule = learning_rate_rule(config)
    keras.utils.set_random_seed(config.seed)
    model = build_model(
        config,
        device,
        synchronized_bn,
        data,
        model_builder=model_builder,
        extra_metrics=extra_metrics,
    )
    return Recipe(model, lr_rule)


def learning_rate_rule(config: TrainConfig) -> PaperLearningRateRule | None:
    """The learning-rate rule of `config.lr_rule` (a fresh one), or None for `constant`."""
    if config.lr_rule == "paper":
        return PaperLearningRateRule(config.learning_rate, MONITOR, seed=config.seed)
    return None


def build_model(
    config: TrainConfig,
    device: dict,
    synchronized_bn: bool = False,
    data: dict | None = None,
    *,
    model_builder: Callable[[], keras.Model] | None = None,
    extra_metrics: Sequence = (),
) -> keras.Model:
    """The configured network, compiled (`build_recipe` without the seeding and callbacks).

    Args:
        config: The run's configuration.
        device: The run's accelerator (resolves `steps_per_execution="auto"`).
        synchronized_bn: Synchronise BatchNorm across replicas.
        data: The run's data entry (input shape, classes, normalisation);
            without it, EMNIST-Letters'.
        model_builder: Returns the uncompiled network instead of `config.model`'s builder.
        extra_metrics: Metrics compiled after the run's own.

    Returns:
        The compiled network (a resumed run's `RunState` restores its state).
    """
    if model_builder is not None:
        model = model_builder()
    else:
        model = MODELS[config.model](
            dropout=config.dropout,
            augment=config.augment,
            seed=config.seed,
            synchronized_bn=synchronized_bn,
            **head_kwargs(config, models_kwargs(data or {})),
        )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=config.build_loss(),
        metrics=[*metrics(), *extra_metrics],
        jit_compile=config.jit_compile,
        steps_per_execution=steps_per_execution(config, device),
    )
    return model


def head_kwargs(config: TrainConfig, kwargs: dict) -> dict:
    """The model builder's arguments with the configured head: `head="paper"` gives
    the paper's 62 outputs (its labels are shifted by `run.head_labels`)."""
    if config.head == "paper":
        return {**kwargs, "num_classes": PAPER_OUTPUTS}
    return kwargs


def metrics() -> list:
    """The metrics of a run (fresh instances)."""
    return ["accuracy", PredictiveEntropy(), ExpectedCalibrationError()]


def steps_per_execution(config: TrainConfig, device: dict) -> int:
    """`config.steps_per_execution`, with `auto` resolved: 8 on a GPU, 1 on a CPU."""
    steps = config.steps_per_execution
    if steps == "auto":
        steps = 8 if device["kind"] == "gpu" else 1
    return steps


def fit(
    model: keras.Model,
    config: TrainConfig,
    data: dict,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    initial_epoch: int = 0,
    shard: tuple[int, int] | None = None,
) -> keras.callbacks.History:
    """Trains `model` on the run's batches, epochs `initial_epoch` to `config.epochs`.

    Epoch `e`'s batches of `config.batch_size` depend only on `(config.seed,
    e)` (`datasets.training_dataset`); a distributed run (`config.distribute`)
    takes full batches only. Validation is on `data["val"]` after every epoch.

    Args:
        model: The compiled network (`build_recipe`).
        config: The run's configuration.
        data: The run's arrays, `{"fit": (x, y), "val": (x, y), ...}`.
        callbacks: The callbacks of `fit` (the recipe's first).
        initial_epoch: The first epoch (a resumed run's finished epochs).
        shard: `(process_index, num_processes)` where each process reads its part.

    Returns:
        `fit`'s `History`.

    Raises:
        ConfigError: If a batch does not split across the processes.
    """
    (x_fit, y_fit), (x_val, y_val) = data["fit"], data["val"]
    # Distributed: full batches only, so each splits evenly across replicas/processes.
    distributed = config.distribute != "none"
    try:
        batches = datasets.training_dataset(
            x_fit,
            y_fit,
            config.batch_size,
            config.seed,
            config.epochs,
            initial_epoch,
            drop_remainder=distributed,
            shard=shard,
        )
    except ValueError as e:  # a batch that does not split across the processes
        raise ConfigError(str(e)) from e
    callbacks = list(callbacks)
    if isinstance(batches, datasets.TrainingBatches):  # the NumPy path (JAX, PyTorch)
        callbacks.append(batches.epoch_callback())
    return model.fit(
        batches,
        steps_per_epoch=datasets.steps_per_epoch(len(x_fit), config.batch_size, distributed),
        validation_data=datasets.evaluation_dataset(x_val, y_val, 1000),
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,  # the dataset is already shuffled, per (seed, epoch)
        verbose=config.verbose,
    )
