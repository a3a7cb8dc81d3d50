"""The joint commit point of runs trained together (`keras_minent.training.joint_run`).

`MemberState` stages a member's epoch; `JointCommit` writes `joint_state.json`
(every member's state, the joint commit point) after every member staged its
epoch, then each member's own `state.json`. `read_joint_state` reads the joint
commit point back, checked, and `reconcile` brings every member's `state.json`
to it after a kill between the two writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence

import keras
import numpy as np

from keras_minent.training.callbacks import STATE_NAME, RunState
from keras_minent.training.config import ConfigError, TrainConfig
from keras_minent.training.files import ResumeError, read_json_file, write_json
from keras_minent.training.joint import member_logs
from keras_minent.training.lr_rule import PaperLearningRateRule
from keras_minent.training.state_schema import check_joint_state, check_plain_file

logger = logging.getLogger(__name__)

JOINT_STATE_NAME = "joint_state.json"


class MemberState(RunState):
    """A member's `RunState`, whose epochs the joint run commits together.

    `on_epoch_end` only stages the member's epoch (its stamped files written,
    its state made, kept in `pending`); `JointCommit` writes the joint commit
    point, then `complete()` writes the member's `state.json` and publishes
    its files, as a separate run's `RunState.commit` does in one go.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending: tuple[dict, bool] | None = None

    def commit(self, done: int, improved: bool) -> None:
        self.pending = (self.stage(done, improved), improved)

    def complete(self) -> None:
        """After the joint commit point: the member's own commit point and files."""
        old, improved = self.pending
        write_json(self.state_path, self.state)
        self.finish(old, improved)
        self.pending = None


@dataclasses.dataclass
class Member:
    """One member of a joint run: its configuration, network, rule and run state."""

    name: str  # its directory, relative to the joint run's
    config: TrainConfig
    state: MemberState
    rule: PaperLearningRateRule | None
    model: keras.Model | None = None
    output: str = ""  # its output's name in the joint model (`m<k>`)
    prefix: str = ""  # of its entries in the joint logs (`m<k>_`; none for a lone member)
    failure: str | None = None


class JointCommit(keras.callbacks.Callback):
    """The joint commit point: after every member staged its epoch."""

    def __init__(self, output_dir: str, members: list[Member], verbose: bool):
        super().__init__()
        self.path = os.path.join(output_dir, JOINT_STATE_NAME)
        self.members, self.verbose = members, verbose  # all members, trained or not
        self.active = [m for m in members if m.model is not None]
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        staged = [m for m in self.members if m.failure is None and m.state.pending]
        seconds = time.perf_counter() - self._t0
        for m in staged:  # every member took the joint epoch (its time is not its own)
            m.state.epoch_times[-1] = seconds
        write_joint_state(self.path, epoch + 1, self.members)  # the commit point
        for m in staged:
            m.state.complete()
        if all(m.failure is not None for m in self.active):
            self.model.stop_training = True
        if self.verbose:
            self._print(epoch, logs or {})

    def _print(self, epoch: int, logs: dict) -> None:
        accs = [
            member_logs(logs, m.prefix).get("val_accuracy")
            for m in self.active
            if m.failure is None
        ]
        accs = [a for a in accs if a is not None]
        failed = sum(m.failure is not None for m in self.active)
        text = f"epoch {epoch + 1}/{self.params.get('epochs')}: {len(accs)} members"
        if accs:
            text += (
                f", val_accuracy mean {np.mean(accs):.4f} (min {min(accs):.4f}, "
                f"max {max(accs):.4f})"
            )
        if failed:
            text += f", {failed} stopped (non-finite loss)"
        print(f"{text}, {time.perf_counter() - self._t0:.1f} s", flush=True)


def write_joint_state(path: str, epochs_done: int, members: list[Member]) -> None:
    """Writes the joint commit point: every member's staged (or last) state."""
    write_json(
        path,
        {
            "format": 1,
            "epochs_done": epochs_done,
            "members": {m.name: m.state.state for m in members if m.failure is None},
            "failed": {m.name: m.failure for m in members if m.failure is not None},
        },
    )


def read_joint_state(output_dir: str) -> dict | None:
    """The joint commit point in `output_dir` (None if there is none), checked: member
    names are plain directories below it, member states as `read_state` checks them.

    Raises:
        ResumeError: Naming the file (and member) whose value a run does not write.
    """
    path = os.path.join(output_dir, JOINT_STATE_NAME)
    if not os.path.lexists(path):
        return None
    fix = "Use another --output-dir, or delete it to start over."
    check_plain_file(path, path)
    state = read_json_file(path, "the joint run's state", fix)
    if not isinstance(state, dict) or not {"members", "failed", "epochs_done"} <= set(state):
        raise ResumeError(f"{path} is not a joint run's state. {fix}")
    return check_joint_state(state, path)


def reconcile(output_dir: str, names: Sequence[str]) -> dict[str, str]:
    """Makes every member's `state.json` the joint commit point's; returns the failed members.

    A kill between the joint commit and a member's own `state.json` leaves
    that member exactly one epoch behind (or without a state after the first
    epoch): its state is rewritten from the joint one. A member that is
    anywhere else was continued by a separate run (`--seed-parallel off`): the
    joint state is then out of date and is not used (nothing is rolled back;
    the members must then agree on their epochs among themselves).

    Raises:
        ConfigError: If the directory holds a joint run of other members.
    """
    joint = read_joint_state(output_dir)
    if joint is None:
        return {}
    held = set(joint["members"]) | set(joint["failed"])
    if held != set(names):
        raise ConfigError(
            f"{output_dir} holds a joint run of {sorted(held)}; this run has {sorted(names)}. "
            "Use the same seeds and losses, another --output-dir, or --seed-parallel off."
        )
    behind = []
    for name, state in joint["members"].items():
        if not state:
            continue  # nothing committed yet
        path = os.path.join(output_dir, name, STATE_NAME)
        try:
            with open(path) as f:
                own = json.load(f)
        except FileNotFoundError:
            own = {"epochs_done": 0}
        except (OSError, ValueError):
            own = None  # a torn state.json: read_state names it
        if own == state:
            continue
        if not isinstance(own, dict) or own.get("epochs_done") != state["epochs_done"] - 1:
            logger.warning(
                "%s: %s was continued after the joint run's epoch %s; %s is out of date "
                "and not used.",
                output_dir,
                name,
                state["epochs_done"],
                JOINT_STATE_NAME,
            )
            return {}
        behind.append((path, state))
    for path, state in behind:  # the kill's window: the committed epoch is the joint one
        write_json(path, state)
    return dict(joint["failed"])
