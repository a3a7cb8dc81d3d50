"""The main job: train VGG-5 (or Spinal-VGG-5) on EMNIST-Letters with the paper's recipe.

`train(TrainConfig(...))` does one run; `train_seeds` several; `reproduce` the
paper's table. Every run writes to its output directory:

* `checkpoint.keras` + `state.json` after every epoch: a run started again
  with the same directory continues from the last finished epoch;
* `best.keras`: the model of the selected epoch (loads after `import keras_minent`);
* `results.json`, `curves.png` and TensorBoard logs (`logs/`).

Selection is honest by default: the epoch with the best validation accuracy
(a split carved from the training images) is chosen and its test accuracy
reported. `selection="test"` reproduces the paper's protocol (best test
accuracy over epochs), which is optimistic and labelled so everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import tempfile
import time
from typing import Any

import keras
import numpy as np

import keras_minent
from keras_minent import calibration, models
from keras_minent import losses as losses_lib
from keras_minent.metrics import ExpectedCalibrationError, PredictiveEntropy

LOSSES = ("ce", "min_ent", "mix_ent")
MODELS = models.BUILDERS
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SYNTHETIC_NOTE = "SYNTHETIC DATA: these numbers are meaningless (smoke test only)"
OPTIMISTIC_NOTE = "paper protocol: best TEST accuracy over epochs (optimistic, selected on test)"

#: The paper's reported accuracies (%), PAPER.md section 5.
PAPER_RESULTS = {
    "vgg5/ce": 95.86,
    "spinal_vgg5/ce": 95.88,
    "vgg5/min_ent": 95.933,
    "vgg5/mix_ent": 95.927,
}


@dataclasses.dataclass
class DataOptions:
    """Where the data and the outputs of a run (or a search) are.

    Attributes:
        output_dir: Where checkpoints and results go.
        data_dir: tfds data directory.
        idx_dir: Directory of the four official `.gz` files.
        download: Whether the dataset may be downloaded.
        synthetic: Generated images instead of EMNIST (smoke test).
        synthetic_size: Number of generated training images.
        verbose: Keras verbosity (`"auto"`, 0, 1, 2).
    """

    output_dir: str = "runs/emnist_letters"
    data_dir: str | None = None
    idx_dir: str | None = None
    download: bool = True
    synthetic: bool = False
    synthetic_size: int = 2600
    verbose: Any = "auto"


@dataclasses.dataclass
class TrainConfig(DataOptions):
    """Everything that defines a run. Defaults are the paper's recipe (PAPER.md section 4).

    Attributes:
        loss: `"ce"`, `"min_ent"` or `"mix_ent"`.
        paper_loss_settings: Use the paper's published weights and log bases.
        reg_weight: Weight of the regularizer (entropy or swapped term);
            None for the loss's default.
        ce_weight: Weight of the cross entropy term.
        ce_log_base: Log base of the cross entropy term.
        reg_log_base: Log base of the regularizer.
        epsilon: MIX-ENT's epsilon.
        label_smoothing: Label smoothing of the target.
        model: `"vgg5"` or `"spinal_vgg5"`.
        dropout: Dropout of the head (SpinalNet's script: 0.5).
        augment: The recipe's rotation and perspective augmentation.
        epochs: Number of epochs (paper: 200).
        batch_size: Batch size (paper: 100).
        learning_rate: Adam's learning rate (paper: 0.005).
        lr_rule: `"paper"` (after an epoch without improvement the rate
            becomes `learning_rate * u**3`, `u ~ U(0, 1)`) or `"constant"`.
        seed: Seed of weights, data order, augmentation and the LR rule.
        selection: `"validation"` (honest) or `"test"` (paper, optimistic).
        precision: `"auto"`, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        jit_compile: `"auto"`, True or False (XLA).
        distribute: `"none"`, `"gpus"` (all local GPUs) or `"multiworker"`
            (several machines, the cluster from the environment; the output
            directory must be shared); see `keras_minent.distribute`.
            `batch_size` is the global batch.
        steps_per_execution: Training steps per compiled call; `"auto"`: 8 on
            a GPU (small batches are launch-bound there: measured 1.35x more
            images/s on an H200 at batch 100), 1 on a CPU.
        (and the data options of `DataOptions`)
    """

    loss: str = "min_ent"
    paper_loss_settings: bool = False
    reg_weight: float | None = None
    ce_weight: float = 1.0
    ce_log_base: float = math.e
    reg_log_base: float = math.e
    epsilon: float = 1e-6
    label_smoothing: float = 0.0
    model: str = "vgg5"
    dropout: float = 0.5
    augment: bool = True
    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 0.005
    lr_rule: str = "paper"
    seed: int = 0
    selection: str = "validation"
    precision: str = "auto"
    jit_compile: Any = "auto"
    steps_per_execution: Any = "auto"
    distribute: str = "none"

    def __post_init__(self):
        checks = [
            (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
            (self.model in MODELS, f"model must be one of {tuple(MODELS)}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.selection in ("validation", "test"), "selection must be validation or test"),
            (
                self.distribute in ("none", "gpus", "multiworker"),
                "distribute must be none, gpus or multiworker",
            ),
            (self.lr_rule in ("paper", "constant"), "lr_rule must be paper or constant"),
            (self.jit_compile in ("auto", True, False), "jit_compile must be auto/True/False"),
            (
                self.steps_per_execution == "auto"
                or (isinstance(self.steps_per_execution, int) and self.steps_per_execution >= 1),
                "steps_per_execution must be auto or an integer >= 1",
            ),
            (int(self.epochs) >= 1, "epochs must be >= 1"),
            (int(self.batch_size) >= 1, "batch_size must be >= 1"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.synthetic_size >= 52, "synthetic_size must be >= 52"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Invalid TrainConfig: {message}.")
        self.build_loss()  # validates the loss hyperparameters now, not after data loading

    def build_loss(self) -> keras.losses.Loss:
        """The configured loss (always `from_logits=True`: the models output logits).

        `"ce"` is `MinEntLoss(entropy_weight=0)`, which equals
        `keras.losses.CategoricalCrossentropy` exactly and takes integer labels.
        """
        common = {"from_logits": True, "label_smoothing": self.label_smoothing}
        if self.loss == "ce":
            return losses_lib.MinEntLoss(
                entropy_weight=0.0, ce_weight=1.0, name="cross_entropy", **common
            )
        cls = losses_lib.MinEntLoss if self.loss == "min_ent" else losses_lib.MixEntLoss
        if self.loss == "mix_ent":
            common["epsilon"] = self.epsilon
        if self.paper_loss_settings:
            return cls.from_paper(**common)
        reg = {"min_ent": "entropy", "mix_ent": "swapped"}[self.loss]
        kwargs = {
            "ce_weight": self.ce_weight,
            "ce_log_base": self.ce_log_base,
            f"{reg}_log_base": self.reg_log_base,
            **common,
        }
        if self.reg_weight is not None:
            kwargs[f"{reg}_weight"] = self.reg_weight
        return cls(**kwargs)


class PaperLearningRateRule(keras.callbacks.Callback):
    """The recipe's learning-rate rule, seeded and resumable.

    After every epoch whose `monitor` does not improve on the best so far,
    the learning rate becomes `base_lr * u**3` with `u ~ U(0, 1)` drawn from a
    generator seeded by `seed`; after an improving epoch it stays as it is.

    Args:
        base_lr: The base learning rate (paper: 0.005).
        monitor: The metric that must improve (higher is better).
        seed: Seed of the generator.

    Example:
    ```python
    model.fit(..., callbacks=[PaperLearningRateRule(0.005, seed=0)])
    ```
    """

    def __init__(self, base_lr: float, monitor: str = "val_accuracy", seed: int = 0):
        super().__init__()
        self.base_lr = float(base_lr)
        self.monitor = monitor
        self.rng = np.random.default_rng(seed)
        self.best = -math.inf

    def next_rate(self, value: float) -> float | None:
        """Updates the rule with an epoch's metric; returns the new rate or None."""
        if value > self.best:
            self.best = value
            return None
        return self.base_lr * float(self.rng.uniform()) ** 3

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.monitor not in logs:
            raise KeyError(f"PaperLearningRateRule: {self.monitor!r} not in logs {list(logs)}")
        rate = self.next_rate(float(logs[self.monitor]))
        if rate is not None:
            self.model.optimizer.learning_rate.assign(rate)
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )

    def get_state(self) -> dict:
        return {"best": self.best, "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.best = state["best"]
        self.rng.bit_generator.state = state["rng"]


def _write_json(path: str, payload: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"  # unique: several workers may share the directory
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _seed_variables(model: keras.Model) -> list:
    """The random-state variables of dropout and augmentation layers.

    `model.save` does not store them, so `RunState` does: without them a
    resumed run would draw other dropout masks and augmentations.
    """
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def get_seed_states(model: keras.Model) -> list[list[int]]:
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_variables(model)]


def set_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    variables = _seed_variables(model)
    if len(variables) != len(states):
        raise ValueError("The checkpoint's random states do not match the model.")
    for v, value in zip(variables, states):
        v.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(v.dtype)))


class RunState(keras.callbacks.Callback):
    """Saves `checkpoint.keras`, `best.keras` and `state.json` after every epoch.

    The state holds the finished epochs' history, the best epoch so far and
    the learning-rate rule's state, so that a restarted run continues
    exactly where the last finished epoch left it.
    """

    def __init__(
        self,
        output_dir: str,
        monitor: str,
        lr_rule: PaperLearningRateRule | None,
        writes: bool = True,
        collective_saves: bool = False,
    ):
        super().__init__()
        self.dir = output_dir
        self.writes = writes  # False on non-chief workers: they read the chief's state
        # Multi-process JAX: saving is a collective, so the other processes
        # save too, into a scratch directory.
        self.collective_saves = collective_saves
        self.monitor = monitor
        self.lr_rule = lr_rule
        self.history: dict[str, list[float]] = {}
        self.best_epoch = -1
        self.best_value = -math.inf
        self.epoch_times: list[float] = []
        self.seed_states: list | None = None
        self._t0 = 0.0

    @property
    def state_path(self) -> str:
        return os.path.join(self.dir, "state.json")

    def load(self) -> int:
        """Restores the state; returns the number of finished epochs (0 if none)."""
        if not os.path.isfile(self.state_path):
            return 0
        with open(self.state_path) as f:
            state = json.load(f)
        self.history = state["history"]
        self.best_epoch, self.best_value = state["best_epoch"], state["best_value"]
        self.epoch_times = state["epoch_times"]
        self.seed_states = state["seed_states"]
        if self.lr_rule is not None and state.get("lr_rule"):
            self.lr_rule.set_state(state["lr_rule"])
        return int(state["epochs_done"])

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times.append(time.perf_counter() - self._t0)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        value = float(logs[self.monitor])
        improved = value > self.best_value
        if improved:
            self.best_value, self.best_epoch = value, epoch
        if not self.writes:
            if self.collective_saves:
                with tempfile.TemporaryDirectory() as scratch:
                    for name in ("best.keras",) * improved + ("checkpoint.keras",):
                        self.model.save(os.path.join(scratch, name))
                    get_seed_states(self.model)
            return
        if improved:
            self.model.save(os.path.join(self.dir, "best.keras.tmp.keras"))
            os.replace(
                os.path.join(self.dir, "best.keras.tmp.keras"),
                os.path.join(self.dir, "best.keras"),
            )
        tmp = os.path.join(self.dir, "checkpoint.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, os.path.join(self.dir, "checkpoint.keras"))
        _write_json(
            self.state_path,
            {
                "epochs_done": epoch + 1,
                "history": self.history,
                "best_epoch": self.best_epoch,
                "best_value": self.best_value,
                "epoch_times": self.epoch_times,
                "seed_states": get_seed_states(self.model),
                "lr_rule": self.lr_rule.get_state() if self.lr_rule else None,
            },
        )


# ------------------------------------------------------------------ devices


def accelerator() -> dict[str, Any]:
    """The first accelerator Keras's backend sees: `{"kind", "name", "capability"}`."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform == "gpu":
                cap = getattr(dev, "compute_capability", None)
                return {"kind": "gpu", "name": dev.device_kind, "capability": cap}
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                major, minor = torch.cuda.get_device_capability(0)
                cap = f"{major}.{minor}"
                return {"kind": "gpu", "name": torch.cuda.get_device_name(0), "capability": cap}
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                cap = details.get("compute_capability")
                cap = ".".join(map(str, cap)) if cap else None
                return {"kind": "gpu", "name": details.get("device_name"), "capability": cap}
    except Exception:  # a broken driver is reported as "cpu"
        pass
    return {"kind": "cpu", "name": platform.processor() or platform.machine(), "capability": None}


def resolve_precision(precision: str, device: dict | None = None) -> str:
    """`"auto"`: mixed_bfloat16 on GPUs with compute capability >= 8.0,
    mixed_float16 (with loss scaling) on older GPUs, float32 on CPU."""
    if precision != "auto":
        return precision
    device = device or accelerator()
    if device["kind"] != "gpu":
        return "float32"
    cap = device.get("capability")
    major = int(str(cap).split(".")[0]) if cap else 0
    return "mixed_bfloat16" if major >= 8 else "mixed_float16"


# ------------------------------------------------------------------ data


def load_data(
    config: DataOptions,
    selection: str = "validation",
    roles: tuple[str, ...] = ("fit", "val", "test"),
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The arrays of a run: `{"fit", "val", "test"}` (only `roles`) as `(images, labels)`.

    With `selection="test"` (the paper's protocol) "fit" is the whole training
    split and "val" the test split; otherwise "fit" is the training split
    without the validation carve-out and "val" that carve-out. `--synthetic`
    data are generated once into the output directory.
    """
    from keras_minent import datasets

    output_dir = config.output_dir
    data_dir, idx_dir, download = config.data_dir, config.idx_dir, config.download
    if config.synthetic:
        from keras_minent.datasets import idx

        raw = os.path.join(output_dir, "synthetic_raw")
        if idx.missing_files(raw):
            n = config.synthetic_size
            idx.write_official_files(
                raw,
                {"train": idx.synthetic_letters(n, 1), "test": idx.synthetic_letters(n // 6, 2)},
            )
        data_dir, idx_dir, download = os.path.join(output_dir, "synthetic_tfds"), raw, False
    splits = {
        "fit": "train" if selection == "test" else "train_without_validation",
        "val": "test" if selection == "test" else "validation",
        "test": "test",
    }
    return {
        role: datasets.load_arrays(splits[role], data_dir, idx_dir, download) for role in roles
    }


# ------------------------------------------------------------------ training


def _config_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)


def versions() -> dict[str, str]:
    """Versions of Python, Keras, the backend and keras-minent."""
    out = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_minent": keras_minent.__version__,
        "backend": keras.backend.backend(),
    }
    for name in ("tensorflow", "jax", "torch", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:
            pass
    return out


def train(config: TrainConfig) -> dict[str, Any]:
    """Trains one run (resuming it if its output directory holds one).

    Args:
        config: The run's configuration.

    Returns:
        The results (also written to `results.json`).

    Raises:
        ValueError: If an existing output directory holds a different configuration.
        EmnistDataError: If the data cannot be found or is corrupt.
    """
    out = config.output_dir
    os.makedirs(out, exist_ok=True)
    config_path = os.path.join(out, "config.json")
    config_dict = _config_dict(config)
    if os.path.isfile(config_path):
        with open(config_path) as f:
            old = json.load(f)
        ignore = {
            "verbose",
            "output_dir",
            "epochs",
            "data_dir",
            "idx_dir",
            "download",
            "steps_per_execution",
            "jit_compile",
        }
        diff = {k for k in config_dict if k not in ignore and old.get(k) != config_dict[k]}
        if diff:
            raise ValueError(
                f"{out} holds a run with a different configuration ({sorted(diff)}). "
                "Use another --output-dir, or delete it to start over."
            )
    _write_json(config_path, config_dict)

    from keras_minent.distribute import Distribution

    dist = Distribution(config.distribute)  # before any other TensorFlow work
    device = accelerator()
    precision = resolve_precision(config.precision, device)
    keras.config.set_dtype_policy(precision)
    # Several processes may share the data and output directories: the chief
    # prepares (downloads, converts, generates) the data first.
    if dist.is_chief:
        data = load_data(config, config.selection)
    dist.barrier()
    if not dist.is_chief:
        data = load_data(config, config.selection)
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = data["fit"], data["val"], data["test"]

    from keras_minent import datasets

    monitor = "val_accuracy"
    lr_rule = (
        PaperLearningRateRule(config.learning_rate, monitor, seed=config.seed)
        if config.lr_rule == "paper"
        else None
    )
    state = RunState(
        out, monitor, lr_rule, writes=dist.is_chief, collective_saves=dist.collective_saves
    )
    initial_epoch = state.load()
    seen = dist.all_values(initial_epoch)
    if len(set(seen)) > 1:
        raise ValueError(
            f"The workers would resume from different epochs {seen} (process order): "
            f"every worker must see the chief's {out} (a shared filesystem), "
            "or all must start from an empty output directory."
        )
    checkpoint = os.path.join(out, "checkpoint.keras")
    keras.utils.set_random_seed(config.seed)
    with dist.scope():
        model, initial_epoch = _build_or_resume(
            config, device, state, checkpoint, initial_epoch, dist.synchronized_bn
        )
    callbacks: list = [cb for cb in (lr_rule, state) if cb is not None]
    if dist.is_chief:
        try:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs")))
        except Exception:  # pragma: no cover - TensorBoard needs TensorFlow
            pass
    note = SYNTHETIC_NOTE if config.synthetic else None
    if note:
        print(f"*** {note} ***")
    # Distributed: full batches only, so each splits evenly across replicas/processes.
    distributed = config.distribute != "none"
    t0 = time.perf_counter()
    if initial_epoch < config.epochs:
        with dist.peer_errors():
            model.fit(
                datasets.training_dataset(
                    x_fit,
                    y_fit,
                    config.batch_size,
                    config.seed,
                    config.epochs,
                    initial_epoch,
                    drop_remainder=distributed,
                    shard=(dist.process_index, dist.num_processes) if dist.shards_data else None,
                ),
                steps_per_epoch=datasets.steps_per_epoch(
                    len(x_fit), config.batch_size, distributed
                ),
                validation_data=datasets.evaluation_dataset(x_val, y_val, 1000),
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                shuffle=False,  # the dataset is already shuffled, per (seed, epoch)
                verbose=config.verbose,
            )
    wall = time.perf_counter() - t0
    if not dist.is_chief:
        print("Worker finished; the chief writes the results.")
        return {"history": state.history, "chief": False}
    dist.local_only()  # the chief evaluates alone
    return _finish(
        config,
        out,
        state,
        note,
        wall,
        precision,
        device,
        config_dict,
        (x_fit, (x_val, y_val), (x_test, y_test)),
    )


def _build_or_resume(config, device, state, checkpoint, initial_epoch, synchronized_bn):
    """The model: from the last checkpoint if there is one, else new and compiled."""
    if initial_epoch and os.path.isfile(checkpoint):
        model = keras.saving.load_model(checkpoint)
        set_seed_states(model, state.seed_states)
        print(f"Resuming {config.output_dir} after epoch {initial_epoch}.")
        return model, initial_epoch
    model = MODELS[config.model](
        dropout=config.dropout,
        augment=config.augment,
        seed=config.seed,
        synchronized_bn=synchronized_bn,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=config.build_loss(),
        metrics=["accuracy", PredictiveEntropy(), ExpectedCalibrationError()],
        jit_compile=config.jit_compile,
        steps_per_execution=(
            (8 if device["kind"] == "gpu" else 1)
            if config.steps_per_execution == "auto"
            else config.steps_per_execution
        ),
    )
    return model, 0


def _finish(config, out, state, note, wall, precision, device, config_dict, data):
    """Evaluates the selected model, writes results.json and the plots (chief only)."""
    from keras_minent import datasets

    x_fit, (x_val, y_val), (x_test, y_test) = data
    best = keras.saving.load_model(os.path.join(out, "best.keras"))
    test_loss, test_acc = best.evaluate(
        datasets.evaluation_dataset(x_test, y_test, 1000), verbose=0, return_dict=False
    )[:2]
    cal = _calibration_report(best, (x_val, y_val), (x_test, y_test), out, _title(config, note))
    hist = state.history
    epochs_run = len(state.epoch_times)
    train_time = float(sum(state.epoch_times))
    results = {
        "note": note,
        "selection": (
            OPTIMISTIC_NOTE
            if config.selection == "test"
            else "best validation accuracy (validation split carved from training)"
        ),
        "selected_epoch": state.best_epoch + 1,
        "val_accuracy": hist["val_accuracy"][state.best_epoch],
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        **cal,
        "epochs": epochs_run,
        "train_seconds": train_time,
        "wall_seconds_this_session": wall,
        "images_per_second": epochs_run * len(x_fit) / train_time if train_time else None,
        "num_examples": {"fit": len(x_fit), "val": len(x_val), "test": len(x_test)},
        "precision": precision,
        "device": device,
        "versions": versions(),
        "config": config_dict,
        "loss_config": keras.losses.serialize(config.build_loss()),
        "history": hist,
    }
    _write_json(os.path.join(out, "results.json"), results)
    plot_curves(hist, os.path.join(out, "curves.png"), title=_title(config, note))
    print_summary([results])
    return results


def _calibration_report(best, val, test, out: str, title: str) -> dict[str, float]:
    """Test-set ECE and entropy (with plots), and temperature scaling fitted on validation."""
    test_logits = np.asarray(best.predict(test[0], batch_size=1000, verbose=0), np.float64)
    calibrated, report = calibration.calibrate(best, *val)
    calibrated.save(os.path.join(out, "best_calibrated.keras"))
    t = report["temperature"]
    return {
        "test_ece": calibration.plot_reliability(
            test_logits, test[1], os.path.join(out, "reliability.png"), title=title
        ),
        "test_mean_entropy": calibration.plot_entropy_histogram(
            test_logits, os.path.join(out, "entropy_histogram.png"), title=title
        ),
        "temperature": t,
        "test_ece_after_temperature": calibration.ece(test_logits / t, test[1])[0],
        "test_nll": calibration.nll(test_logits, test[1]),
        "test_nll_after_temperature": calibration.nll(test_logits, test[1], t),
    }


def _title(config: TrainConfig, note: str | None) -> str:
    title = f"{config.model} + {config.loss} (seed {config.seed})"
    return f"{title}\n{note}" if note else title


def plot_curves(history: dict, path: str, title: str = "") -> None:
    """Writes loss, accuracy and learning-rate curves per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history:
            axes[0].plot(epochs, history[key], label=label)
    axes[0].set(title="loss", xlabel="epoch")
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        if key in history:
            axes[1].plot(epochs, history[key], label=label)
    axes[1].set(title="accuracy", xlabel="epoch")
    if "learning_rate" in history:
        axes[2].semilogy(epochs, history["learning_rate"])
    axes[2].set(title="learning rate", xlabel="epoch")
    for ax in axes[:2]:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_summary(rows: list[dict]) -> None:
    """Prints a short table of runs."""
    print()
    print(
        f"{'run':<34} {'epoch':>5} {'val acc':>8} {'test acc':>8} {'ECE %':>6} "
        f"{'H nats':>7} {'time s':>8} {'img/s':>8}"
    )
    for r in rows:
        c = r["config"]
        name = f"{c['model']}+{c['loss']} seed {c['seed']}"
        print(
            f"{name:<34} {r['selected_epoch']:>5} {100 * r['val_accuracy']:>8.3f} "
            f"{100 * r['test_accuracy']:>8.3f} {100 * r['test_ece']:>6.2f} "
            f"{r['test_mean_entropy']:>7.4f} {r['train_seconds']:>8.1f} "
            f"{r['images_per_second'] or 0:>8.0f}"
        )
    notes = {r["selection"] for r in rows} | {r["note"] for r in rows if r["note"]}
    for n in sorted(notes):
        print(f"  ({n})")


def summarize_seeds(accuracies: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation and 95% t-interval of test accuracies."""
    a = np.asarray(accuracies, np.float64)
    n = len(a)
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        try:
            from scipy.stats import t

            q = float(t.ppf(0.975, n - 1))
        except ImportError:  # normal approximation
            q = 1.959964
        half = q * std / math.sqrt(n)
    else:
        half = float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def train_seeds(config: TrainConfig, num_seeds: int) -> dict[str, Any]:
    """Runs seeds `config.seed .. config.seed + num_seeds - 1`, each in `seed_<k>/`.

    Returns:
        Per-seed results and the summary of their test accuracies (also in
        `seeds.json` in the output directory).
    """
    runs = []
    for k in range(num_seeds):
        seed = config.seed + k
        sub = dataclasses.replace(
            config, seed=seed, output_dir=os.path.join(config.output_dir, f"seed_{seed}")
        )
        runs.append(train(sub))
    if not all(r.get("chief", True) for r in runs):
        return {"summary": None, "runs": runs, "chief": False}  # the chief summarizes
    summary = summarize_seeds([r["test_accuracy"] for r in runs])
    summary["test_ece_mean"] = float(np.mean([r["test_ece"] for r in runs]))
    summary["test_mean_entropy_mean"] = float(np.mean([r["test_mean_entropy"] for r in runs]))
    payload = {"summary": summary, "runs": [{k: r[k] for k in r if k != "history"} for r in runs]}
    _write_json(os.path.join(config.output_dir, "seeds.json"), payload)
    print_summary(runs)
    print(
        f"test accuracy over {summary['n']} seeds: {100 * summary['mean']:.3f} "
        f"+- {100 * summary['std']:.3f} (95% CI {100 * summary['ci95_low']:.3f}"
        f"..{100 * summary['ci95_high']:.3f})"
    )
    return payload


def reproduce(config: TrainConfig, num_seeds: int = 1) -> list[dict]:
    """Trains the paper's four configurations and prints ours next to the paper's.

    VGG-5 + CE, Spinal-VGG-5 + CE, VGG-5 + MIN-ENT and VGG-5 + MIX-ENT (the
    last two with the paper's published loss settings), each in its own
    subdirectory of `config.output_dir`.
    """
    rows = []
    for key in PAPER_RESULTS:
        model, loss = key.split("/")
        sub = dataclasses.replace(
            config,
            model=model,
            loss=loss,
            paper_loss_settings=loss != "ce",
            output_dir=os.path.join(config.output_dir, key.replace("/", "_")),
        )
        result = train_seeds(sub, num_seeds)
        if not result.get("chief", True):
            continue
        rows.append({"config": key, "paper": PAPER_RESULTS[key], **result["summary"]})
    if not rows:  # a worker of a multi-worker job: the chief writes the table
        return rows
    print()
    print(
        f"{'configuration':<20} {'paper %':>8} {'ours %':>8} {'std':>6} {'n':>3} "
        f"{'ECE %':>6} {'H nats':>7}"
    )
    for r in rows:
        print(
            f"{r['config']:<20} {r['paper']:>8.3f} {100 * r['mean']:>8.3f} "
            f"{100 * r['std'] if r['n'] > 1 else float('nan'):>6.3f} {r['n']:>3} "
            f"{100 * r['test_ece_mean']:>6.2f} {r['test_mean_entropy_mean']:>7.4f}"
        )
    print(f"  (paper: {OPTIMISTIC_NOTE}; ours: selection={config.selection})")
    if config.synthetic:
        print(f"  ({SYNTHETIC_NOTE})")
    _write_json(os.path.join(config.output_dir, "reproduce.json"), rows)
    return rows
