"""What a run reads back from its own files, checked before anything is used.

A run's `state.json` (and the joint run's `joint_state.json`) name the files
the run wrote; an output directory may be shared, so these files may have been
edited or planted. Every name read back must be one the run itself writes
(`checkpoint-<N>.keras`, `best-<N>.keras`: plain names in the output
directory, numbered by the state's own epochs), and every value must have the
type and range the run writes, or the run stops with one line naming the file
and the field (`ResumeError`) before it touches anything.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from typing import Any

import keras
import numpy as np

from keras_minent.training.files import ResumeError, publish

#: The names of a committed epoch's files, as `RunState` writes them.
STAMPED = re.compile(r"^(checkpoint|best)-([1-9][0-9]*)\.keras$")
START_OVER = "Use another --output-dir, or delete this one to start over."
#: The fields every run state has.
STATE_KEYS = ("epochs_done", "history", "best_epoch", "best_value", "epoch_times", "seed_states")
_NOT_OURS = "a run writes no such value (was the file edited or planted?)"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _numbers(x: Any, length: int | None = None) -> bool:
    ok = isinstance(x, list) and all(_is_number(v) for v in x)
    return ok and (length is None or len(x) == length)


def stamped_name(kind: str, epoch: int) -> str:
    """The name of epoch `epoch`'s `kind` (`checkpoint` or `best`) file."""
    return f"{kind}-{epoch}.keras"


def check_run_state(state: Any, path: str, keys: tuple[str, ...]) -> dict:
    """`state` (read from `path`) if it is a run state as `RunState` writes it.

    Args:
        state: The parsed JSON.
        path: The file it came from (named in the message), with any qualifier.
        keys: The fields a state must have.

    Returns:
        `state`, unchanged.

    Raises:
        ResumeError: Naming `path` and the first field of the wrong type or
            value; a `checkpoint` or `best` other than the exact stamped name
            of the state's epoch (an absolute path, `..`, another name).
    """
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise ResumeError(f"{path} lacks {missing}: it is not a run's state. {START_OVER}")

    def bad(field: str, expected: str) -> ResumeError:
        shown = repr(state[field])
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ResumeError(
            f"{path}: {field} is {shown}, not {expected}: {_NOT_OURS}. {START_OVER}"
        )

    done = state["epochs_done"]
    if not _is_int(done) or done < 0:
        raise bad("epochs_done", "a whole number >= 0")
    if "format" in state and not _is_int(state["format"]):
        raise bad("format", "a whole number")
    best_epoch = state["best_epoch"]
    if not _is_int(best_epoch) or not -1 <= best_epoch < done:
        raise bad("best_epoch", f"a whole number from -1 to {done - 1}")
    if not _is_number(state["best_value"]):
        raise bad("best_value", "a number")
    history = state["history"]
    if not isinstance(history, dict) or not all(
        isinstance(k, str) and _numbers(v, done) for k, v in history.items()
    ):
        raise bad("history", f"a mapping of metric names to lists of {done} numbers")
    if not _numbers(state["epoch_times"], done):
        raise bad("epoch_times", f"a list of {done} numbers")
    seeds = state["seed_states"]
    if not isinstance(seeds, list) or not all(
        isinstance(s, list) and all(_is_int(v) for v in s) for s in seeds
    ):
        raise bad("seed_states", "a list of lists of whole numbers")
    iterations = state.get("optimizer_iterations")
    if iterations is not None and (not _is_int(iterations) or iterations < 0):
        raise bad("optimizer_iterations", "a whole number >= 0")
    for field, epoch in (("checkpoint", done), ("best", best_epoch + 1)):
        name = state.get(field)
        if name is not None and name != stamped_name(field, epoch):
            raise bad(field, f"{stamped_name(field, epoch)!r} (a file of the run's own directory)")
    rule = state.get("lr_rule")
    if rule is not None and not _valid_rule(rule):
        raise bad("lr_rule", "the learning-rate rule's state ({'best': number, 'rng': ...})")
    for field in ("config", "data"):
        if state.get(field) is not None and not isinstance(state[field], dict):
            raise bad(field, "a mapping")
    fingerprint = (state.get("data") or {}).get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise ResumeError(f"{path}: data.fingerprint is not a string: {_NOT_OURS}. {START_OVER}")
    return state


def _valid_rule(rule: Any) -> bool:
    if not isinstance(rule, dict) or set(rule) != {"best", "rng"}:
        return False
    if not _is_number(rule["best"]) or not isinstance(rule["rng"], dict):
        return False
    try:  # the generator's own check (the rule's generator is NumPy's default, PCG64)
        np.random.default_rng().bit_generator.state = rule["rng"]
    except (TypeError, ValueError, KeyError, OverflowError):
        return False
    return True


def check_joint_state(state: dict, path: str) -> dict:
    """`state` (a joint run's `joint_state.json` at `path`) if every member name is a plain
    directory below it and every member state is a run state (`check_run_state`).

    Raises:
        ResumeError: Naming `path` (and the member) and what a run does not write.
    """
    members, failed = state["members"], state["failed"]
    if not isinstance(members, dict) or not isinstance(failed, dict):
        raise ResumeError(f"{path}: members and failed must be mappings. {START_OVER}")
    for name in [*members, *failed]:
        check_member_name(name, path)
    for name, member in members.items():
        if member != {}:  # {}: nothing committed yet
            check_run_state(member, f"{path} (member {name})", STATE_KEYS)
    if not all(isinstance(why, str) for why in failed.values()):
        raise ResumeError(f"{path}: failed must map members to messages. {START_OVER}")
    return state


def check_member_name(name: Any, path: str) -> str:
    """`name` (a member of `path`'s joint run) if it is a plain relative path below it.

    Raises:
        ResumeError: For an absolute path, `..`, an empty or non-string name.
    """
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or any(p in ("", ".", "..") for p in parts) or "\\" in name or "\0" in name:
        raise ResumeError(
            f"{path}: member {name!r} is not a directory inside the joint run's: "
            f"{_NOT_OURS}. {START_OVER}"
        )
    return name


def check_plain_file(path: str, state_path: str) -> None:
    """Refuses a committed file that is a link (the run only follows files it made)."""
    if os.path.islink(path):
        raise ResumeError(
            f"{path} is a link, but {state_path} names it as a file the run wrote: a run "
            f"never follows a link. Remove it, or {START_OVER[0].lower()}{START_OVER[1:]}"
        )


def archive_problem(path: str) -> str | None:
    """Why the Keras archive at `path` is damaged (truncated, corrupt), or None if it reads."""
    try:
        if not zipfile.is_zipfile(path):
            return "truncated or not a Keras archive (no zip directory)"
        with zipfile.ZipFile(path) as zf:
            broken = zf.testzip()  # reads every member and checks its CRC
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError) as e:
        return f"corrupt ({e})"
    if broken is not None:
        return f"corrupt (member {broken} fails its checksum)"
    return None


def load_committed_model(path: str, fix: str) -> keras.Model:
    """The Keras model at `path` (loaded in Keras's safe mode: no code in the file runs).

    Raises:
        ResumeError: Naming the file and what is wrong (damaged, or refused by
            the safe mode), with `fix`.
    """
    try:
        return keras.saving.load_model(path)
    except Exception as e:
        problem = archive_problem(path)
        text = " ".join(str(e).split())
        if problem is None and "safe_mode" in text:
            problem = (
                "refused by Keras's safe mode: it holds Python code (a Lambda layer) that "
                "loading would run, and a run never writes one"
            )
        text = text if len(text) <= 300 else text[:297] + "..."
        problem = problem or f"not loadable ({text})"
        raise ResumeError(f"{path} is {problem}. {fix}") from e


def check_best(run: Any, stable_name: str) -> None:
    """Checks a resumed run's committed best model (a `RunState`'s `best_path`).

    `best.keras` and `best-<N>.keras` are one file (hard links), so one damage
    is both names. Where the best epoch is the last committed one, its model
    is also the checkpoint's: a damaged best model is restored from an intact
    checkpoint (and the run says so). Otherwise nothing is changed and the
    run stops, naming the file and what is lost.

    Raises:
        ResumeError: If the best model is damaged and cannot be restored.
    """
    path = run.best_path
    problem = archive_problem(path)
    if problem is None:
        return
    ckpt, best_epoch, done = run.checkpoint_path, run.best_epoch + 1, run.initial_epoch
    stable = os.path.join(run.dir, stable_name)
    named = path
    if os.path.isfile(stable) and os.path.samefile(path, stable):
        named = f"{path} (and {stable_name}, the same file)"
    ckpt_ok = os.path.isfile(ckpt) and archive_problem(ckpt) is None
    if best_epoch == done and os.path.basename(ckpt) != "checkpoint.keras" and ckpt_ok:
        print(
            f"{named} is {problem}; epoch {best_epoch}'s model is also in {ckpt} (intact): "
            "the best model is restored from it."
        )
        publish(ckpt, path)
        return
    raise ResumeError(
        f"{named} is {problem}: the model of the best epoch {best_epoch} ({run.monitor} "
        f"{run.best_value:.4f}) is lost; {ckpt} (epoch {done}) is "
        f"{'intact' if ckpt_ok else 'damaged too'} and {run.state_path} is unchanged. "
        f"Restore the file from a backup, or {START_OVER[0].lower()}{START_OVER[1:]}"
    )
