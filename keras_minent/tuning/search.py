"""`search(TuneConfig(...))`: a whole search on EMNIST-Letters, resumable, and its report."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner

from keras_minent import losses as losses_lib
from keras_minent._process_state import kept_process_state
from keras_minent.datasets.selection import load_data_with_record
from keras_minent.errors import SearchFailedError, SearchStateError
from keras_minent.training.config import (
    ConfigError,
    RecipeOptions,
    TrainConfig,
    command_line_options,
    option,
)
from keras_minent.training.devices import distribution
from keras_minent.training.files import output_errors, read_json_file, write_json
from keras_minent.tuning.hypermodel import RegularizationHyperModel, trial_seed
from keras_minent.tuning.oracle import OBJECTIVES, TUNERS, make_tuner


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
            ax.plot(w, v, "o-", label=loss, clip_on=False)  # a point at 0 or 1 shows whole
    ax.set_xscale("log")
    _plotting.plain_log_labels(ax.xaxis)
    if "accuracy" in objective:  # an accuracy lies in 0..1: no axis beyond it
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, 0.0), min(high, 1.0))
    ax.set(xlabel="regularizer weight", ylabel=objective)
    title = "search results" + (f"\n{note}" if note else "")
    ax.set_title(_plotting.wrap(title, 80), fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    _plotting.save(fig, path)


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


def report(tuner: keras_tuner.Tuner, config: TuneConfig, data: dict | None = None) -> dict:
    """Writes and prints the readable results of a search (see `search`).

    The note of the data (synthetic, unverified, a subset: `reporting.note`,
    with `data` the search's data record) goes into `best_hyperparameters.json`
    (`note`), `objective.png` and the console table; the suggested `train`
    command keeps the search's recipe (`--batch-size`, `--learning-rate`).
    """
    from keras_minent.training.reporting import note as data_note

    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief" or not hasattr(
        tuner.oracle, "trials"
    ):
        return {"trials": [], "best": None, "failed": [], "command": None}
    rows = trial_table(tuner)
    objective = tuner.oracle.objective.name
    out = config.output_dir
    write_json(os.path.join(out, "trials.json"), rows)
    done = [r for r in rows if r["status"] == "COMPLETED" and r[objective] is not None]
    best = command = None
    note = data_note(config, data)
    if done:
        best_trial = tuner.oracle.get_best_trials(1)[0]
        best = {**best_trial.hyperparameters.values, objective: float(best_trial.score)}
        write_json(os.path.join(out, "best_hyperparameters.json"), {**best, "note": note})
        try:  # the results are written: a plot never loses them
            plot_objective(rows, objective, os.path.join(out, "objective.png"), note)
        except Exception as e:
            warnings.warn(f"objective.png not written: {e}", RuntimeWarning, stacklevel=2)
    if note:
        print(f"\n*** {note} ***")
    print(f"\n{'trial':<6} {'status':<10} {'loss':<8} {'reg_weight':>10} {objective:>18}")
    for r in rows:
        w = "" if r["reg_weight"] is None else f"{r['reg_weight']:.4g}"
        v = "" if r[objective] is None else f"{r[objective]:.4f}"
        print(f"{r['trial']:<6} {r['status']:<10} {r['loss'] or '':<8} {w:>10} {v:>18}")
    trial = best_config(tuner, best_trial) if best else None
    if trial is not None:
        # The loss always; every other option where it differs from train's default.
        options = command_line_options(trial, exclude=("output_dir", "verbose", "epochs", "loss"))
        command = " ".join(["python -m keras_minent train --loss", trial.loss, *options])
        print(f"\nbest: {best}\ntrain the final model with:\n  {command}")
        continued = best_trial.hyperparameters.values.get("tuner/initial_epoch")
        if tuner.hypermodel.data is not None and not continued:  # trained as train does
            print(f"(the best trial is this command with --epochs {trial.epochs})")
    failed = [r for r in rows if r["status"] in ("FAILED", "INVALID")]
    if failed:
        raise SearchFailedError(
            f"{len(failed)} trial(s) failed ({[r['trial'] for r in failed]}); see keras-tuner's "
            "messages above. On the TensorFlow backend keras-tuner needs `tensorboard` "
            "(pip install 'keras-minent[tuning]')."
        )
    return {"trials": rows, "best": best, "failed": failed, "command": command}


def best_config(tuner: keras_tuner.Tuner, trial: Any) -> TrainConfig | None:
    """The `TrainConfig` that `train` runs for a trial's setting (None for a hypermodel
    other than `RegularizationHyperModel`): its `trial_config`, with the trial's seed
    (`trial_seed(seed, trial_id)` under `make_tuner`'s tuners; else the recipe's) and
    its epochs (hyperband's `tuner/epochs` where set)."""
    hypermodel = tuner.hypermodel
    if not isinstance(hypermodel, RegularizationHyperModel):
        return None
    seed = None
    if hasattr(tuner, "search_seed"):  # make_tuner's tuners seed every trial
        seed = trial_seed(tuner.search_seed, trial.trial_id)
    config = hypermodel.trial_config(trial.hyperparameters.copy(), seed)
    epochs = trial.hyperparameters.values.get("tuner/epochs")
    return config if epochs is None else dataclasses.replace(config, epochs=int(epochs))
