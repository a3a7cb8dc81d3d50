"""The callbacks of a run: the run state (commit points) and the random states it keeps.

The paper's learning-rate rule is in `keras_minent.training.lr_rule` (importable from here too).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import zipfile

import keras
import numpy as np

from keras_minent.datasets.data_record import DataRecord
from keras_minent.training.files import (
    NonFiniteLossError,
    ResumeError,
    publish,
    read_json_file,
    remove,
    remove_temp_files,
    save_model,
    write_json,
)
from keras_minent.training.lr_rule import PaperLearningRateRule as PaperLearningRateRule
from keras_minent.training.state_schema import (
    STAMPED,
    STATE_KEYS,
    check_best,
    check_plain_file,
    check_run_state,
    load_committed_model,
    stamped_name,
)


def _seed_variables(model: keras.Model) -> list:
    """The random-state variables of dropout and augmentation layers.

    `model.save` does not store them, so `RunState` does: without them a
    resumed run would draw other dropout masks and augmentations.
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def get_seed_states(model: keras.Model) -> list[list[int]]:
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_variables(model)]


def set_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    variables = _seed_variables(model)
    shapes = [tuple(v.shape) for v in variables]
    if [np.shape(s) for s in states] != shapes:
        raise ValueError(
            f"{len(states)} random states of shapes {sorted({np.shape(s) for s in states})} do "
            f"not match the model's {len(variables)} of shapes {sorted(set(shapes))}."
        )
    for v, value in zip(variables, states):
        v.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(v.dtype)))


STATE_NAME = "state.json"
CHECKPOINT_NAME = "checkpoint.keras"
BEST_NAME = "best.keras"
#: Files that exist only once a run committed an epoch: without `state.json` they
#: mean a run's state was lost, and the run refuses to start over them.
COMMITTED_NAMES = (CHECKPOINT_NAME, BEST_NAME, "results.json", "best_calibrated.keras")
_START_OVER = "Use another --output-dir, or delete this one to start over."
_RESTORE = "Restore it, or use another --output-dir, or delete this one to start over."


def read_state(output_dir: str) -> dict | None:
    """The run state in `output_dir` (None for a fresh directory), checked for its fields.

    Raises:
        ResumeError: If `state.json` is corrupt, incomplete or holds a value a
            run does not write (`state_schema.check_run_state`), or if it is
            missing while files of a committed epoch are there.
    """
    path = os.path.join(output_dir, STATE_NAME)
    if not os.path.lexists(path):
        there = [n for n in COMMITTED_NAMES if os.path.lexists(os.path.join(output_dir, n))]
        if there:
            raise ResumeError(
                f"{path} is missing but {output_dir} holds {', '.join(there)} of an earlier "
                f"run: the run cannot continue without its state and will not overwrite them. "
                f"{_START_OVER}"
            )
        return None
    state = read_json_file(path, "the run's state", _START_OVER)
    return check_run_state(state, path, STATE_KEYS)


def _finite(logs: dict) -> str | None:
    for key in ("loss", "val_loss"):
        if key in logs and not math.isfinite(float(logs[key])):
            return key
    return None


class RunState(keras.callbacks.Callback):
    """Commits a run after every epoch and restores it when `fit` begins again.

    After every epoch it writes, in this order: `checkpoint-<N>.keras`
    (weights and optimizer), `best-<N>.keras` (when the monitored metric
    improved), then `state.json`, the **commit point**: it names those files
    and holds the finished epochs' history, the best epoch, the optimizer's
    iteration count, the random states of the model's layers, the
    learning-rate rule's state, the run's configuration and its data
    fingerprint. Only then are `checkpoint.keras` and `best.keras` made
    copies (hard links) of the files it names, and the previous epoch's
    files removed. A kill at any instant leaves the last committed epoch
    complete; files of an uncommitted epoch are removed on restart.

    Like `keras.callbacks.BackupAndRestore` it restores the state in
    `on_train_begin` into the new (built and compiled) model, after checking
    that the checkpoint is readable and holds the committed number of
    optimizer steps. `initial_epoch` is the number of finished epochs, for
    the data pipeline and `fit`. An epoch whose training or validation loss
    is not finite raises `NonFiniteLossError` before anything is written.

    Args:
        output_dir: The run's directory.
        monitor: The metric that selects `best.keras` (higher is better).
        lr_rule: The learning-rate rule whose state is kept, or None.
        writes: False on non-chief workers: they read the chief's state.
        collective_saves: Multi-process JAX: saving is a collective, so the
            processes that do not write save too, into a scratch directory.
        config: The run's result-defining configuration, stored in the state.
        data: The data's `data` entry (`DataRecord.to_json()`: `fingerprint`,
            ...); a state recorded on another fingerprint is refused.

    Raises:
        ResumeError: If the directory's files do not agree (see `read_state`).
    """

    def __init__(
        self,
        output_dir: str,
        monitor: str,
        lr_rule: PaperLearningRateRule | None,
        writes: bool = True,
        collective_saves: bool = False,
        config: dict | None = None,
        data: dict | None = None,
    ):
        super().__init__()
        self.dir = output_dir
        self.writes = writes
        self.collective_saves = collective_saves
        self.monitor = monitor
        self.lr_rule = lr_rule
        self.config = config
        self.data = data
        self.history: dict[str, list[float]] = {}
        self.best_epoch = -1
        self.best_value = -math.inf
        self.epoch_times: list[float] = []
        self.initial_epoch = 0
        self._state: dict = {}
        self._seed_states: list | None = None
        self._t0 = 0.0
        state = read_state(output_dir)
        if state is not None:
            self._restore_state(state)
        if writes:
            os.makedirs(output_dir, exist_ok=True)
            self._tidy()

    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, STATE_NAME)

    @property
    def checkpoint_path(self) -> str:
        """The committed checkpoint (the stamped file `state.json` names)."""
        name = self._state.get("checkpoint") or CHECKPOINT_NAME
        return os.path.join(self.dir, name)

    @property
    def best_path(self) -> str:
        """The committed best model (the stamped file `state.json` names)."""
        return os.path.join(self.dir, self._state.get("best") or BEST_NAME)

    def load_best(self) -> keras.Model:
        """The committed best model (see `state_schema.load_committed_model`)."""
        return load_committed_model(self.best_path, _RESTORE)

    def _restore_state(self, state: dict) -> None:
        now = DataRecord.from_json(self.data)
        then = DataRecord.from_json(state.get("data"))
        if now.fingerprint and then.fingerprint and now.fingerprint != then.fingerprint:
            raise ResumeError(
                f"{self.state_path} was trained on other data (fingerprint "
                f"{then.fingerprint[:12]}..., {then.source} from {then.location}); the data "
                f"now is {now.fingerprint[:12]}... ({now.source} from "
                f"{now.location}). Resume with the run's data, or use another "
                "--output-dir."
            )
        self._state = state
        if state["best_epoch"] >= 0 and self.monitor not in state["history"]:
            raise ResumeError(
                f"{self.state_path}: history lacks {self.monitor!r}, by which its best epoch "
                f"was selected: a run writes it every epoch. {_START_OVER}"
            )
        self.history = state["history"]
        self.best_epoch, self.best_value = state["best_epoch"], state["best_value"]
        self.epoch_times = state["epoch_times"]
        self._seed_states = state["seed_states"]
        if self.lr_rule is not None and state.get("lr_rule"):
            self.lr_rule.set_state(state["lr_rule"])
        self.initial_epoch = int(state["epochs_done"])

    def _tidy(self) -> None:
        """Removes an uncommitted epoch's files; republishes the committed ones."""
        keep = {self._state.get("checkpoint"), self._state.get("best")}
        remove_temp_files(self.dir)  # a killed write
        for name in os.listdir(self.dir):
            if STAMPED.match(name) and name not in keep:
                remove(os.path.join(self.dir, name))
        if not self.initial_epoch:
            return
        for name in keep - {None}:
            check_plain_file(os.path.join(self.dir, name), self.state_path)
        if self._state.get("best") is not None:
            if not os.path.isfile(self.best_path):
                self._missing(self.best_path)
            check_best(self, BEST_NAME)
        for name, stable in (
            (self._state.get("checkpoint"), CHECKPOINT_NAME),
            (self._state.get("best"), BEST_NAME),
        ):
            if name is None:
                continue  # a state written before stamped files: the stable names are it
            source = os.path.join(self.dir, name)
            if not os.path.isfile(source):
                self._missing(source)
            target = os.path.join(self.dir, stable)
            if not (os.path.isfile(target) and os.path.samefile(source, target)):
                publish(source, target)

    def _missing(self, path: str) -> None:
        raise ResumeError(
            f"{path} is missing, but {self.state_path} says epoch {self.initial_epoch} is done "
            f"with it: the run cannot continue without it. {_RESTORE}"
        )

    def on_train_begin(self, logs=None):
        if not self.initial_epoch:
            return
        path = self.checkpoint_path
        check_plain_file(path, self.state_path)
        if not os.path.isfile(path):
            self._missing(path)
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        corrupt = f"{path} is corrupt or truncated (not a Keras archive of this model)"
        if not zipfile.is_zipfile(path):
            raise ResumeError(f"{corrupt}. {_RESTORE}")
        try:
            self.model.load_weights(path)  # weights and optimizer state
        except Exception as e:
            text = " ".join(str(e).split())  # one line
            text = text if len(text) <= 300 else text[:297] + "..."
            raise ResumeError(f"{corrupt}: {text}. {_RESTORE}") from e
        expected = self._state.get("optimizer_iterations")
        if expected is not None and optimizer is not None:
            got = int(keras.ops.convert_to_numpy(optimizer.iterations))
            if got != int(expected):
                raise ResumeError(
                    f"{path} holds {got} optimizer steps but {self.state_path} says epoch "
                    f"{self.initial_epoch} ended after {expected}: the files are of different "
                    f"epochs. {_START_OVER}"
                )
        try:
            set_seed_states(self.model, self._seed_states)
        except ValueError as e:
            raise ResumeError(f"{self.state_path}: seed_states: {e} {_START_OVER}") from e
        self.model._initial_epoch = self.initial_epoch  # as BackupAndRestore does

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        bad = _finite(logs)
        if bad is not None:
            self.model.stop_training = True
            last = f"epoch {epoch} stays committed" if epoch else "no epoch was committed"
            raise NonFiniteLossError(
                f"The {'training' if bad == 'loss' else 'validation'} loss of epoch {epoch + 1} "
                f"is {logs[bad]} (not finite); {last}. Try a lower --learning-rate, check the "
                "labels (class ids in 0..25) and the loss settings."
            )
        self.epoch_times.append(time.perf_counter() - self._t0)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        value = float(logs[self.monitor])
        improved = value > self.best_value
        if improved:
            self.best_value, self.best_epoch = value, epoch
        if not self.writes:
            if self.collective_saves:
                with tempfile.TemporaryDirectory() as scratch:
                    for name in ("best.keras",) * improved + ("checkpoint.keras",):
                        self.model.save(os.path.join(scratch, name))
                    get_seed_states(self.model)
            return
        self.commit(epoch + 1, improved)

    def commit(self, done: int, improved: bool) -> None:
        """Commits epoch `done`: `stage`, then `state.json` (the commit point), then `finish`."""
        old = self.stage(done, improved)
        write_json(self.state_path, self._state)  # the commit point
        self.finish(old, improved)

    def stage(self, done: int, improved: bool) -> dict:
        """Writes epoch `done`'s stamped files and makes its state (not yet committed).

        Returns:
            The previous state, for `finish`.
        """
        old = dict(self._state)
        checkpoint = stamped_name("checkpoint", done)
        best = stamped_name("best", done) if improved else old.get("best")
        if improved:
            save_model(self.model, os.path.join(self.dir, best))
        save_model(self.model, os.path.join(self.dir, checkpoint))
        optimizer = self.model.optimizer
        self._state = {
            "format": 2,
            "epochs_done": done,
            "checkpoint": checkpoint,
            "best": best,
            "optimizer_iterations": int(keras.ops.convert_to_numpy(optimizer.iterations))
            if optimizer is not None
            else None,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "epoch_times": self.epoch_times,
            "seed_states": get_seed_states(self.model),
            "lr_rule": self.lr_rule.get_state() if self.lr_rule else None,
            "config": self.config,
            "data": self.data,
        }
        return old

    @property
    def state(self) -> dict:
        """The state of the last staged or committed epoch (what `state.json` holds)."""
        return self._state

    def finish(self, old: dict, improved: bool) -> None:
        """After the commit point: publishes the stable names, removes `old`'s files."""
        checkpoint, best = self._state["checkpoint"], self._state["best"]
        publish(os.path.join(self.dir, checkpoint), os.path.join(self.dir, CHECKPOINT_NAME))
        if improved:
            publish(os.path.join(self.dir, best), os.path.join(self.dir, BEST_NAME))
        for name in {old.get("checkpoint"), old.get("best")} - {checkpoint, best, None}:
            remove(os.path.join(self.dir, name))
