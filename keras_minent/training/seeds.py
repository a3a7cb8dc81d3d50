"""Several runs: `train_seeds` (one configuration, N seeds) and `reproduce` (the paper's table).

The runs train one after another, or together as members of one joint
program (`keras_minent.training.joint`) where `seed_parallel_choice` says so;
either way every run keeps its own directory and files, and the summary's
mean, standard deviation and interval come from the runs' own results.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from keras_minent.datasets import sources
from keras_minent.training import joint_run, reporting, seed_plots
from keras_minent.training.config import (
    OPTIMISTIC_NOTE,
    PAPER_RESULTS,
    ConfigError,
    TrainConfig,
)
from keras_minent.training.devices import accelerator
from keras_minent.training.files import NonFiniteLossError
from keras_minent.training.run import refuse_linked_dirs, train


def _check_num_seeds(num_seeds) -> None:
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ConfigError(f"num_seeds must be an integer >= 1, got {num_seeds!r}.")


def seed_configs(config: TrainConfig, num_seeds: int) -> list[TrainConfig]:
    """The runs of seeds `config.seed .. config.seed + num_seeds - 1`, each in `seed_<k>/`."""
    return [
        dataclasses.replace(
            config, seed=seed, output_dir=os.path.join(config.output_dir, f"seed_{seed}")
        )
        for seed in range(config.seed, config.seed + num_seeds)
    ]


def _raise_failures(failures: dict[str, str], output_dir: str) -> None:
    if failures:
        raise NonFiniteLossError(
            f"{len(failures)} run(s) of {output_dir} stopped: "
            + "; ".join(failures.values())
            + " The other runs finished and are reported."
        )


def paper_accuracy(config: TrainConfig) -> float | None:
    """The paper's reported accuracy (%) for `config`'s model and loss, where it applies:
    EMNIST-Letters, and for MIN-ENT / MIX-ENT the paper's loss settings."""
    if config.dataset != sources.EMNIST_LETTERS:
        return None
    if config.loss != "ce" and not config.paper_loss_settings:
        return None
    return PAPER_RESULTS.get(f"{config.model}/{config.loss}")


def _plot(config: TrainConfig, name: str, arms: list[dict], what: str) -> None:
    """Writes `name` (`seed_plots.plot_seeds`) into the output directory; a failure is a
    warning (`reporting.plot_safely`)."""
    title = what if config.dataset == sources.EMNIST_LETTERS else f"{what} on {config.dataset}"
    if config.selection == "test":
        title += f"\n{OPTIMISTIC_NOTE}"
    if reporting.note(config):
        title += f"\n{reporting.note(config)}"
    path = os.path.join(config.output_dir, name)
    reporting.plot_safely(name, seed_plots.plot_seeds, arms, path, title=title)


def _report_arm(
    config: TrainConfig, runs: list[dict], failed: dict[str, str] | None = None
) -> dict[str, Any]:
    """`reporting.report_seeds`, and `seeds.png` of the runs."""
    payload = reporting.report_seeds(config, runs, failed)
    name = f"{config.model} + {config.loss}"
    arms = [seed_plots.arm(name, runs, paper_accuracy(config))]
    _plot(config, "seeds.png", arms, f"{name}: {len(runs)} seed(s), test split")
    return payload


def train_seeds(config: TrainConfig, num_seeds: int) -> dict[str, Any]:
    """Runs seeds `config.seed .. config.seed + num_seeds - 1`, each in `seed_<k>/`.

    The seeds train together in one program where `config.seed_parallel`
    says so (`joint_run.seed_parallel_choice`), else one after another.

    Returns:
        Per-seed results and the summary of their test accuracies (also in
        `seeds.json` in the output directory).

    Raises:
        ConfigError: If `num_seeds` < 1, or `seed_parallel` is on where it
            cannot apply.
        NonFiniteLossError: If a seed's loss became non-finite (a joint run
            first finishes and reports the other seeds).
    """
    _check_num_seeds(num_seeds)
    configs = seed_configs(config, num_seeds)
    refuse_linked_dirs(config.output_dir, [c.output_dir for c in configs])
    choice = joint_run.seed_parallel_choice(config, num_seeds, accelerator())
    if choice["joint"]:
        runs, failures = joint_run.train_together(configs, config.output_dir, choice)
        payload = _report_arm(config, runs, failures) if runs else None
        _raise_failures(failures, config.output_dir)
        return payload
    runs = [train(c) for c in configs]
    if not all(r.get("chief", True) for r in runs):
        return {"summary": None, "runs": runs, "chief": False}  # the chief summarizes
    return _report_arm(config, runs)


def reproduce(config: TrainConfig, num_seeds: int = 1) -> list[dict]:
    """Trains the paper's four configurations and prints ours next to the paper's.

    VGG-5 + CE, Spinal-VGG-5 + CE, VGG-5 + MIN-ENT and VGG-5 + MIX-ENT (the
    last two with the paper's published loss settings), each in its own
    subdirectory of `config.output_dir`. With `seed_parallel` all of their
    runs train together, as members of one program. The paper's numbers are
    shown for EMNIST-Letters only; on other data the table compares the losses.
    """
    _check_num_seeds(num_seeds)
    emnist = config.dataset == sources.EMNIST_LETTERS
    subs = {}
    for key in PAPER_RESULTS:
        model, loss = key.split("/")
        subs[key] = dataclasses.replace(
            config,
            model=model,
            loss=loss,
            paper_loss_settings=loss != "ce",
            output_dir=os.path.join(config.output_dir, key.replace("/", "_")),
        )
    refuse_linked_dirs(config.output_dir, [s.output_dir for s in subs.values()])
    choice = joint_run.seed_parallel_choice(config, len(subs) * num_seeds, accelerator())
    rows, arms = [], []

    def paper(key: str) -> float | None:
        return PAPER_RESULTS[key] if emnist else None

    if choice["joint"]:
        configs = {key: seed_configs(sub, num_seeds) for key, sub in subs.items()}
        everything = [c for cs in configs.values() for c in cs]
        runs, failures = joint_run.train_together(everything, config.output_dir, choice)
        by_dir = {r["config"]["output_dir"]: r for r in runs}
        for key, sub in subs.items():
            mine = [by_dir[c.output_dir] for c in configs[key] if c.output_dir in by_dir]
            arm = key.replace("/", "_") + "/"
            stopped = {n: why for n, why in failures.items() if n.startswith(arm)}
            if not mine:
                print(f"{key}: every run stopped (non-finite loss); not in the table.")
            else:
                result = _report_arm(sub, mine, stopped)
                rows.append({"config": key, "paper": paper(key), **result["summary"]})
                arms.append(seed_plots.arm(key, result["runs"], paper(key)))
        if rows:
            reporting.report_reproduction(config, rows)
            _plot(config, "reproduce.png", arms, "the paper's table: test accuracy per seed")
        _raise_failures(failures, config.output_dir)
        return rows
    for key, sub in subs.items():
        result = train_seeds(sub, num_seeds)
        if not result.get("chief", True):
            continue
        rows.append({"config": key, "paper": paper(key), **result["summary"]})
        arms.append(seed_plots.arm(key, result["runs"], paper(key)))
    if rows:  # else a worker of a multi-worker job: the chief writes the table
        reporting.report_reproduction(config, rows)
        _plot(config, "reproduce.png", arms, "the paper's table: test accuracy per seed")
    return rows
