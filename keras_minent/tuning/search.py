"""`search(TuneConfig(...))`: a whole search on EMNIST-Letters, resumable (its report:
`keras_minent.tuning.results`)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from typing import Any

import keras

from keras_minent import losses as losses_lib
from keras_minent._process_state import kept_process_state
from keras_minent.datasets.selection import load_data_with_record
from keras_minent.errors import SearchFailedError as SearchFailedError
from keras_minent.errors import SearchStateError
from keras_minent.training.config import ConfigError, RecipeOptions, TrainConfig, option
from keras_minent.training.devices import distribution
from keras_minent.training.files import output_errors, read_json_file, write_json
from keras_minent.tuning.hypermodel import RegularizationHyperModel
from keras_minent.tuning.oracle import OBJECTIVES, TUNERS, make_tuner
from keras_minent.tuning.results import best_config as best_config
from keras_minent.tuning.results import plot_objective as plot_objective
from keras_minent.tuning.results import report
from keras_minent.tuning.results import trial_table as trial_table


@dataclasses.dataclass
class TuneConfig(RecipeOptions):
    """A search of the regularizer weight on EMNIST-Letters (or `dataset`).

    Each field's meaning is its help text (`dataclasses.fields(TuneConfig)`),
    also shown by `python -m keras_minent tune --help`. Every trial is a short
    run of the `train` recipe: the recipe's options (`RecipeOptions`: model,
    dropout, augmentation, batch size, learning rate and its rule, precision)
    and the data's are `TrainConfig`'s (`train_config`). With
    `distribute="gpus"` each trial trains on all local GPUs
    (`batch_size` is the global batch); several machines share a search
    through keras-tuner's chief/worker mode instead, one trial per machine
    at a time.

    Raises:
        ConfigError: On an invalid value (fewer than one trial or epoch, an
            invalid recipe option as for `TrainConfig`, a negative seed, an
            empty weight range), or if `distribute` is not `"none"` or `"gpus"`.
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
    seed: int = option(
        0,
        "seed of the search: the tuner's, and each trial's (trial_seed: its weights, data "
        "order, augmentation and LR rule; the printed train command carries it)",
        group="search",
    )
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
        checks = [
            (int(self.trials) >= 1, f"--trials must be >= 1 (got {self.trials})"),
            (int(self.epochs) >= 1, f"--epochs-per-trial must be >= 1 (got {self.epochs})"),
            (int(self.seed) >= 0, f"--seed must be >= 0 (got {self.seed})"),
            (
                0 < self.weight_min < self.weight_max and math.isfinite(self.weight_max),
                f"the weight range must satisfy 0 < --weight-min < --weight-max "
                f"(got {self.weight_min}, {self.weight_max})",
            ),
            (bool(self.losses), "--losses needs at least one loss"),
            (self.synthetic_size >= 52, "--synthetic-size must be >= 52"),
            *self.recipe_checks(),
            *self.data_checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid TuneConfig: {message}.")
        self._refuse_ignored_options()
        if self.distribute not in ("none", "gpus"):
            raise ConfigError(
                f"A search takes distribute='none' or 'gpus', not {self.distribute!r}: several "
                "machines share a search through keras-tuner's chief/worker mode "
                "(KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT; see the "
                "README), each trial on one machine's GPUs."
            )

    def _refuse_ignored_options(self) -> None:
        """Options that the search would ignore are refused, not dropped silently."""
        default = {f.name: f.default for f in dataclasses.fields(self)}
        refusals = []
        if self.tuner == "hyperband" and self.trials != default["trials"]:
            refusals.append(
                "--tuner hyperband does not use --trials (its brackets follow from "
                "--epochs-per-trial): drop --trials, or use --tuner random or bayesian"
            )
        weight_range = [
            flag
            for name, flag in (("weight_min", "--weight-min"), ("weight_max", "--weight-max"))
            if getattr(self, name) != default[name]
        ]
        if weight_range and set(self.losses) == {"ce"}:
            refusals.append(
                f"--losses ce has no regularizer weight: {', '.join(weight_range)} would "
                "apply to nothing; add min_ent or mix_ent to --losses, or drop them"
            )
        if refusals:
            raise ConfigError(f"Invalid TuneConfig: {'; '.join(refusals)}.")

    def train_config(self, **changes: Any) -> TrainConfig:
        """The `TrainConfig` of a trial: this search's data and recipe options, its
        `epochs` and `distribute`, and `changes` (the trial's loss, weight and seed).

        Args:
            **changes: `TrainConfig` fields to set.

        Returns:
            The configuration `train` runs for the same setting (its
            `output_dir` is `train`'s default).
        """
        shared = [f.name for f in dataclasses.fields(RecipeOptions) if f.name != "output_dir"]
        values = {name: getattr(self, name) for name in (*shared, "epochs", "distribute")}
        return TrainConfig(**{**values, **changes})


#: Fields of `TuneConfig` that may change when a search is resumed (they do not
#: change what a trial trains: the data's directories may move, its
#: fingerprint is checked instead).
SEARCH_RESUMABLE = frozenset(
    {"trials", "output_dir", "verbose", "dataset", "data_dir", "idx_dir", "download", "distribute"}
)
SEARCH_CONFIG_NAME = "search_config.json"
PROJECT_NAME = "search"
_START_OVER = "Use another --output-dir, or delete it to start a new search."
_RESTORE = "Restore it, or use another --output-dir, or delete it to start a new search."


def _check_search_config(config: TuneConfig) -> dict | None:
    """The stored configuration of the search in `config.output_dir` (None if new),
    refusing one whose space or recipe differs from `config`."""
    path = os.path.join(config.output_dir, SEARCH_CONFIG_NAME)
    project = os.path.join(config.output_dir, PROJECT_NAME)
    if not os.path.isfile(path):
        if os.path.isdir(project) and os.listdir(project):
            raise SearchStateError(
                f"{project} holds a search but {path} (its configuration) is missing, so "
                f"whether it searched this space cannot be checked. {_START_OVER}"
            )
        return None
    old = read_json_file(path, "the search's configuration", _START_OVER, SearchStateError)
    if not isinstance(old, dict) or not isinstance(old.get("config"), dict):
        raise SearchStateError(f"{path} holds no search configuration. {_START_OVER}")
    if not isinstance(old.get("data_fingerprint"), (str, type(None))):
        raise SearchStateError(
            f"{path}: data_fingerprint is not a string: a search writes no such value. "
            f"{_START_OVER}"
        )
    new = _jsonable_config(config)
    diff = sorted(k for k in new if k not in SEARCH_RESUMABLE and old["config"].get(k) != new[k])
    if diff:
        changes = ", ".join(f"{k}: {old['config'].get(k)!r} -> {new[k]!r}" for k in diff)
        raise SearchStateError(
            f"{config.output_dir} holds a search of another space or recipe ({changes}); "
            f"resuming it would mislabel what its trials trained. {_START_OVER}"
        )
    return old


def _jsonable_config(config: TuneConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists


def _check_tuner_files(project: str) -> None:
    """Refuses a keras-tuner project whose `oracle.json` or a `trial.json` is corrupt or gone."""
    if not os.path.isdir(project):
        return
    trials = sorted(n for n in os.listdir(project) if n.startswith("trial_"))
    oracle = os.path.join(project, "oracle.json")
    paths = [os.path.join(project, t, "trial.json") for t in trials]
    if trials or os.path.exists(oracle):
        paths.append(oracle)
    for path in paths:
        if not os.path.isfile(path):
            raise SearchStateError(
                f"{path} (keras-tuner's record) is missing: the search cannot be resumed "
                f"reliably. {_RESTORE}"
            )
        what = "keras-tuner's record, written in place: a kill or a full disk tears it"
        state = read_json_file(path, what, _RESTORE, SearchStateError)
        if not isinstance(state, dict):
            raise SearchStateError(f"{path} is not keras-tuner's record. {_START_OVER}")


def search(config: TuneConfig, model_builder: Callable[[], keras.Model] | None = None) -> dict:
    """Runs (or resumes) a search and writes its report.

    Every trial is a short run of the `train` recipe (`config.train_config`
    with the trial's loss, weight and seed `trial_seed(config.seed, trial_id)`):
    the same network, augmentation, batches, learning rate and rule, metrics
    and precision. Writes `trials.json`, `best_hyperparameters.json` and
    `objective.png` to `config.output_dir`, prints the trial table and the
    `train` command of the best setting.

    Args:
        config: The search.
        model_builder: Returns the uncompiled network of every trial (float32
            logits) instead of `config.model`'s builder.

    Returns:
        `{"trials": [...], "best": {...} or None, "failed": [...], "command": str or None}`
        (`command`: the `train` command of the best setting, as printed).

    Raises:
        SearchFailedError: If any trial failed (the table and keras-tuner's
            message are printed first).
        SearchStateError: If the output directory holds a search of another
            space, recipe or data, or its keras-tuner files are corrupt.
    """
    # The user's random generators, dtype policy and root logger, after every trial.
    with kept_process_state(), output_errors(config.output_dir):  # permission, space: one line
        return _search(config, model_builder)


def _search(config: TuneConfig, model_builder: Callable[[], keras.Model] | None) -> dict:
    recipe = config.train_config()  # refuses what train would refuse, before any work
    os.makedirs(config.output_dir, exist_ok=True)
    stored = _check_search_config(config)
    # The test split is not used here.
    data, record = load_data_with_record(config, roles=("fit", "val"))
    then = (stored or {}).get("data_fingerprint")
    if then is not None and then != record.fingerprint:
        raise SearchStateError(
            f"{config.output_dir} holds a search on other data (fingerprint {then[:12]}...; "
            f"now {record.fingerprint[:12]}..., {record.source}). {_START_OVER}"
        )
    project = os.path.join(config.output_dir, PROJECT_NAME)
    _check_tuner_files(project)
    write_json(
        os.path.join(config.output_dir, SEARCH_CONFIG_NAME),
        {
            "config": _jsonable_config(config),
            "data_fingerprint": record.fingerprint,
            "data_source": record.source,
        },
    )
    dist = distribution(config.distribute)  # before any other TensorFlow work
    hypermodel = RegularizationHyperModel(
        model_builder,
        losses=config.losses,
        weight_range=(config.weight_min, config.weight_max),
        recipe=recipe,
        data=data,
        data_entry=record.to_json(),
        synchronized_bn=dist.synchronized_bn,
    )
    try:
        tuner = make_tuner(
            config.tuner,
            hypermodel,
            config.output_dir,
            project_name=PROJECT_NAME,
            max_trials=config.trials,
            epochs=config.epochs,
            objective=config.objective,
            seed=config.seed,
            distribution_strategy=dist.strategy,
        )
    except (KeyError, ValueError, RuntimeError, FileNotFoundError) as e:
        raise SearchStateError(
            f"keras-tuner could not reload the search in {project} ({type(e).__name__}: {e}). "
            f"{_START_OVER}"
        ) from e
    # Each trial trains on `data` as `train` does (the hypermodel's fit).
    tuner.search(epochs=config.epochs, verbose=config.verbose)
    # the note names the data by their source, not the entry's description
    return report(tuner, config, {**record.to_json(), "description": None})
