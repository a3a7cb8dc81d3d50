"""The main job: `train` one run (`seeds` trains several, `joint_run` several together),
on EMNIST-Letters or on any image-classification dataset (`TrainConfig.dataset`)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import keras

from keras_minent._process_state import kept_process_state
from keras_minent.datasets.data_record import DataRecord
from keras_minent.datasets.selection import load_data_with_record
from keras_minent.training import reporting
from keras_minent.training.callbacks import RunState, read_state
from keras_minent.training.config import ConfigError, TrainConfig
from keras_minent.training.devices import accelerator, distribution, resolve_precision
from keras_minent.training.files import OutputError, output_errors, read_json_file, write_json
from keras_minent.training.recipe import MONITOR, build_recipe, fit

#: Paths a run writes: a link planted at one of these names is refused
#: (`logs/`: TensorBoard's event files).
OUTPUT_NAMES = (
    "config.json",
    "state.json",
    "checkpoint.keras",
    "best.keras",
    "best_calibrated.keras",
    "inference.keras",
    "results.json",
    "curves.png",
    "reliability.png",
    "entropy_histogram.png",
    "seeds.json",
    "reproduce.json",
    "seeds.png",
    "reproduce.png",
    "logs",
    "logs/train",
    "logs/validation",
)

#: Options that may change when a run is continued (they do not change its results:
#: the data's directories may move, the data's fingerprint is checked instead;
#: `epochs` may grow, never below the finished epochs).
RESUMABLE_CHANGES = frozenset(
    {
        "verbose",
        "output_dir",
        "epochs",
        "dataset",
        "data_dir",
        "idx_dir",
        "download",
        "steps_per_execution",
        "jit_compile",
        "seed_parallel",
    }
)

#: Fields added to `TrainConfig` after runs were written: a stored configuration
#: without one was made with this value.
ADDED_FIELDS = {"head": "letters"}


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains one run (resuming it if its output directory holds one).

    The run seeds what it owns (`keras.utils.set_random_seed(config.seed)`);
    on return the caller's process is as found: Python's, NumPy's, Keras's
    (and on torch PyTorch's) global generators, the dtype policy and the root
    logger's handlers are restored; TensorFlow's global seed gets its previous
    value back (`keras_minent._process_state.kept_process_state`).

    Args:
        config: The run's configuration.

    Returns:
        The results (also written to `results.json`); on a non-chief worker
        of a multi-worker job `{"history": ..., "chief": False}`.

    Raises:
        ConfigError: If an existing output directory holds a different
            configuration, or the distribution is misconfigured.
        ResumeError: If the output directory's files do not agree with each
            other or with this run (its data, its configuration).
        NonFiniteLossError: If an epoch's loss is not finite (the last good
            epoch stays committed).
        OutputError: If the outputs cannot be written (permission, space, ...).
        DataError: If the data cannot be found or is corrupt (`EmnistDataError`
            for EMNIST-Letters).
    """
    with kept_process_state(), output_errors(config.output_dir):
        return _train(config)


def _train(config: TrainConfig) -> dict[str, Any]:
    claim_output_dir(config)
    dist = distribution(config.distribute)  # before any other TensorFlow work
    device = accelerator()
    precision = resolve_precision(config.precision, device, config.batch_size)
    keras.config.set_dtype_policy(precision)
    data, record = _load_data_chief_first(config, dist)
    data = head_labels(config, data)
    provenance = record.to_json()
    with dist.scope():
        recipe = build_recipe(config, device, provenance, synchronized_bn=dist.synchronized_bn)
    state = RunState(
        config.output_dir,
        MONITOR,
        recipe.lr_rule,
        dist.is_chief,
        dist.collective_saves,
        config=dataclasses.asdict(config),
        data=provenance,
    )
    _check_same_start(dist, state.initial_epoch, config.output_dir)
    if state.initial_epoch:
        print(f"Resuming {config.output_dir} after epoch {state.initial_epoch}.")
    callbacks = [*recipe.callbacks, state]
    if dist.is_chief:
        callbacks += _tensorboard(config.output_dir)
    if reporting.note(config, provenance):
        print(f"*** {reporting.note(config, provenance)} ***")
    t0 = time.perf_counter()
    if state.initial_epoch < config.epochs:
        with dist.peer_errors():
            shard = (dist.process_index, dist.num_processes) if dist.shards_data else None
            fit(recipe.model, config, data, callbacks, state.initial_epoch, shard)
    wall = time.perf_counter() - t0
    if not dist.is_chief:
        print("Worker finished; the chief writes the results.")
        return {"history": state.history, "chief": False}
    dist.local_only()  # the chief evaluates alone
    return reporting.report_run(
        reporting.FinishedRun(config, state, data, wall, precision, device, provenance)
    )


def claim_output_dir(config: TrainConfig) -> None:
    """Writes `config.json`, refusing a directory that holds another run.

    The configuration is compared with `config.json` and with the copy in
    `state.json` (so a deleted `config.json` changes nothing); `epochs` may
    not be lower than the epochs already finished. A directory in which no
    epoch was committed (no `state.json`: a run that stopped before training,
    e.g. for lack of data) holds nothing to protect: its `config.json` is
    replaced, with one line saying so.
    """
    out = config.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"--output-dir {out} is a file, not a directory.")
    os.makedirs(out, exist_ok=True)
    links = [n for n in OUTPUT_NAMES if os.path.islink(os.path.join(out, n))]
    if links:
        raise OutputError(
            f"{out} holds links at {', '.join(links)}: a run writes only files it made "
            "and never follows a link. Remove them, or use another --output-dir."
        )
    path = os.path.join(out, "config.json")
    config_dict = dataclasses.asdict(config)
    fix = "Use another --output-dir, or delete it to start over."
    state = read_state(out)
    stored = []
    if os.path.isfile(path):
        stored.append((path, read_json_file(path, "the run's configuration", fix)))
    if state is not None and state.get("config") is not None:
        stored.append((os.path.join(out, "state.json"), state["config"]))
    for where, old in stored:
        if not isinstance(old, dict):
            if state is None:  # no epoch committed: nothing to protect
                print(f"{out}: replacing {where}, which holds no configuration (no epoch ran).")
                continue
            raise ConfigError(f"{where} holds no configuration. {fix}")
        old = {**ADDED_FIELDS, **old}
        diff = {
            k for k in config_dict if k not in RESUMABLE_CHANGES and old.get(k) != config_dict[k]
        }
        if diff:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {config_dict[k]!r}" for k in sorted(diff))
            if state is None:  # a run that stopped before its first epoch: nothing to protect
                print(
                    f"{out}: replacing the configuration of a run that never finished an epoch "
                    f"({changes})."
                )
                continue
            raise ConfigError(
                f"{out} holds a run with a different configuration ({where}: {changes}). {fix}"
            )
    done = state["epochs_done"] if state is not None else 0
    if config.epochs < done:
        raise ConfigError(
            f"{out} holds a run with {done} finished epochs; --epochs {config.epochs} is fewer. "
            f"Pass --epochs {done} (or more) to report or continue it."
        )
    write_json(path, config_dict)


def refuse_linked_dirs(root: str, directories: list[str]) -> None:
    """Refuses the directories of a run's members (`seed_<k>/`, a reproduction's arms)
    where they, or a folder between them and `root`, are links: a run writes only
    inside the directories it made.

    Raises:
        OutputError: Naming the link.
    """
    for directory in directories:
        parts = os.path.relpath(directory, root).split(os.sep)
        if parts[0] in (os.curdir, os.pardir):
            continue  # not below root: refused where members are placed
        for i in range(1, len(parts) + 1):
            path = os.path.join(root, *parts[:i])
            if os.path.islink(path):
                raise OutputError(
                    f"{path} is a link: a run writes its runs' files only in directories it "
                    "made and never follows a link. Remove it, or use another --output-dir."
                )


def _load_data_chief_first(config: TrainConfig, dist) -> tuple[dict, DataRecord]:
    """The run's arrays. Processes may share the data and output directories:
    the chief prepares (downloads, converts, generates) the data first."""
    if dist.is_chief:
        loaded = load_data_with_record(config, config.selection)
    dist.barrier()
    if not dist.is_chief:
        loaded = load_data_with_record(config, config.selection)
    return loaded


def _check_same_start(dist, initial_epoch: int, out: str) -> None:
    seen = dist.all_values(initial_epoch)
    if len(set(seen)) > 1:
        raise ConfigError(
            f"The workers would resume from different epochs {seen} (process order): "
            f"every worker must see the chief's {out} (a shared filesystem), "
            "or all must start from an empty output directory."
        )


def head_labels(config: TrainConfig, data: dict) -> dict:
    """The arrays with the labels the configured head is trained and scored on.

    `head="letters"`: as loaded (0..25). `head="paper"`: each label plus one, the
    author's setup (62 outputs, torchvision's EMNIST-Letters ids 1..26; outputs 0 and
    27..61 are never a target), so that accuracy is the argmax over all 62 outputs
    against the label plus one, and ECE, entropy and NLL are those of the 62-way softmax.
    """
    if config.head != "paper":
        return data
    return {role: (images, labels + 1) for role, (images, labels) in data.items()}


def _tensorboard(out: str) -> list:
    """Keras's TensorBoard callback, or none where TensorFlow is not installed
    (it writes through `tf.summary` on every backend; the JAX and PyTorch
    installs of this package do not need TensorFlow)."""
    try:
        import tensorflow  # noqa: F401

        return [keras.callbacks.TensorBoard(os.path.join(out, "logs"))]
    except Exception:
        return []
