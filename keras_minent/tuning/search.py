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
from keras_minent import models
from keras_minent._process_state import kept_process_state
from keras_minent.datasets.selection import load_data_with_record, models_kwargs
from keras_minent.errors import SearchFailedError, SearchStateError
from keras_minent.training.config import (
    PRECISIONS,
    ConfigError,
    DataOptions,
    option,
)
from keras_minent.training.devices import distribution
from keras_minent.training.files import output_errors, read_json_file, write_json
from keras_minent.tuning.hypermodel import RegularizationHyperModel
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
class TuneConfig(DataOptions):
    """A search of the regularizer weight on EMNIST-Letters (or `dataset`).

    Each field's meaning is its help text (`dataclasses.fields(TuneConfig)`),
    also shown by `python -m keras_minent tune --help`. With
    `distribute="gpus"` each trial trains on all local GPUs
    (`batch_size` is the global batch); several machines share a search
    through keras-tuner's chief/worker mode instead, one trial per machine
    at a time.

    Raises:
        ConfigError: On an invalid value (fewer than one trial or epoch, a
            batch size or learning rate that is not positive, a negative
            seed, an empty weight range), or if `distribute` is not `"none"`
            or `"gpus"`.
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
        "dtype policy of every trial; auto: as for train (see --precision of train)",
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
        checks = [
            (int(self.trials) >= 1, f"--trials must be >= 1 (got {self.trials})"),
            (int(self.epochs) >= 1, f"--epochs-per-trial must be >= 1 (got {self.epochs})"),
            (int(self.batch_size) >= 1, f"--batch-size must be >= 1 (got {self.batch_size})"),
            (
                math.isfinite(self.learning_rate) and self.learning_rate > 0,
                f"--learning-rate must be a positive number (got {self.learning_rate})",
            ),
            (int(self.seed) >= 0, f"--seed must be >= 0 (got {self.seed})"),
            (
                0 < self.weight_min < self.weight_max and math.isfinite(self.weight_max),
                f"the weight range must satisfy 0 < --weight-min < --weight-max "
                f"(got {self.weight_min}, {self.weight_max})",
            ),
            (bool(self.losses), "--losses needs at least one loss"),
            (self.synthetic_size >= 52, "--synthetic-size must be >= 52"),
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

    Writes `trials.json`, `best_hyperparameters.json` and `objective.png` to
    `config.output_dir`, prints the trial table and the command that trains
    the final model with the best setting.

    Returns:
        `{"trials": [...], "best": {...} or None, "failed": [...]}`.

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
    from keras_minent import datasets

    os.makedirs(config.output_dir, exist_ok=True)
    stored = _check_search_config(config)
    # The test split is not used here.
    data, record = load_data_with_record(config, roles=("fit", "val"))
    then = (stored or {}).get("data_fingerprint")
    if then is not None and then != record["fingerprint"]:
        raise SearchStateError(
            f"{config.output_dir} holds a search on other data (fingerprint {then[:12]}...; "
            f"now {record['fingerprint'][:12]}..., {record.get('source')}). {_START_OVER}"
        )
    project = os.path.join(config.output_dir, PROJECT_NAME)
    _check_tuner_files(project)
    write_json(
        os.path.join(config.output_dir, SEARCH_CONFIG_NAME),
        {
            "config": _jsonable_config(config),
            "data_fingerprint": record["fingerprint"],
            "data_source": record.get("source"),
        },
    )
    dist = distribution(config.distribute)  # before any other TensorFlow work
    shape = models_kwargs(record)
    builder = model_builder or (
        lambda: models.BUILDERS[config.model](
            augment=True, synchronized_bn=dist.synchronized_bn, **shape
        )
    )
    hypermodel = RegularizationHyperModel(
        builder,
        losses=config.losses,
        weight_range=(config.weight_min, config.weight_max),
        learning_rate=config.learning_rate,
        precision=config.precision,
        batch_size=config.batch_size,
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
    return report(tuner, config, record)


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
        return {"trials": [], "best": None, "failed": []}
    rows = trial_table(tuner)
    objective = tuner.oracle.objective.name
    out = config.output_dir
    write_json(os.path.join(out, "trials.json"), rows)
    done = [r for r in rows if r["status"] == "COMPLETED" and r[objective] is not None]
    best = None
    note = data_note(config, data)
    if done:
        best_hp = tuner.get_best_hyperparameters(1)[0].values
        best = {**best_hp, objective: float(tuner.oracle.get_best_trials(1)[0].score)}
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
    if best:
        cmd = f"python -m keras_minent train --loss {best['loss']} --model {config.model}"
        if config.dataset != "emnist_letters":
            cmd += f" --dataset {config.dataset}"
        if best.get("reg_weight") is not None and best["loss"] != "ce":
            cmd += f" --reg-weight {best['reg_weight']:.4g}"
        cmd += f" --batch-size {config.batch_size} --learning-rate {config.learning_rate}"
        print(f"\nbest: {best}\ntrain the final model with:\n  {cmd}")
    failed = [r for r in rows if r["status"] in ("FAILED", "INVALID")]
    if failed:
        raise SearchFailedError(
            f"{len(failed)} trial(s) failed ({[r['trial'] for r in failed]}); see keras-tuner's "
            "messages above. On the TensorFlow backend keras-tuner needs `tensorboard` "
            "(pip install 'keras-minent[tuning]')."
        )
    return {"trials": rows, "best": best, "failed": failed}
