"""The command line answers help, --version and argument errors at the cost of
`import keras_minent`: the modules that train (data, tensorflow-datasets, plotting)
and tune (keras-tuner, scikit-learn) are imported only when a command runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from keras_minent.cli import main
from keras_minent.testing import BACKEND

#: In a fresh process: `import keras_minent`, then each command line of argv (one per
#: argument, words split by spaces) as `python -m keras_minent` runs it; prints the
#: modules each one imported beyond those already there, and its exit status.
PROBE = """
import json, runpy, sys
import keras_minent
baseline = set(sys.modules)
runs = []
for line in sys.argv[1:]:
    before = set(sys.modules)
    sys.argv = ["keras-minent", *line.split()]
    try:
        runpy.run_module("keras_minent", run_name="__main__", alter_sys=True)
        code = None
    except SystemExit as e:
        code = e.code
    runs.append({"argv": line, "code": code, "new": sorted(set(sys.modules) - before)})
print("\\nPROBE " + json.dumps({"baseline": sorted(baseline), "runs": runs}))
"""

#: What a command must not import to print help or refuse an option.
HEAVY = ("keras_tuner", "sklearn", "tensorflow_datasets", "matplotlib")
#: The package's modules that parsing needs beyond `import keras_minent`.
PARSING = {"keras_minent.__main__", "keras_minent.cli"}
PARSING |= {
    "keras_minent.training",
    "keras_minent.training.config",
    "keras_minent.training.options",
}


def test_help_version_and_argument_errors_import_nothing_heavy():
    lines = ["train --help", "reproduce --help", "--version", "train --epochs x", "--help"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *lines],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(proc.stdout.rsplit("\nPROBE ", 1)[1])
    codes = {run["argv"]: run["code"] for run in probe["runs"]}
    assert codes == {"train --help": 0, "reproduce --help": 0, "--version": 0,
                     "train --epochs x": 2, "--help": 0}  # fmt: skip
    assert "usage: keras-minent train" in proc.stdout and "--seed-parallel" in proc.stdout
    assert "keras-minent train: error: argument --epochs" in proc.stderr
    for run in probe["runs"]:
        new = set(run["new"])
        # Keras's own `keras.wrappers` imports scikit-learn where it is installed: then
        # it is in the baseline, and still no command may be the one importing it.
        assert not {m.split(".")[0] for m in new} & set(HEAVY), run["argv"]
        assert {m for m in new if m.startswith("keras_minent")} <= PARSING, run["argv"]
    for module in ("keras_tuner", "tensorflow_datasets"):
        assert module not in probe["baseline"]  # not even `import keras_minent` needs them


def test_tune_help_shows_the_search_options(capsys):
    pytest.importorskip("keras_tuner")
    with pytest.raises(SystemExit) as e:
        main(["tune", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--tuner {random,bayesian,hyperband}", "--trials", "--output-dir"):
        assert option in out
