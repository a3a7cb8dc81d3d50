"""keras-tuner's tuners for the search: seeded trials and a chief that reclaims lost work."""

from __future__ import annotations

import os
import time
from typing import Any

import keras
import keras_tuner

from keras_minent.training.config import ConfigError
from keras_minent.tuning.hypermodel import trial_seed

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = {
    "val_accuracy": keras_tuner.Objective("val_accuracy", "max"),
    "val_cross_entropy": keras_tuner.Objective("val_cross_entropy", "min"),
}


#: Seconds without a sign of life after which a worker's trial is given to another worker.
WORKER_TIMEOUT_ENV = "KERAS_MINENT_WORKER_TIMEOUT"
DEFAULT_WORKER_TIMEOUT = 900.0


class _ReclaimingOracle:
    """Mixin: reclaims the trial of a worker that went silent (crashed, killed).

    keras-tuner's chief waits for every running trial to end, so one dead
    worker would hang the whole search. Here every `create_trial` and
    `update_trial` (once per epoch) is a heartbeat; a trial whose worker has
    been silent for `worker_timeout` seconds goes back to the retry queue,
    and a worker asking for work waits (instead of stopping) while others
    still run trials that may come back.
    """

    def _heartbeat(self, tuner_id):
        self._beats[tuner_id] = time.time()

    @keras_tuner.synchronized
    def _reclaim_and_check_wait(self, tuner_id) -> bool:
        now = time.time()
        self._heartbeat(tuner_id)
        for other, trial in list(self.ongoing_trials.items()):
            if (
                other != tuner_id
                and now - self._beats.setdefault(other, now) > self.worker_timeout
            ):
                self.ongoing_trials.pop(other)
                self.tuner_ids.discard(other)
                self._retry_queue.append(trial.trial_id)
                print(f"keras-minent: worker {other!r} silent; trial {trial.trial_id} re-queued")
        full = bool(self.max_trials) and len(self.trials) >= self.max_trials
        others_running = any(o != tuner_id for o in self.ongoing_trials)
        return (
            full
            and not self._retry_queue
            and others_running
            and (tuner_id not in self.ongoing_trials)
        )

    def create_trial(self, tuner_id):
        while self._reclaim_and_check_wait(tuner_id):
            time.sleep(1.0)
        return super().create_trial(tuner_id)

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        for tuner_id, trial in self.ongoing_trials.items():
            if trial.trial_id == trial_id:
                self._heartbeat(tuner_id)
        return super().update_trial(trial_id, metrics, step=step)


def _reclaiming(instance, timeout: float):
    """Gives a (chief's or local) oracle the `_ReclaimingOracle` behaviour."""
    cls = type(instance)
    if not isinstance(instance, keras_tuner.Oracle) or isinstance(instance, _ReclaimingOracle):
        return instance  # a worker's client: the chief does the reclaiming
    instance.__class__ = type(f"Reclaiming{cls.__name__}", (_ReclaimingOracle, cls), {})
    instance._beats = {}
    instance.worker_timeout = float(timeout)
    return instance


class _SeededTuner:
    """Mixin: seeds every trial from the search's seed and the trial's id.

    Before a trial it calls `keras.utils.set_random_seed(trial_seed(seed,
    trial_id))` (and hands the seed to a hypermodel with a `trial_seed`
    attribute, `RegularizationHyperModel`, whose trial trains with it as the
    `train` run with `--seed <trial seed>` does: weights, dropout,
    augmentation, data order and learning-rate rule), and rewinds `keras_minent.datasets.TrainingBatches` (the NumPy-path
    batches keep an epoch counter across `fit` calls) to the trial's first
    epoch, so that the same search gives the same trials.
    """

    def run_trial(self, trial, *args, **kwargs):
        from keras_minent.datasets import TrainingBatches

        seed = trial_seed(self.search_seed, trial.trial_id)
        keras.utils.set_random_seed(seed)
        if hasattr(self.hypermodel, "trial_seed"):
            self.hypermodel.trial_seed = seed
        first = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0))
        for data in (*args, *kwargs.values()):
            if isinstance(data, TrainingBatches):
                data.set_epoch(first)
        return super().run_trial(trial, *args, **kwargs)


def oracle_seed(seed: int) -> int:
    """keras-tuner's seed for a search seed: `seed + 1` (keras-tuner reads 0 as "no seed")."""
    if int(seed) < 0:
        raise ConfigError(f"The search's seed must be >= 0. Received: {seed}")
    return int(seed) + 1


def make_tuner(
    kind: str,
    hypermodel: keras_tuner.HyperModel,
    directory: str,
    project_name: str = "search",
    max_trials: int = 10,
    epochs: int = 10,
    objective: str = "val_accuracy",
    seed: int = 0,
    distribution_strategy: Any = None,
) -> keras_tuner.Tuner:
    """A keras-tuner tuner over `hypermodel` (`random`, `bayesian` or `hyperband`).

    It resumes from `directory/project_name` if a search is there. In
    keras-tuner's chief/worker mode (`KERASTUNER_TUNER_ID`,
    `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`), the chief re-queues
    the trial of a worker silent for `$KERAS_MINENT_WORKER_TIMEOUT` seconds
    (default 900) so the search finishes with the remaining workers. Every
    trial is seeded by `trial_seed(seed, trial_id)` (weights, dropout,
    augmentation; with `RegularizationHyperModel` also its data order and
    learning-rate rule) and starts its data at its first epoch; keras-tuner's own
    seed is `oracle_seed(seed)`, so seed 0 is a seed too. With a
    `distribution_strategy` (a `tf.distribute` strategy, e.g.
    `keras_minent.distribute.TrainingCluster.create("gpus").strategy`) every trial is built in its scope.
    """
    if kind not in TUNERS:
        raise ConfigError(f"Unknown tuner {kind!r}; expected one of {TUNERS}.")
    if objective not in OBJECTIVES:
        raise ConfigError(f"Unknown objective {objective!r}; expected one of {tuple(OBJECTIVES)}.")
    common = {
        "objective": OBJECTIVES[objective],
        "directory": directory,
        "project_name": project_name,
        "seed": oracle_seed(seed),
        "overwrite": False,
        "distribution_strategy": distribution_strategy,
    }
    if kind == "random":
        tuner = keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    elif kind == "bayesian":
        tuner = keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    else:
        tuner = keras_tuner.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)
    tuner.__class__ = type(f"Seeded{type(tuner).__name__}", (_SeededTuner, type(tuner)), {})
    tuner.search_seed = int(seed)
    timeout = float(os.environ.get(WORKER_TIMEOUT_ENV, DEFAULT_WORKER_TIMEOUT))
    _reclaiming(tuner.oracle, timeout)
    return tuner
