"""Data-parallel training: `keras_minent.distribute` and the trainer correction.

The comparisons with one device run in fresh processes (devices must be set up
before the backend starts): the scripts are `tests/workers/*.py`.
"""

from __future__ import annotations

import pathlib

import keras
import pytest

from keras_minent import _cluster_env, _keras_tf_trainer_fix, distribute
from keras_minent.distribute import TrainingCluster
from keras_minent.testing import BACKEND, run_script

pytestmark = pytest.mark.backend_matrix

WORKERS = pathlib.Path(__file__).parent / "workers"


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute needs the TF backend")
def test_mirrored_two_cpus_matches_single_device():
    out = run_script(WORKERS / "mirrored_two_cpus.py", timeout=600)
    assert out.strip().endswith("OK"), out


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution DataParallel on JAX")
def test_jax_data_parallel_two_host_devices_matches_single_device():
    out = run_script(WORKERS / "jax_two_host_devices.py", timeout=600)
    assert out.strip().endswith("OK"), out


def test_bad_mode():
    with pytest.raises(ValueError, match="Unknown distribution mode"):
        TrainingCluster.create("tpu-pod")


@pytest.mark.skipif(BACKEND != "torch", reason="the other backends distribute")
def test_torch_backend_says_why_not():
    with pytest.raises(ValueError, match="TensorFlow or JAX"):
        TrainingCluster.create("gpus")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF_CONFIG is TensorFlow's")
@pytest.mark.parametrize(
    "tf_config, match",
    [
        (None, "TF_CONFIG environment variable, which is not set"),
        ("{not json", "not a valid cluster description"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
            "worker or chief",
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "outside"),
    ],
)
def test_bad_tf_config_is_explained(monkeypatch, tf_config, match):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=match):
        TrainingCluster.create("multiworker")


@pytest.mark.skipif(BACKEND != "jax", reason="KERAS_DISTRIBUTION_* is read on JAX")
def test_missing_jax_cluster_is_explained(monkeypatch):
    for name in _cluster_env.JAX_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    with pytest.raises(ValueError, match="not set: KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_"):
        TrainingCluster.create("multiworker")


def test_collective_timeout_must_be_a_number(monkeypatch):
    monkeypatch.setenv("KERAS_MINENT_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="KERAS_MINENT_COLLECTIVE_TIMEOUT"):
        _cluster_env.collective_timeout()


def test_single_process_answers_without_collectives():
    cluster = TrainingCluster.create("none")
    assert type(cluster) is TrainingCluster and cluster.strategy is None
    assert cluster.all_values(7) == [7]
    assert (cluster.num_processes, cluster.process_index, cluster.is_chief) == (1, 0, True)
    assert (cluster.num_replicas, cluster.synchronized_bn) == (1, False)
    assert not cluster.shards_data and not cluster.collective_saves
    assert cluster.barrier() is None  # returns at once: nothing to wait for
    # On one process no error is a lost peer: errors pass through unchanged.
    with pytest.raises(ConnectionResetError), cluster.peer_errors():
        raise ConnectionResetError("connection reset")


def test_peer_errors_of_a_multiworker_job_become_peer_lost(monkeypatch):
    """The conversion without a cluster: a JAX-like error message naming the peer."""
    cluster = distribute.JaxCluster.__new__(distribute.JaxCluster)
    cluster.mode = "multiworker"
    monkeypatch.setattr(distribute.JaxCluster, "num_processes", property(lambda self: 2))
    with pytest.raises(distribute.PeerLostError, match="2-process job.*Restart every worker"):
        with cluster.peer_errors():
            raise RuntimeError("first line\ngloo: connection reset by peer")
    with pytest.raises(ValueError, match="a bug"), cluster.peer_errors():
        raise ValueError("a bug")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute needs the TF backend")
def test_train_command_with_mirrored_strategy(tmp_path):
    from keras_minent.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--synthetic",
            "--synthetic-size",
            "96",
            "--batch-size",
            "44",
            "--epochs",
            "1",
            "--distribute",
            "gpus",
            "--verbose",
            "0",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    import json

    r = json.loads((out / "results.json").read_text())
    assert r["config"]["distribute"] == "gpus" and len(r["history"]["loss"]) == 1


@pytest.mark.skipif(BACKEND != "tensorflow", reason="corrects Keras's TensorFlow trainer")
def test_trainer_correction_applies_to_the_installed_keras():
    _keras_tf_trainer_fix.check_keras()  # raises if not
    _keras_tf_trainer_fix.install()
    from keras.src.backend.tensorflow import trainer as tf_trainer

    assert tf_trainer._keras_minent_fixed
    _keras_tf_trainer_fix.check_keras()  # the corrected functions keep the signatures


@pytest.mark.skipif(BACKEND != "tensorflow", reason="corrects Keras's TensorFlow trainer")
@pytest.mark.parametrize("change", ["missing", "other signature"])
def test_trainer_correction_refuses_a_keras_it_was_not_written_for(monkeypatch, change):
    """A Keras whose trainer changed: a clear error before anything is patched."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    monkeypatch.setattr(tf_trainer, "_keras_minent_fixed", False, raising=False)
    if change == "missing":
        monkeypatch.delattr(tf_trainer, "reduce_per_replica")
        what = "reduce_per_replica is missing"
    else:
        monkeypatch.setattr(
            tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build", lambda self, data: None
        )
        what = "_maybe_symbolic_build"
    original = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    with pytest.raises(_keras_tf_trainer_fix.UnsupportedKerasError) as e:
        _keras_tf_trainer_fix.install()
    message = str(e.value)
    assert what in message
    assert f"installed Keras {keras.__version__}" in message
    assert _keras_tf_trainer_fix.SUPPORTED_KERAS in message
    assert "--distribute none" in message and "KERAS_BACKEND=jax" in message
    assert tf_trainer.TensorFlowTrainer._maybe_symbolic_build is original  # nothing patched
    assert not tf_trainer._keras_minent_fixed
