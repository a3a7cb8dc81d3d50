"""Several runs trained together: one compiled step advances N independent members.

At the recipe's batch of 100 one VGG-5 step leaves most of a GPU idle (the
step is bound by kernel launches and the framework's per-step work, not by
arithmetic). A *joint* run puts N members (different seeds, losses, weights,
models) side by side in one Keras model with N inputs and N outputs: the
members share nothing but the compiled step that runs them.

Why each member behaves exactly as a separate run of the recipe:

* its own network (its own variables and BatchNorm statistics), built after
  `keras.utils.set_random_seed(seed)` as a separate run builds it, so the
  initial weights are the same;
* its own batches of 100 (`TrainingBatches` with its own seed), its own
  dropout and augmentation seeds;
* the joint loss is the sum of the members' losses, each the mean over its
  own batch: a member's variables receive exactly its own loss's gradient;
* `MemberAdam`: Adam's moments are per variable, the step count is the same
  for all, and the learning rate is **per member** (a variable per member,
  set by that member's own `PaperLearningRateRule` on its own validation
  accuracy);
* no loss scaling: `mixed_float16` (one dynamic loss scale for all members) is
  refused; float32 and mixed_bfloat16 need none.

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
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_minent import datasets
from keras_minent.datasets.selection import load_data_with_record
from keras_minent.training import reporting
from keras_minent.training import run as run_lib
from keras_minent.training.callbacks import STATE_NAME, PaperLearningRateRule, RunState
from keras_minent.training.config import ConfigError, TrainConfig
from keras_minent.training.devices import accelerator, precision_choice, resolve_precision
from keras_minent.training.files import NonFiniteLossError, ResumeError, read_json_file, write_json

JOINT_STATE_NAME = "joint_state.json"

#: Options every member of a joint run must share (one data pipeline, one program).
SHARED_OPTIONS = (
    "data_dir",
    "idx_dir",
    "download",
    "synthetic",
    "synthetic_size",
    "selection",
    "epochs",
    "batch_size",
    "precision",
    "jit_compile",
    "steps_per_execution",
    "distribute",
)


@dataclasses.dataclass
class _Untracked:
    """The members' variables, out of sight of Keras's attribute tracking."""

    variables: list
    member_of: dict


class MemberAdam(keras.optimizers.Adam):
    """Adam with one learning rate per member of a joint model.

    Adam's moments belong to each variable and its step count is the same
    for every member, so one optimizer over the joint model's variables is N
    independent Adams once each variable's update uses its member's rate.

    Args:
        member_variables: For each member, its trainable variables.
        learning_rates: Each member's initial learning rate.
        **kwargs: Adam's other arguments (`beta_1`, `epsilon`, ...).
    """

    def __init__(
        self,
        member_variables: Sequence[Sequence[keras.Variable]],
        learning_rates: Sequence[float],
        **kwargs,
    ):
        if len(member_variables) != len(learning_rates):
            raise ValueError(
                f"{len(member_variables)} members but {len(learning_rates)} learning rates."
            )
        super().__init__(learning_rate=float(learning_rates[0]), **kwargs)
        # Held outside the optimizer's attribute tracking: the members' variables are
        # not the optimizer's own (they would be saved and donated twice).
        self._members = _Untracked([list(vs) for vs in member_variables], {})
        self._initial_rates = [float(r) for r in learning_rates]
        self.member_rates: list[keras.Variable] = []

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        member_of = self._members.member_of
        for k, variables in enumerate(self._members.variables):
            for v in variables:
                member_of[self._var_key(v)] = k
        unowned = [v.path for v in var_list if self._var_key(v) not in member_of]
        if unowned:
            raise ValueError(f"Variables of no member: {unowned[:3]}")
        with keras.name_scope(self.name, caller=self):
            self.member_rates = [
                self.add_variable(
                    (), initializer=keras.initializers.Constant(rate), name=f"member_rate_{k}"
                )
                for k, rate in enumerate(self._initial_rates)
            ]

    def update_step(self, gradient, variable, learning_rate):
        rate = self.member_rates[self._members.member_of[self._var_key(variable)]]
        super().update_step(gradient, variable, rate)

    def copy_member_state(self, member: keras.Model, k: int, to_member: bool) -> None:
        """Copies member `k`'s moments and step count between this optimizer and the
        member model's own (compiled) optimizer, and the member's learning rate from it."""
        own = member.optimizer
        if not own.built:
            own.build(member.trainable_variables)
        pairs = [(self.iterations, own.iterations)]
        for v in member.trainable_variables:
            i, j = self._get_variable_index(v), own._get_variable_index(v)
            pairs.append((self._momentums[i], own._momentums[j]))
            pairs.append((self._velocities[i], own._velocities[j]))
        for joint_var, own_var in pairs:
            if to_member:
                own_var.assign(keras.ops.convert_to_numpy(joint_var))
            else:
                joint_var.assign(keras.ops.convert_to_numpy(own_var))
        # The rate flows one way: the member's own rule sets it on the member's optimizer.
        self.member_rates[k].assign(keras.ops.convert_to_numpy(own.learning_rate))


class _Member(keras.layers.Layer):
    """A member network under its joint name (members may share a model name)."""

    def __init__(self, network: keras.Model, **kwargs):
        super().__init__(dtype="float32", **kwargs)  # raw pixels in, float32 logits out
        self.network = network

    def call(self, images, training=None):
        return self.network(images, training=training)

    @property
    def metrics(self):
        return []  # the network's own compiled metrics are not the joint model's


def joint_model(members: Sequence[keras.Model], names: Sequence[str]) -> keras.Model:
    """One functional model running `members` side by side (input `<name>_image` -> output `name`).

    The members' variables need distinct paths (build each member under
    `keras.name_scope(name)`): the PyTorch backend keys a model's parameters
    by path, and members sharing paths would share gradient buffers there.

    Raises:
        ValueError: If two members' variables share a path.
    """
    paths = [v.path for m in members for v in m.weights]
    if len(set(paths)) != len(paths):
        raise ValueError(
            "The members' variables share paths (e.g. "
            f"{next(p for p in paths if paths.count(p) > 1)!r}): build each member under "
            "keras.name_scope(<its name>)."
        )
    inputs, outputs = [], {}
    for member, name in zip(members, names):
        x = keras.Input(member.input_shape[1:], name=f"{name}_image")
        inputs.append(x)
        outputs[name] = _Member(member, name=name)(x)
    return keras.Model(inputs, outputs, name="joint")


class JointBatches(keras.utils.PyDataset):
    """Each member's own seeded batches, served together: `((x_0, ...), {name: y})`."""

    def __init__(self, members: Sequence[datasets.TrainingBatches], names: Sequence[str]):
        super().__init__()
        lengths = {len(m) for m in members}
        if len(lengths) != 1:
            raise ValueError(f"Members with different numbers of batches: {sorted(lengths)}")
        self.members, self.names = list(members), list(names)

    def __len__(self) -> int:
        return len(self.members[0])

    def __getitem__(self, i: int):
        batches = [m[i] for m in self.members]
        return tuple(b[0] for b in batches), {n: b[1] for n, b in zip(self.names, batches)}

    def on_epoch_end(self) -> None:
        for m in self.members:
            m.on_epoch_end()


class JointEvaluation(keras.utils.PyDataset):
    """The same evaluation batches for every member."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, names: Sequence[str]):
        super().__init__()
        self.batches = datasets.EvaluationBatches(images, labels, 1000)
        self.names = list(names)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        x, y = self.batches[i]
        return (x,) * len(self.names), {n: y for n in self.names}


#: The metric that reports a member's loss as a separate run's `loss` does.
EPOCH_LOSS = "epoch_loss"


def epoch_loss(loss: keras.losses.Loss) -> keras.metrics.Metric:
    """The mean of `loss` over every example of the epoch.

    A separate run's `loss` weights each batch by its size; Keras's
    per-output losses of a joint model are plain means of the batches'
    losses, which differ when an epoch ends with a smaller batch.
    """
    per_example = type(loss).from_config({**loss.get_config(), "reduction": None})
    return keras.metrics.MeanMetricWrapper(per_example, name=EPOCH_LOSS)


def member_logs(logs: dict, prefix: str) -> dict:
    """A member's entries of the joint logs (`<prefix>accuracy`, ...), named as a
    separate run names them. Keras prefixes the logs of a model with several
    outputs by the output's name (`m0_`), those of a single output by nothing."""
    own, val = prefix, f"val_{prefix}"
    out = {}
    for key, value in logs.items():
        if key.startswith(own):
            out[key[len(own) :]] = value
        elif key.startswith(val):
            out["val_" + key[len(val) :]] = value
    for prefix in ("", "val_"):
        if prefix + EPOCH_LOSS in out:
            out[prefix + "loss"] = out.pop(prefix + EPOCH_LOSS)
    return out


@dataclasses.dataclass
class Member:
    """One member of a joint run: its configuration, network, rule and run state."""

    name: str  # its directory, relative to the joint run's
    config: TrainConfig
    state: RunState
    rule: PaperLearningRateRule | None
    model: keras.Model | None = None
    output: str = ""  # its output's name in the joint model (`m<k>`)
    prefix: str = ""  # of its entries in the joint logs (`m<k>_`; none for a lone member)
    failure: str | None = None


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
        write_joint_state(self.path, epoch + 1, self.members)  # the commit point
        for m in staged:
            old, improved = m.state.pending
            write_json(m.state.state_path, m.state.state)
            m.state.finish(old, improved)
            m.state.pending = None
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
    path = os.path.join(output_dir, JOINT_STATE_NAME)
    if not os.path.lexists(path):
        return None
    fix = "Use another --output-dir, or delete it to start over."
    state = read_json_file(path, "the joint run's state", fix)
    if not isinstance(state, dict) or not {"members", "failed", "epochs_done"} <= set(state):
        raise ResumeError(f"{path} is not a joint run's state. {fix}")
    return state


def reconcile(output_dir: str, names: Sequence[str]) -> dict[str, str]:
    """Makes every member's `state.json` the joint commit point's; returns the failed members.

    A kill between the joint commit and a member's own `state.json` leaves
    that member one epoch behind: its state is rewritten from the joint one.

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
    for name, state in joint["members"].items():
        if not state:
            continue  # nothing committed yet
        path = os.path.join(output_dir, name, STATE_NAME)
        try:
            with open(path) as f:
                same = json.load(f) == state
        except (OSError, ValueError):
            same = False
        if not same:
            write_json(path, state)
    return dict(joint["failed"])


def seed_parallel_choice(config: TrainConfig, num_members: int, device: dict) -> dict[str, Any]:
    """Whether members train together, and why (`results.json`'s `seed_parallel`).

    `auto` trains them together on a GPU (where one member at batch 100 leaves
    most of it idle) and one after another on a CPU (benchmarks/RESULTS.md
    section 6: no gain on a CPU, whose cores one member already keeps busy).

    Raises:
        ConfigError: If `seed_parallel` is on where it cannot apply.
    """
    requested = config.seed_parallel
    refusal = None
    if num_members < 2:
        refusal = "there is one run to train"
    elif config.distribute != "none":
        refusal = f"--distribute {config.distribute} spreads one run over several devices"
    elif precision_choice(config.precision, device, config.batch_size)["policy"] == (
        "mixed_float16"
    ):
        refusal = "mixed_float16's loss scale would be shared by the members"
    if requested is True and refusal is not None and num_members > 1:
        raise ConfigError(
            f"--seed-parallel on cannot apply: {refusal}. Use --seed-parallel off"
            + (" or --precision float32 / mixed_bfloat16." if "float16" in refusal else ".")
        )
    if refusal is not None:
        return {"requested": requested, "joint": False, "reason": refusal}
    if requested == "auto":
        on = device["kind"] == "gpu"
        reason = (
            "auto on a GPU: members share the device"
            if on
            else "auto on a CPU: one after another (no gain measured, RESULTS.md section 6)"
        )
        return {"requested": requested, "joint": on, "reason": reason}
    return {"requested": requested, "joint": bool(requested), "reason": "requested"}


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
    previous_policy = keras.config.dtype_policy()
    try:
        return _train_together(list(configs), output_dir, choice)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _train_together(configs: list[TrainConfig], output_dir: str, choice) -> tuple:
    _check_shared(configs)
    first = configs[0]
    names = [os.path.relpath(c.output_dir, output_dir) for c in configs]
    if len(set(names)) != len(names) or any(n.startswith("..") for n in names):
        raise ConfigError("Members need distinct output directories inside the joint one.")
    os.makedirs(output_dir, exist_ok=True)
    for c in configs:
        run_lib.claim_output_dir(c)
    device = accelerator()
    choice = choice or seed_parallel_choice(first, len(configs), device)
    precision = resolve_precision(first.precision, device, first.batch_size)
    if precision == "mixed_float16":
        raise ConfigError("A joint run cannot share mixed_float16's loss scale between members.")
    keras.config.set_dtype_policy(precision)
    data, record = load_data_with_record(first, first.selection)
    provenance = run_lib.data_entry(record, data)
    failed = reconcile(output_dir, [n.replace(os.sep, "/") for n in names])
    members = []
    for name, c in zip(names, configs):
        rule = None
        if c.lr_rule == "paper":
            rule = PaperLearningRateRule(c.learning_rate, "val_accuracy", seed=c.seed)
        state = RunState(
            c.output_dir, "val_accuracy", rule, config=dataclasses.asdict(c), data=provenance
        )
        state.deferred = True
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
    t0 = time.perf_counter()
    if active:
        _fit_together(members, active, data, device, starts.pop(), output_dir)
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


def build_members(configs: Sequence[TrainConfig], device: dict) -> list[keras.Model]:
    """Each configuration's network, built and compiled as its separate run builds it
    (after `keras.utils.set_random_seed(seed)`), its variables under the name `m<k>`."""
    networks = []
    for k, c in enumerate(configs):
        keras.utils.set_random_seed(c.seed)
        with keras.name_scope(f"m{k}"):
            networks.append(run_lib.build_model(c, device))
    return networks


def compile_joint(
    networks: Sequence[keras.Model], configs: Sequence[TrainConfig], device: dict
) -> keras.Model:
    """The joint model of `networks` (outputs `m0`, `m1`, ...), compiled with `MemberAdam`,
    each member's loss and the run's metrics (`configs[0]`'s compilation options)."""
    names = [f"m{k}" for k in range(len(networks))]
    model = joint_model(networks, names)
    model.compile(
        optimizer=MemberAdam(
            [n.trainable_variables for n in networks], [c.learning_rate for c in configs]
        ),
        loss={name: n.loss for name, n in zip(names, networks)},
        metrics={
            name: [*run_lib.metrics(), epoch_loss(n.loss)] for name, n in zip(names, networks)
        },
        jit_compile=configs[0].jit_compile,
        steps_per_execution=run_lib.steps_per_execution(configs[0], device),
    )
    return model


def _fit_together(
    members: list[Member], active: list[Member], data, device, initial_epoch: int, output_dir: str
) -> None:
    first = active[0].config
    networks = build_members([m.config for m in active], device)
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
    callbacks += [JointCommit(output_dir, members, progress), _EpochSync(batches)]
    model.fit(
        JointBatches(batches, [m.output for m in active]),
        validation_data=JointEvaluation(x_val, y_val, [m.output for m in active]),
        epochs=first.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,
        verbose=0 if progress else first.verbose,
    )


class _EpochSync(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        for b in self.batches:
            b.set_epoch(epoch)
