"""Runs trained together: `train_together` (its joint commit point: `joint_state`).

Each member keeps the files of a separate run in its own directory
(`checkpoint.keras` with its own optimizer state, `best.keras`, `state.json`,
`results.json`, plots), so a member directory can be reported, resumed or
continued by a separate run (`--seed-parallel off`) as well. The members'
epochs are committed together: after every epoch each member writes its
stamped files, then `joint_state.json` (the joint commit point, holding every
member's state) is written, then each member's `state.json`. A kill at any
instant resumes every member from the same last committed epoch.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

import keras

from keras_minent import datasets
from keras_minent._keras_private import private_api_refusal
from keras_minent._process_state import kept_process_state
from keras_minent.datasets.selection import load_data_with_record
from keras_minent.training import reporting
from keras_minent.training import run as run_lib
from keras_minent.training.config import ConfigError, TrainConfig
from keras_minent.training.devices import accelerator, precision_choice, resolve_precision
from keras_minent.training.files import NonFiniteLossError, remove_temp_files
from keras_minent.training.joint import (
    JointBatches,
    JointEvaluation,
    build_members,
    compile_joint,
    member_logs,
)
from keras_minent.training.joint_state import (
    JOINT_STATE_NAME,
    JointCommit,
    Member,
    MemberState,
    reconcile,
)
from keras_minent.training.joint_state import (  # re-exported: the joint commit point's
    read_joint_state as read_joint_state,
)
from keras_minent.training.joint_state import (
    write_joint_state as write_joint_state,
)
from keras_minent.training.recipe import MONITOR, learning_rate_rule

#: Options every member of a joint run must share (one data pipeline, one program).
SHARED_OPTIONS = (
    "dataset",
    "max_train_examples",
    "max_eval_examples",
    "data_dir",
    "idx_dir",
    "download",
    "synthetic",
    "synthetic_size",
    "selection",
    "head",
    "epochs",
    "batch_size",
    "precision",
    "jit_compile",
    "steps_per_execution",
    "distribute",
)


class MemberCallbacks(keras.callbacks.Callback):
    """Drives one member's learning-rate rule and run state from the joint logs."""

    def __init__(self, member: Member, k: int):
        super().__init__()
        self.member, self.k = member, k
        for cb in (member.rule, member.state):
            if cb is not None:
                cb.set_model(member.model)

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.member.state.on_train_begin(logs)  # a resumed member loads its checkpoint
        optimizer.copy_member_state(self.member.model, self.k, to_member=False)

    def on_epoch_begin(self, epoch, logs=None):
        if self.member.failure is None:
            self.member.state.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch, logs=None):
        member = self.member
        if member.failure is not None:
            return
        own = member_logs(logs or {}, member.prefix)
        try:
            if member.rule is not None:
                member.rule.on_epoch_end(epoch, own)
            self.model.optimizer.copy_member_state(member.model, self.k, to_member=True)
            member.state.on_epoch_end(epoch, own)  # stages; JointCommit commits
        except NonFiniteLossError as e:
            member.failure = f"{member.name}: {e}"


def seed_parallel_choice(config: TrainConfig, num_members: int, device: dict) -> dict[str, Any]:
    """Whether members train together, and why (`results.json`'s `seed_parallel`).

    `auto` follows a measurement, never an argument: it trains members together
    only on a device kind for which `MEASURED_JOINT_GAIN` holds a measured gain
    above 1 (benchmarks/RESULTS.md section 6), and one after another everywhere
    else. On a CPU the joint step measured 0.71-1.11x; on a GPU it is not
    measured yet, so `auto` trains one after another there too until it is. On a
    Keras whose private optimizer APIs differ from those the joint step was
    checked against (`_keras_private.PRIVATE_APIS`), members never train together.

    Raises:
        ConfigError: If `seed_parallel` is on where it cannot apply.
    """
    requested = config.seed_parallel
    refusal = None
    if num_members < 2:
        refusal = "there is one run to train (it needs --seeds 2 or more, or reproduce)"
    elif config.distribute != "none":
        refusal = f"--distribute {config.distribute} spreads one run over several devices"
    elif precision_choice(config.precision, device, config.batch_size)["policy"] == (
        "mixed_float16"
    ):
        refusal = "mixed_float16's loss scale would be shared by the members"
    else:
        refusal = private_api_refusal()
    if requested is True and refusal is not None:
        raise ConfigError(
            f"--seed-parallel on cannot apply: {refusal}. Use --seed-parallel off"
            + (" or --precision float32 / mixed_bfloat16." if "float16" in refusal else ".")
        )
    if refusal is not None:
        return {"requested": requested, "joint": False, "reason": refusal}
    if requested == "auto":
        measured = MEASURED_JOINT_GAIN.get(device["kind"])
        if measured is None:
            reason = (
                f"auto on a {device['kind'].upper()}: one after another (the joint step's "
                "gain is not measured on this kind of device, RESULTS.md section 6; "
                "--seed-parallel on trains together)"
            )
            return {"requested": requested, "joint": False, "reason": reason}
        gain, where = measured
        on = gain > 1.0
        reason = (
            f"auto on a {device['kind'].upper()}: {'together' if on else 'one after another'} "
            f"(measured {gain:.2f}x aggregate images/s, {where})"
        )
        return {"requested": requested, "joint": on, "reason": reason}
    return {"requested": requested, "joint": bool(requested), "reason": "requested"}


# What `--seed-parallel auto` follows: per device kind, the measured aggregate
# training throughput of members together against one alone, and where it is
# recorded. A kind without an entry trains one after another. The CPU rows of
# RESULTS.md section 6 (2 vCPU: 0.71-1.11x) say one after another; add "gpu" when
# its device call has run.
MEASURED_JOINT_GAIN: dict[str, tuple[float, str]] = {
    "cpu": (0.97, "2 vCPU, 2 members, TensorFlow; RESULTS.md section 6"),
}


def _check_shared(configs: Sequence[TrainConfig]) -> None:
    first = configs[0]
    for c in configs[1:]:
        diff = [o for o in SHARED_OPTIONS if getattr(c, o) != getattr(first, o)]
        if diff:
            raise ConfigError(f"Members of a joint run must share {', '.join(diff)}.")


def train_together(
    configs: Sequence[TrainConfig], output_dir: str, choice: dict | None = None
) -> tuple[list[dict], dict[str, str]]:
    """Trains the runs of `configs` together; each keeps its own output directory.

    Args:
        configs: One configuration per member; their `output_dir`s must be
            distinct subdirectories of `output_dir`.
        output_dir: Where the joint commit point `joint_state.json` lives.
        choice: The `seed_parallel_choice` recorded in the results.

    Returns:
        `(results, failures)`: the results of the members that finished, in
        the order of `configs`, and `{member: message}` of the members whose
        loss became non-finite (their last finite epoch stays committed).
    """
    with kept_process_state():
        return _train_together(list(configs), output_dir, choice)


def _train_together(configs: list[TrainConfig], output_dir: str, choice) -> tuple:
    _check_shared(configs)
    refusal = private_api_refusal()
    if refusal is not None:
        raise ConfigError(f"The runs cannot train together: {refusal}. Train them one by one.")
    first = configs[0]
    names = [os.path.relpath(c.output_dir, output_dir) for c in configs]
    if len(set(names)) != len(names) or any(n.startswith("..") for n in names):
        raise ConfigError("Members need distinct output directories inside the joint one.")
    os.makedirs(output_dir, exist_ok=True)
    run_lib.refuse_linked_dirs(output_dir, [c.output_dir for c in configs])
    for c in configs:
        run_lib.claim_output_dir(c)
    device = accelerator()
    choice = choice or seed_parallel_choice(first, len(configs), device)
    precision = resolve_precision(first.precision, device, first.batch_size)
    if precision == "mixed_float16":
        raise ConfigError("A joint run cannot share mixed_float16's loss scale between members.")
    keras.config.set_dtype_policy(precision)
    data, record = load_data_with_record(first, first.selection)
    data = run_lib.head_labels(first, data)
    provenance = record.to_json()
    failed = reconcile(output_dir, [n.replace(os.sep, "/") for n in names])
    remove_temp_files(output_dir, {JOINT_STATE_NAME})  # a killed write of the joint state
    members = []
    for name, c in zip(names, configs):
        rule = learning_rate_rule(c)
        state = MemberState(
            c.output_dir, MONITOR, rule, config=dataclasses.asdict(c), data=provenance
        )
        members.append(Member(name.replace(os.sep, "/"), c, state, rule))
    for m in members:
        m.failure = failed.get(m.name)
    active = [m for m in members if m.failure is None and m.state.initial_epoch < first.epochs]
    starts = {m.state.initial_epoch for m in active}
    if len(starts) > 1:
        at = ", ".join(f"{m.name}: {m.state.initial_epoch}" for m in active)
        raise ConfigError(
            f"The members in {output_dir} finished different numbers of epochs ({at}): they "
            "cannot continue together. Continue them with --seed-parallel off."
        )
    choice = {**choice, "members": len(configs)}
    start = starts.pop() if starts else first.epochs
    if active and start:
        print(f"Resuming {output_dir}: {len(active)} runs together after epoch {start}.")
    t0 = time.perf_counter()
    if active:
        _fit_together(members, active, data, provenance, device, start, output_dir)
    wall = time.perf_counter() - t0
    note = reporting.note(first, provenance)
    if note:
        print(f"*** {note} ***")
    results = []
    for m in members:
        if m.failure is not None:
            continue
        finished = reporting.FinishedRun(
            m.config, m.state, data, wall, precision, device, provenance, seed_parallel=choice
        )
        results.append(reporting.report_run(finished))
    return results, {m.name: m.failure for m in members if m.failure is not None}


def _fit_together(
    members: list[Member],
    active: list[Member],
    data: dict,
    data_record: dict,
    device: dict,
    initial_epoch: int,
    output_dir: str,
) -> None:
    first = active[0].config
    networks = build_members([m.config for m in active], device, data_record)
    for k, (m, network) in enumerate(zip(active, networks)):
        m.model, m.output = network, f"m{k}"
        m.prefix = f"m{k}_" if len(active) > 1 else ""
    model = compile_joint(networks, [m.config for m in active], device)
    (x_fit, y_fit), (x_val, y_val) = data["fit"], data["val"]
    batches = [
        datasets.TrainingBatches(
            x_fit, y_fit, first.batch_size, m.config.seed, first.epochs, initial_epoch
        )
        for m in active
    ]
    callbacks: list = [MemberCallbacks(m, k) for k, m in enumerate(active)]
    progress = first.verbose == "auto"
    # JointCommit last: it commits after every member staged its epoch.
    callbacks += [JointCommit(output_dir, members, progress)]
    callbacks += [b.epoch_callback() for b in batches]  # each member's data at fit's epoch
    model.fit(
        JointBatches(batches, [m.output for m in active]),
        validation_data=JointEvaluation(x_val, y_val, [m.output for m in active]),
        epochs=first.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,
        verbose=0 if progress else first.verbose,
    )
