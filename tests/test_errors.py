"""The package's expected errors share one base class, and the command line reports each
in one line."""

from __future__ import annotations

import importlib
import pkgutil

import keras
import pytest

import keras_minent
from keras_minent import errors, training
from keras_minent.cli import main
from keras_minent.errors import KerasMinentError


def _exception_classes() -> dict[str, type]:
    """Every exception class defined in the package, found by importing each module."""
    found = {}
    for info in pkgutil.walk_packages(keras_minent.__path__, "keras_minent."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional part that is not installed
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("keras_minent")
            ):
                found[value.__name__] = value
    return found


#: Each error class, where users import it from, and the built-in base they may catch.
PUBLIC = {
    "ConfigError": ("keras_minent.training", ValueError),
    "DataError": ("keras_minent.datasets", ValueError),
    "EmnistDataError": ("keras_minent.datasets", ValueError),
    "PaperCheckpointError": ("keras_minent.models", ValueError),
    "RunError": ("keras_minent.training", Exception),
    "ResumeError": ("keras_minent.training", Exception),
    "NonFiniteLossError": ("keras_minent.training", Exception),
    "OutputError": ("keras_minent.training", Exception),
    "SearchStateError": ("keras_minent.tuning", Exception),
    "SearchFailedError": ("keras_minent.tuning", RuntimeError),
    "PeerLostError": ("keras_minent.distribute", RuntimeError),
    "UnsupportedKerasError": ("keras_minent._keras_tf_trainer_fix", RuntimeError),
    "MissingExtraError": ("keras_minent", ImportError),
}


def test_every_error_class_of_the_package_derives_from_the_base():
    found = _exception_classes()
    assert set(found) == {*PUBLIC, "KerasMinentError"}  # a new class is added to PUBLIC
    for name, cls in found.items():
        assert issubclass(cls, KerasMinentError), name
        assert cls is getattr(errors, name), name  # defined once, in errors.py
    assert set(errors.__all__) == set(found)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_error_stays_importable_from_where_it_was_with_its_builtin_base(name):
    module, builtin = PUBLIC[name]
    cls = getattr(importlib.import_module(module), name)
    assert cls is getattr(errors, name)
    assert issubclass(cls, builtin) and issubclass(cls, KerasMinentError)


@pytest.mark.parametrize("name", sorted(set(PUBLIC) - {"PeerLostError"}))
def test_the_command_line_prints_each_error_in_one_line_with_exit_status_2(
    name, monkeypatch, capsys
):
    def fails(config):
        raise getattr(errors, name)(f"{name} says what to do.")

    monkeypatch.setattr(training, "train", fails)
    assert main(["train", "--synthetic"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"keras-minent: error: {name} says what to do.\n"


def test_a_lost_peer_exits_75_and_other_exceptions_keep_their_traceback(monkeypatch, capsys):
    if keras.backend.backend() == "jax":
        pytest.skip("the JAX backend leaves the process at once (os._exit)")

    def lost(config):
        raise errors.PeerLostError("worker 1 is gone; restart every worker.")

    monkeypatch.setattr(training, "train", lost)
    assert main(["train", "--synthetic"]) == 75
    assert capsys.readouterr().err == "keras-minent: worker 1 is gone; restart every worker.\n"

    def bug(config):
        raise RuntimeError("a bug")

    monkeypatch.setattr(training, "train", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "--synthetic"])
