"""Every private Keras API a joint run uses, and the check that they are what it expects.

A joint run (`keras_minent.training.joint`) trains N members with one
optimizer, `MemberAdam`, that gives each member's variables its own learning
rate and copies each member's Adam state to and from the member's own
optimizer. Keras has no public API for either, so `MemberAdam` uses the
optimizer internals listed in `PRIVATE_APIS`. `check_private_apis()` checks
them (they exist, the methods take the parameters listed, the slot lists
hold one entry per variable) before a joint run starts; on a Keras where one
differs, `--seed-parallel on` is refused with the API's name and `auto` trains
one run after another. `signature_problem` also checks the functions of Keras's
TensorFlow trainer that `keras_minent._keras_tf_trainer_fix` corrects.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import keras
import numpy as np

#: The Keras versions the joint run was checked against: the joint one-step
#: equivalence test of `tests/test_joint.py` passes on 3.10.0 (JAX; CI's
#: lowest-versions step) and 3.15.1 (TensorFlow, JAX, PyTorch), and
#: `private_api_problems()` finds nothing on 3.11.3, 3.12.0, 3.13.2 and 3.14.0 (JAX).
CHECKED_KERAS = "3.10.0 to 3.15.1"

_ADAM = "keras.optimizers.Adam"
_TORCH_ADAM = "keras.src.backend.torch.optimizers.torch_adam.Adam"


class PrivateApi(NamedTuple):
    """A private Keras API the joint run relies on.

    Attributes:
        owner: The class (or module) it belongs to, as importable text.
        name: The attribute.
        params: A method's parameter names; None for an attribute of a built optimizer.
        use: What the joint run uses it for.
    """

    owner: str
    name: str
    params: tuple[str, ...] | None
    use: str


#: What `MemberAdam` (keras_minent/training/joint.py) uses of Keras's optimizers.
PRIVATE_APIS = (
    PrivateApi(
        _ADAM,
        "_var_key",
        ("self", "variable"),
        "the key of a variable's optimizer state: maps each variable to its member",
    ),
    PrivateApi(
        _ADAM,
        "_get_variable_index",
        ("self", "variable"),
        "the index of a variable's moments, to copy a member's Adam state",
    ),
    PrivateApi(
        _ADAM,
        "_momentums",
        None,
        "Adam's first moments, one per variable (copied to/from a member's optimizer)",
    ),
    PrivateApi(
        _ADAM,
        "_velocities",
        None,
        "Adam's second moments, one per variable (copied to/from a member's optimizer)",
    ),
    PrivateApi(
        _ADAM,
        "_backend_update_step",
        ("self", "grads", "trainable_variables", "learning_rate"),
        "overridden: the update of all variables (on PyTorch, fused per member)",
    ),
    PrivateApi(
        _ADAM,
        "update_step",
        ("self", "gradient", "variable", "learning_rate"),
        "overridden: one variable's update with its member's learning rate "
        "(`_backend_update_step` calls it per variable)",
    ),
    PrivateApi(
        _TORCH_ADAM,
        "_parallel_update_step",
        ("self", "grads", "variables", "learning_rate"),
        "PyTorch only: Keras's fused Adam update, called once per member as a "
        "separate run's Adam calls it (without it, the per-variable update is used)",
    ),
)


def _torch_adam():
    """The class `_TORCH_ADAM`, or None off PyTorch or where this Keras has none."""
    if keras.backend.backend() != "torch":
        return None
    try:
        from keras.src.backend.torch.optimizers.torch_adam import Adam
    except ImportError:
        return None
    return Adam


def torch_fused_adam():
    """Keras's fused PyTorch Adam update (`_TORCH_ADAM._parallel_update_step`), or None
    off PyTorch or where this Keras has none (then Keras's per-variable update is used)."""
    return getattr(_torch_adam(), "_parallel_update_step", None)


def _slot_problem(optimizer_class: type, name: str) -> str | None:
    """What differs in the slot list `name` of an `optimizer_class` built on one
    variable (None: it holds that variable's slot, at its `_get_variable_index`)."""
    variable = keras.Variable(np.zeros(2, dtype="float32"), name="probe")
    try:
        optimizer = optimizer_class()
        optimizer.build([variable])
        slots = getattr(optimizer, name, None)
        if slots is None:
            return "is missing"
        if len(slots) != 1 or optimizer._get_variable_index(variable) != 0:
            return "is not one slot per variable"
        if tuple(slots[0].shape) != (2,):
            return "does not hold slots shaped as their variables"
    except Exception as e:  # an optimizer that no longer builds as expected
        return f"could not be checked ({type(e).__name__}: {e})"
    return None


def private_api_problems(optimizer_class: type | None = None) -> list[str]:
    """What differs in this Keras from the private APIs of `PRIVATE_APIS`.

    Args:
        optimizer_class: The class checked as `keras.optimizers.Adam` (default: it).

    Returns:
        One text per API that is missing or differs (`name: what`); empty if none.
    """
    owners = {_ADAM: optimizer_class or keras.optimizers.Adam, _TORCH_ADAM: _torch_adam()}
    problems = []
    for api in PRIVATE_APIS:
        owner = owners[api.owner]
        if owner is None:
            continue  # an optional API of another backend
        qualified = f"{api.owner}.{api.name}"
        if api.params is None:
            problem = _slot_problem(owner, api.name)
            if problem is not None:
                problems.append(f"{qualified} {problem}")
            continue
        problem = signature_problem(qualified, getattr(owner, api.name, None), api.params)
        if problem is not None:
            problems.append(problem)
    return problems


def signature_problem(qualified: str, function: Any, params: tuple[str, ...]) -> str | None:
    """What differs in a private Keras function from the one a caller was written for.

    Args:
        qualified: The function's name in the message (`Owner.name`).
        function: The function or method found, or None where there is none.
        params: The parameter names the caller expects.

    Returns:
        `"<qualified> is missing"`, `"<qualified> takes (...) instead of (...)"`,
        or None if it takes `params`.
    """
    if function is None:
        return f"{qualified} is missing"
    try:
        found = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        found = None
    if found != params:
        return f"{qualified} takes {found or '(?)'} instead of {params}"
    return None


def private_api_refusal(optimizer_class: type | None = None) -> str | None:
    """Why a joint run cannot train on this Keras (one sentence), or None if it can.

    Args:
        optimizer_class: See `private_api_problems`.
    """
    problems = private_api_problems(optimizer_class)
    if not problems:
        return None
    return (
        f"the joint step uses private Keras APIs checked on Keras {CHECKED_KERAS}, and in "
        f"the installed Keras {keras.__version__} {'; '.join(problems)}"
    )
