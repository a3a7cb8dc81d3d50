"""Fixtures of the test suite.

Shared constants and builders live in `helpers.py` (re-exported here): the small
configuration `SMALL` and its command-line form `SMALL_CLI` (`SMALL_DATA`: the same
at the default verbosity; `SMALL_284`: more examples), `tiny_model`, `copy_run`.
Helpers that the benchmarks use too live in `keras_minent.testing`.
"""

from __future__ import annotations

import keras
import pytest
from helpers import (  # noqa: F401  (re-exported)
    SMALL,
    SMALL_284,
    SMALL_284_CLI,
    SMALL_CLI,
    SMALL_DATA,
    SMALL_DATA_CLI,
    cli_args,
    copy_run,
    tiny_model,
)


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One finished `train` run of the small configuration (one epoch), trained once for
    the whole session. Read it, or work on a `copy_run` of it: never write into it."""
    from keras_minent.cli import main

    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *SMALL_CLI, "--epochs", "1", "--output-dir", str(out)]) == 0
    return out


@pytest.fixture
def finished_run_copy(finished_run, tmp_path):
    """A copy of `finished_run` (hard links) at `tmp_path / "run"`, to change freely."""
    out = tmp_path / "run"
    copy_run(finished_run, out)
    return out


def pytest_collection_modifyitems(config, items):
    """Files with `slow` or `benchmark` tests first: when CI spreads whole files over
    processes (pytest-xdist `--dist loadfile --no-loadscope-reorder`), the longest start
    early instead of running alone at the end. The order within a file is kept."""
    long_files = {item.path for item in items if {"slow", "benchmark"} & set(item.keywords)}
    items.sort(key=lambda item: item.path not in long_files)
