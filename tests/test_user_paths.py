"""A user's paths, in fresh processes: load what the main job wrote, deploy
`inference.keras` without keras_minent, and run without optional parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from helpers import SMALL_DATA_CLI

import keras_minent
from keras_minent.cli import main
from keras_minent.testing import BACKEND, requires_tf, run_python

TINY = [*SMALL_DATA_CLI, "--epochs", "1"]
KERAS_FILES = ("best.keras", "checkpoint.keras", "best_calibrated.keras", "inference.keras")


def blocker(*modules: str) -> str:
    """Python code that makes importing `modules` fail as if they were not installed."""
    return (
        "import sys\n"
        "class _Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {set(modules)!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _Blocked())\n"
    )


def run_blocked(modules, code: str, env: dict | None = None, timeout: float = 300):
    """Runs `code` in a fresh process where `modules` cannot be imported."""
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", blocker(*modules) + code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def images(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1)).astype("float32")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One run of the main job, as typed: `python -m keras_minent train --synthetic ...`,
    in the directory of a first try that failed for lack of data (its stdout and
    stderr in `stdout.txt` and `stderr.txt` beside it)."""
    out = tmp_path_factory.mktemp("user") / "run1"
    (out.parent / "empty").mkdir()
    failed = ["train", "--no-download", "--data-dir", str(out.parent / "empty")]
    assert main([*failed, "--output-dir", str(out)]) == 2
    assert (out / "config.json").is_file() and not (out / "state.json").exists()
    env = {
        **os.environ,
        "KERAS_BACKEND": BACKEND,
        "KERAS_MINENT_DATA": str(out.parent / "d"),
        "TFDS_DATA_DIR": str(out.parent / "tfds"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "keras_minent", "train", *TINY, "--verbose", "0"]
        + ["--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out.parent / "stdout.txt").write_text(proc.stdout)
    (out.parent / "stderr.txt").write_text(proc.stderr)
    return out


def test_synthetic_data_touch_no_data_directory_and_raise_no_warning(run_dir):
    assert not (run_dir.parent / "d").exists() and not (run_dir.parent / "tfds").exists()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("synthetic")) == [
        "synthetic_raw"
    ]
    output = (run_dir.parent / "stdout.txt").read_text() + (
        run_dir.parent / "stderr.txt"
    ).read_text()
    assert "Downloading and preparing" not in output and "tfds" not in output
    assert "not the official" not in output


def test_a_first_try_that_failed_before_training_does_not_block_the_next(run_dir):
    stdout = (run_dir.parent / "stdout.txt").read_text()
    assert "replacing the configuration of a run that never finished an epoch" in stdout
    assert "synthetic: False -> True" in stdout
    assert json.loads((run_dir / "config.json").read_text())["synthetic"] is True
    assert json.loads((run_dir / "state.json").read_text())["epochs_done"] == 1


@requires_tf
def test_everything_the_main_job_writes_loads_after_import_keras_minent(run_dir):
    for name in KERAS_FILES:
        assert (run_dir / name).is_file(), name
    code = (
        "import keras, keras_minent\n"
        f"for name in {KERAS_FILES!r}:\n"
        f"    model = keras.saving.load_model({str(run_dir)!r} + '/' + name)\n"
        "    print(name, model.count_params())\n"
    )
    out = run_python(code)
    assert all(name in out for name in KERAS_FILES), out


def test_the_main_jobs_files_carry_no_arguments_keras_3_10_refuses(run_dir):
    for name in KERAS_FILES:
        with zipfile.ZipFile(run_dir / name) as zf:
            config = zf.read("config.json").decode()
        assert '"kernel_initializer"' in config, name  # the configs are there
        for key in ("input_axes", "output_axes", "renorm", "quantization_config"):
            assert f'"{key}"' not in config, (name, key)


def test_portable_config_drops_only_newer_arguments_at_their_defaults():
    from keras_minent._portable_save import portable_config

    def obj(module, name, **config):
        return {"module": module, "class_name": name, "config": config}

    glorot = obj("keras.initializers", "GlorotUniform", seed=None, input_axes=None)
    wide = obj("keras.initializers", "VarianceScaling", scale=2.0, output_axes=[0, 1])
    bn = obj("keras.layers", "BatchNormalization", momentum=0.9, renorm=False, renorm_momentum=0.5)
    own = obj("my_package", "Dense", units=3, quantization_config=None)
    layer = obj(
        "keras.layers", "Dense", units=3, quantization_config=None, kernel_initializer=glorot
    )
    assert portable_config({"layers": [layer, wide, bn, own]}) == {
        "layers": [
            obj("keras.layers", "Dense", units=3, kernel_initializer=obj(
                "keras.initializers", "GlorotUniform", seed=None)),
            wide,  # not the default: kept (an older Keras should refuse it)
            obj("keras.layers", "BatchNormalization", momentum=0.9, renorm_momentum=0.5),
            own,  # not Keras's own class: untouched
        ]
    }  # fmt: skip


@requires_tf
def test_inference_keras_loads_without_keras_minent_and_predicts_as_best(run_dir, tmp_path):
    x = images()
    np.save(tmp_path / "x.npy", x)
    code = (
        "import keras, numpy as np\n"
        f"m = keras.saving.load_model({str(run_dir / 'inference.keras')!r})\n"
        "assert 'keras_minent' not in sys.modules\n"
        "assert not any('Random' in type(l).__name__ for l in m.layers), m.layers\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, "
        f"m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))\n"
    )
    proc = run_blocked(["keras_minent"], code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = keras.saving.load_model(run_dir / "best.keras")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), best.predict(x, verbose=0))


@pytest.mark.parametrize("builder", ["vgg5", "spinal_vgg5"])
def test_inference_model_is_plain_keras_and_predicts_exactly(builder, tmp_path):
    keras.utils.set_random_seed(1)
    model = keras_minent.models.BUILDERS[builder](augment=True, seed=0)
    x = images(8)
    rng = np.random.default_rng(2)
    for layer in model.layers:  # BatchNorm statistics as training leaves them, not 0/1
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, var = layer.moving_mean, layer.moving_variance
            mean.assign(rng.normal(0, 0.1, mean.shape).astype("float32"))
            var.assign(rng.uniform(0.5, 2, var.shape).astype("float32"))
    plain = keras_minent.models.inference_model(model)
    assert not any(type(layer).__module__.startswith("keras_minent") for layer in plain.layers), (
        plain.layers
    )
    assert "augmentation" not in [layer.name for layer in plain.layers]
    np.testing.assert_array_equal(plain.predict(x, verbose=0), model.predict(x, verbose=0))
    plain.save(tmp_path / "inference.keras")
    code = (
        "import keras, numpy as np\n"
        f"m = keras.saving.load_model({str(tmp_path / 'inference.keras')!r})\n"
        "print(m.count_params())\n"
    )
    proc = run_blocked(["keras_minent"], code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) == plain.count_params()
    with pytest.raises(ValueError, match="vgg5"):
        keras_minent.models.inference_model(keras.Sequential([keras.Input((2,))]))


def test_inference_model_keeps_the_mixed_policy_and_the_users():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras_minent.vgg5()
    keras.config.set_dtype_policy("float32")
    plain = keras_minent.models.inference_model(model)
    assert plain.get_layer("block1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    x = images(4)
    np.testing.assert_array_equal(plain.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------- optional parts


def _one_line_exit_2(proc, extra: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("keras-minent:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f'pip install "keras-minent[{extra}]"' in lines[0], lines


def test_tensorflow_backend_without_tensorflow_is_one_line(tmp_path):
    code = (
        "from keras_minent.cli import main\n"
        f"sys.exit(main(['train', *{TINY!r}, '--output-dir', {str(tmp_path)!r}]))\n"
    )
    proc = run_blocked(["tensorflow"], code, env={"KERAS_BACKEND": "tensorflow"})
    _one_line_exit_2(proc, "tensorflow")


def test_tune_without_keras_tuner_is_one_line(tmp_path):
    code = (
        "from keras_minent.cli import main\n"
        f"sys.exit(main(['tune', '--synthetic', '--output-dir', {str(tmp_path)!r}]))\n"
    )
    _one_line_exit_2(run_blocked(["keras_tuner"], code), "tuning")


def test_a_run_without_matplotlib_completes_and_writes_results(tmp_path):
    """Without matplotlib (and, on JAX / PyTorch, without TensorFlow and tfds too)."""
    if BACKEND == "tensorflow":
        blocked = ["matplotlib"]
    else:
        blocked = ["matplotlib", "tensorflow", "tensorflow_datasets"]
    out = tmp_path / "run"
    code = (
        "from keras_minent.cli import main\n"
        f"code = main(['train', *{TINY!r}, '--verbose', '0', '--output-dir', {str(out)!r}])\n"
        f"assert not {set(blocked)!r} & set(sys.modules), 'imported a blocked module'\n"
        "sys.exit(code)\n"
    )
    proc = run_blocked(blocked, code, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == 1 and 0 <= results["test_accuracy"] <= 1
    assert not (out / "curves.png").exists()
    assert "curves.png not written: Plots need matplotlib" in proc.stderr
    assert 'pip install "keras-minent[plots]"' in proc.stderr
    assert (out / "inference.keras").is_file() and (out / "best_calibrated.keras").is_file()


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf_saved_model export needs TensorFlow")
def test_inference_model_exports_a_saved_model(tmp_path):
    import tensorflow as tf

    plain = keras_minent.models.inference_model(keras_minent.vgg5(augment=True))
    plain.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    x = images(4)
    np.testing.assert_allclose(
        served.serve(tf.constant(x)).numpy(), plain.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )


@pytest.mark.slow
@requires_tf
@pytest.mark.skipif(BACKEND != "jax", reason="the fresh venv has keras and jax only")
def test_inference_keras_in_a_fresh_venv_with_keras_and_jax_only(run_dir, tmp_path):
    """A venv without keras_minent (and without TensorFlow) loads inference.keras and
    predicts exactly what best.keras predicts here (same keras and jax versions)."""
    import jax

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        + [f"keras=={keras.__version__}", f"jax=={jax.__version__}"],
        check=True,
        timeout=600,
    )
    x = images()
    np.save(tmp_path / "x.npy", x)
    code = (
        "import importlib.util, sys, keras, numpy as np\n"
        "assert importlib.util.find_spec('keras_minent') is None\n"
        "assert importlib.util.find_spec('tensorflow') is None\n"
        f"m = keras.saving.load_model({str(run_dir / 'inference.keras')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, "
        f"m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "KERAS_BACKEND": "jax"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = keras.saving.load_model(run_dir / "best.keras")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), best.predict(x, verbose=0))
