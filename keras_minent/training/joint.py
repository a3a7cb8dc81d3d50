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

`MemberAdam` uses private Keras optimizer APIs (no public API gives a variable
its own learning rate or reads Adam's moments): they are listed, with the
Keras versions they were checked against, in
`keras_minent._keras_private.PRIVATE_APIS`, and checked before a
joint run starts.

The run that trains such a program, keeping each member's files and the joint
commit point, is `keras_minent.training.joint_run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from keras_minent import datasets
from keras_minent._keras_private import torch_fused_adam
from keras_minent.training import recipe
from keras_minent.training.config import TrainConfig


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
        self.member_rates = [
            self.add_variable(
                (), initializer=keras.initializers.Constant(rate), name=f"member_rate_{k}"
            )
            for k, rate in enumerate(self._initial_rates)
        ]

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        fused = torch_fused_adam()
        if fused is None:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        # On PyTorch a separate run's Adam is Keras's fused (`torch._foreach`) update:
        # the same here, one member (one learning rate) at a time.
        import torch

        groups: dict[int, tuple[list, list]] = {}
        for g, v in zip(grads, trainable_variables):
            k = self._members.member_of[self._var_key(v)]
            groups.setdefault(k, ([], []))
            groups[k][0].append(g)
            groups[k][1].append(v)
        with torch.no_grad():
            for k, (gs, vs) in groups.items():
                fused(self, gs, vs, self.member_rates[k])

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


def build_members(
    configs: Sequence[TrainConfig], device: dict, data: dict | None = None
) -> list[keras.Model]:
    """Each configuration's network, built and compiled by the recipe as its separate run
    builds it (`recipe.build_recipe`: seeded by its seed, for the data of `data`, the
    run's `data` entry, `DataRecord.to_json`), its variables under the name `m<k>`. (A
    member's learning-rate rule is its run state's, `recipe.learning_rate_rule`.)"""
    networks = []
    for k, c in enumerate(configs):
        with keras.name_scope(f"m{k}"):
            networks.append(recipe.build_recipe(c, device, data).model)
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
            name: [*recipe.metrics(), epoch_loss(n.loss)] for name, n in zip(names, networks)
        },
        jit_compile=configs[0].jit_compile,
        steps_per_execution=recipe.steps_per_execution(configs[0], device),
    )
    return model
