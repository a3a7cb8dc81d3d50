"""A multi-worker job's cluster, as the environment describes it, checked before use.

TensorFlow reads `TF_CONFIG`; JAX (`keras.distribution.initialize`) reads the
`KERAS_DISTRIBUTION_*` variables; keras_minent adds
`KERAS_MINENT_COLLECTIVE_TIMEOUT`. Each is validated here so that a missing or
malformed value is one line saying what to set, not an engine's traceback.
`keras_minent.distribute` sets the cluster up from them.
"""

from __future__ import annotations

import json
import os

#: Seconds after which a collective operation of a multi-worker TensorFlow job
#: gives up (0: never). A dead or unreachable peer is found without it (a reset
#: connection, or TensorFlow's health check); it catches a peer that hangs
#: while alive, and must exceed the longest wait, e.g. the other workers
#: waiting while the chief downloads and prepares the data. Set it with the
#: environment variable `KERAS_MINENT_COLLECTIVE_TIMEOUT`.
DEFAULT_COLLECTIVE_TIMEOUT = 0.0

#: The variables `keras.distribution.initialize` reads on JAX.
JAX_ENV = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)

_TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


def check_tf_config() -> None:
    """Validates the cluster of a multi-worker TensorFlow job (`TF_CONFIG`).

    Raises:
        ValueError: If `TF_CONFIG` is unset, not JSON, or names a task outside its cluster.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "--distribute multiworker on TensorFlow reads the cluster from the TF_CONFIG "
            f"environment variable, which is not set. Set it on every worker, e.g. {_TF_CONFIG_EXAMPLE} "
            "(index 1 on the second machine)."
        )
    try:
        config = json.loads(raw)
        workers = list(config["cluster"]["worker"])
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"TF_CONFIG is not a valid cluster description ({e!r}); expected e.g. {_TF_CONFIG_EXAMPLE}."
        ) from None
    if task.get("type") not in ("worker", "chief"):
        raise ValueError(f"TF_CONFIG task type must be worker or chief, got {task.get('type')!r}.")
    size = len(config["cluster"].get(task["type"], []))
    if not 0 <= index < size:
        raise ValueError(f"TF_CONFIG task index {index} is outside the {size} {task['type']}s.")
    if not workers:
        raise ValueError("TF_CONFIG names no workers.")


def collective_timeout() -> float:
    """`KERAS_MINENT_COLLECTIVE_TIMEOUT` in seconds (`DEFAULT_COLLECTIVE_TIMEOUT` if unset).

    Raises:
        ValueError: If the value is not a number >= 0.
    """
    raw = os.environ.get("KERAS_MINENT_COLLECTIVE_TIMEOUT", str(DEFAULT_COLLECTIVE_TIMEOUT))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValueError(
            f"KERAS_MINENT_COLLECTIVE_TIMEOUT must be a number of seconds >= 0, got {raw!r}."
        )
    return value


def check_jax_env() -> None:
    """Checks that the `KERAS_DISTRIBUTION_*` variables of a JAX job are all set.

    Raises:
        ValueError: Naming the variables that are missing, with an example.
    """
    missing = [name for name in JAX_ENV if not os.environ.get(name)]
    if missing:
        raise ValueError(
            "--distribute multiworker on JAX reads the cluster from "
            f"{', '.join(JAX_ENV)}; not set: {', '.join(missing)}. On every process set e.g. "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES=host0:1234,host1:1234 "
            "KERAS_DISTRIBUTION_NUM_PROCESSES=2 KERAS_DISTRIBUTION_PROCESS_ID=0 (1 on the "
            "second machine)."
        )
