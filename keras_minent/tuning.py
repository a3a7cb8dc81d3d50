"""KerasTuner search of the regularization strength (needs the `tuning` extra).

`RegularizationHyperModel` builds and compiles a model with `MinEntLoss` or
`MixEntLoss` whose regularizer weight is searched on a log scale (plain cross
entropy can be an arm of the search). `search(TuneConfig(...))` runs a whole
search on EMNIST-Letters and writes a readable report. Searches resume from
their directory, and keras-tuner's chief/worker mode distributes them:

```bash
# chief (runs the oracle, trains nothing):
KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
    python -m keras_minent tune --output-dir /shared/search ...
# one worker per GPU or machine, same command and directory:
CUDA_VISIBLE_DEVICES=0 KERASTUNER_TUNER_ID=worker0 KERASTUNER_ORACLE_IP=10.0.0.1 \\
    KERASTUNER_ORACLE_PORT=8000 python -m keras_minent tune --output-dir /shared/search ...
```

The objective is validation accuracy (or validation cross entropy, tracked as
a separate metric), never `val_loss`: the loss itself changes with the weight.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import keras_tuner

from keras_minent import losses as losses_lib
from keras_minent import models
from keras_minent.datasets import load_data
from keras_minent.training.config import (
    PRECISIONS,
    SYNTHETIC_NOTE,
    ConfigError,
    DataOptions,
    option,
)
from keras_minent.training.devices import distribution, resolve_precision

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = {
    "val_accuracy": keras_tuner.Objective("val_accuracy", "max"),
    "val_cross_entropy": keras_tuner.Objective("val_cross_entropy", "min"),
}


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Searches the loss (`ce`, `min_ent`, `mix_ent`) and its regularizer weight.

    Hyperparameters: `loss` (a choice among `losses`; fixed if only one) and
    `reg_weight` (log-uniform in `weight_range`, active for `min_ent` and
    `mix_ent`). The dtype policy is set inside `build`, because keras-tuner
    calls `keras.backend.clear_session()` between trials, which resets it;
    `build` then puts back the global policy that was current when the
    hypermodel was made, so a search leaves the user's policy as it was.

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
        self.precision = resolve_precision(precision)
        self._user_policy = keras.config.dtype_policy()
        self.paper_bases = paper_bases

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


def _reclaiming(oracle, timeout: float):
    """Gives a (chief's or local) oracle the `_ReclaimingOracle` behaviour."""
    cls = type(oracle)
    if not isinstance(oracle, keras_tuner.Oracle) or isinstance(oracle, _ReclaimingOracle):
        return oracle  # a worker's client: the chief does the reclaiming
    oracle.__class__ = type(f"Reclaiming{cls.__name__}", (_ReclaimingOracle, cls), {})
    oracle._beats = {}
    oracle.worker_timeout = float(timeout)
    return oracle


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
    (default 900) so the search finishes with the remaining workers. With a
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
        "seed": seed,
        "overwrite": False,
        "distribution_strategy": distribution_strategy,
    }
    if kind == "random":
        tuner = keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    elif kind == "bayesian":
        tuner = keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    else:
        tuner = keras_tuner.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)
    timeout = float(os.environ.get(WORKER_TIMEOUT_ENV, DEFAULT_WORKER_TIMEOUT))
    _reclaiming(tuner.oracle, timeout)
    return tuner


def trial_table(tuner: keras_tuner.Tuner) -> list[dict[str, Any]]:
    """One row per trial: id, status, loss, weight, objective value."""
    rows = []
    name = tuner.oracle.objective.name
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        score = trial.score
        rows.append(
            {
                "trial": trial.trial_id,
                "status": str(trial.status),
                "loss": values.get("loss"),
                "reg_weight": values.get("reg_weight"),
                name: None if score is None else float(score),
            }
        )
    return sorted(rows, key=lambda r: r["trial"])


def plot_objective(rows: list[dict], objective: str, path: str, note: str | None = None) -> None:
    """Objective against the regularizer weight (log axis), one series per loss, as PNG.

    `note` (e.g. the synthetic-data warning) goes under the title, as on the
    training plots. Drawn on a `matplotlib.figure.Figure` (the process's
    plotting backend is untouched).

    Raises:
        MissingExtraError: If matplotlib is not installed.
    """
    from keras_minent import _plotting

    fig = _plotting.figure(6, 4.3)
    ax = fig.subplots()
    for loss in sorted({r["loss"] for r in rows if r["loss"]}):
        pts = [
            (r["reg_weight"], r[objective])
            for r in rows
            if r["loss"] == loss and r[objective] is not None
        ]
        if loss == "ce":
            for i, (_, v) in enumerate(pts):
                ax.axhline(v, color="gray", ls="--", label=None if i else "cross entropy")
            continue
        if pts:
            w, v = zip(*sorted(pts))
            ax.plot(w, v, "o-", label=loss)
    ax.set_xscale("log")
    ax.set(xlabel="regularizer weight", ylabel=objective)
    ax.set_title(_plotting.wrap("search results" + (f"\n{note}" if note else "")), fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    _plotting.save(fig, path)


@dataclasses.dataclass
class TuneConfig(DataOptions):
    """A search of the regularizer weight on EMNIST-Letters.

    Each field's meaning is its help text (`dataclasses.fields(TuneConfig)`),
    also shown by `python -m keras_minent tune --help`. With
    `distribute="gpus"` each trial trains on all local GPUs
    (`batch_size` is the global batch); several machines share a search
    through keras-tuner's chief/worker mode instead, one trial per machine
    at a time.

    Raises:
        ConfigError: If `distribute` is not `"none"` or `"gpus"`.
    """

    tuner: str = option("random", "the search algorithm", choices=TUNERS, group="search")
    trials: int = option(10, "number of trials (random, bayesian)", group="search")
    epochs: int = option(
        10,
        "epochs per trial (the maximum for hyperband)",
        flag="--epochs-per-trial",
        group="search",
    )
    losses: tuple[str, ...] = option(
        losses_lib.LOSS_NAMES,
        "the arms of the search",
        choices=losses_lib.LOSS_NAMES,
        group="search",
    )
    weight_min: float = option(1e-3, "lower end of the weight range", group="search")
    weight_max: float = option(1.0, "upper end of the weight range", group="search")
    objective: str = option(
        "val_accuracy", "what the search optimizes", choices=tuple(OBJECTIVES), group="search"
    )
    model: str = option("vgg5", "the network", choices=tuple(models.BUILDERS), group="search")
    batch_size: int = option(100, "batch size", group="search")
    learning_rate: float = option(0.005, "Adam's learning rate", group="search")
    precision: str = option(
        "auto",
        "dtype policy of every trial; auto: as for train (mixed_bfloat16 on GPUs with "
        "compute capability >= 8.0, mixed_float16 on older GPUs, float32 on CPU)",
        choices=PRECISIONS,
        group="run",
    )
    seed: int = option(0, "seed of the tuner and the data order", group="search")
    output_dir: str = option(
        "runs/tune", "the search directory (resumable, shared by chief and workers)", group="run"
    )
    distribute: str = option(
        "none",
        "gpus: every trial on all local GPUs (--batch-size is the global batch); "
        "several machines: keras-tuner's chief/worker mode (README)",
        choices=("none", "gpus"),
        group="run",
    )

    def __post_init__(self):
        if self.distribute not in ("none", "gpus"):
            raise ConfigError(
                f"A search takes distribute='none' or 'gpus', not {self.distribute!r}: several "
                "machines share a search through keras-tuner's chief/worker mode "
                "(KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT; see the "
                "README), each trial on one machine's GPUs."
            )


class SearchFailedError(RuntimeError):
    """Trials of a search failed (keras-tuner printed why)."""


def search(config: TuneConfig, model_builder: Callable[[], keras.Model] | None = None) -> dict:
    """Runs (or resumes) a search and writes its report.

    Writes `trials.json`, `best_hyperparameters.json` and `objective.png` to
    `config.output_dir`, prints the trial table and the command that trains
    the final model with the best setting.

    Returns:
        `{"trials": [...], "best": {...} or None, "failed": [...]}`.

    Raises:
        SearchFailedError: If any trial failed (the table and keras-tuner's
            message are printed first).
    """
    previous_policy = keras.config.dtype_policy()
    try:
        return _search(config, model_builder)
    finally:
        keras.config.set_dtype_policy(previous_policy)  # the user's, after every trial


def _search(config: TuneConfig, model_builder: Callable[[], keras.Model] | None) -> dict:
    from keras_minent import datasets

    dist = distribution(config.distribute)  # before any other TensorFlow work
    builder = model_builder or (
        lambda: models.BUILDERS[config.model](augment=True, synchronized_bn=dist.synchronized_bn)
    )
    hypermodel = RegularizationHyperModel(
        builder,
        losses=config.losses,
        weight_range=(config.weight_min, config.weight_max),
        learning_rate=config.learning_rate,
        precision=config.precision,
    )
    tuner = make_tuner(
        config.tuner,
        hypermodel,
        config.output_dir,
        max_trials=config.trials,
        epochs=config.epochs,
        objective=config.objective,
        seed=config.seed,
        distribution_strategy=dist.strategy,
    )
    data = load_data(config, roles=("fit", "val"))  # the test split is not used here
    (x_fit, y_fit), (x_val, y_val) = data["fit"], data["val"]
    full = config.distribute != "none"  # full batches: each splits evenly across replicas
    tuner.search(
        datasets.training_dataset(
            x_fit, y_fit, config.batch_size, config.seed, config.epochs, drop_remainder=full
        ),
        steps_per_epoch=datasets.steps_per_epoch(len(x_fit), config.batch_size, full),
        validation_data=datasets.evaluation_dataset(x_val, y_val, 1000),
        epochs=config.epochs,
        shuffle=False,
        verbose=config.verbose,
    )
    return report(tuner, config)


def report(tuner: keras_tuner.Tuner, config: TuneConfig) -> dict:
    """Writes and prints the readable results of a search (see `search`)."""
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief" or not hasattr(
        tuner.oracle, "trials"
    ):
        return {"trials": [], "best": None, "failed": []}
    rows = trial_table(tuner)
    objective = tuner.oracle.objective.name
    out = config.output_dir
    with open(os.path.join(out, "trials.json"), "w") as f:
        json.dump(rows, f, indent=2)
    done = [r for r in rows if r["status"] == "COMPLETED" and r[objective] is not None]
    best = None
    if done:
        best_hp = tuner.get_best_hyperparameters(1)[0].values
        best = {**best_hp, objective: tuner.oracle.get_best_trials(1)[0].score}
        with open(os.path.join(out, "best_hyperparameters.json"), "w") as f:
            json.dump(best, f, indent=2)
        note = SYNTHETIC_NOTE if config.synthetic else None
        try:  # the results are written: a plot never loses them
            plot_objective(rows, objective, os.path.join(out, "objective.png"), note)
        except Exception as e:
            warnings.warn(f"objective.png not written: {e}", RuntimeWarning, stacklevel=2)
    print(f"\n{'trial':<6} {'status':<10} {'loss':<8} {'reg_weight':>10} {objective:>18}")
    for r in rows:
        w = "" if r["reg_weight"] is None else f"{r['reg_weight']:.4g}"
        v = "" if r[objective] is None else f"{r[objective]:.4f}"
        print(f"{r['trial']:<6} {r['status']:<10} {r['loss'] or '':<8} {w:>10} {v:>18}")
    if best:
        cmd = f"python -m keras_minent train --loss {best['loss']} --model {config.model}"
        if best.get("reg_weight") is not None and best["loss"] != "ce":
            cmd += f" --reg-weight {best['reg_weight']:.4g}"
        print(f"\nbest: {best}\ntrain the final model with:\n  {cmd}")
    failed = [r for r in rows if r["status"] in ("FAILED", "INVALID")]
    if failed:
        raise SearchFailedError(
            f"{len(failed)} trial(s) failed ({[r['trial'] for r in failed]}); see keras-tuner's "
            "messages above. On the TensorFlow backend keras-tuner needs `tensorboard` "
            "(pip install 'keras-minent[tuning]')."
        )
    return {"trials": rows, "best": best, "failed": failed}


__all__ = [
    "RegularizationHyperModel",
    "SearchFailedError",
    "TuneConfig",
    "make_tuner",
    "plot_objective",
    "report",
    "search",
    "trial_table",
]
