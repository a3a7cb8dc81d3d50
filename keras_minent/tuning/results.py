"""The readable results of a search: `report` (`trials.json`, `best_hyperparameters.json`,
`objective.png`, the console table and the suggested `train` command), `trial_table`,
`plot_objective` and `best_config`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import TYPE_CHECKING, Any

import keras_tuner

from keras_minent.errors import SearchFailedError
from keras_minent.training.config import TrainConfig, command_line_options
from keras_minent.training.files import write_json
from keras_minent.tuning.hypermodel import RegularizationHyperModel, trial_seed

if TYPE_CHECKING:
    from keras_minent.tuning.search import TuneConfig


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
