"""`python -m keras_minent evaluate`: a model file's test accuracy, calibration and entropy.

The model is a `.keras` file this package wrote (`best.keras`, `inference.keras`, ...),
one of the paper's PyTorch checkpoints (`keras_minent.paper_checkpoint`), or
`paper:min_ent` / `paper:mix_ent` / `paper:ce` (downloaded and verified by
`keras_minent.paper_files`). It is evaluated on the test split of the chosen data
(EMNIST-Letters' official split by default) and `results.json`, `reliability.png` and
`entropy_histogram.png` go to the output directory.

A model with 62 outputs (the paper's checkpoints, or `train --head paper`) is read
out two ways on EMNIST-Letters: the 26 letter outputs 1..26 (this package's labels
0..25; the main numbers) and the author's argmax over all 62 outputs against labels
1..26 (`test_accuracy_62way`, with the count of images whose 62-way argmax is not a
letter).
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

from keras_minent import calibration, paper_checkpoint, paper_files
from keras_minent.datasets import idx, sources
from keras_minent.datasets.selection import load_data_with_record
from keras_minent.training import devices, reporting
from keras_minent.training.config import ConfigError, EvaluateConfig
from keras_minent.training.files import output_errors, write_json


def _load_model(config: EvaluateConfig) -> tuple[keras.Model, dict[str, Any]]:
    """The model and what `results.json` says of its file."""
    spec = config.checkpoint
    paper_name = spec.startswith(paper_files.PREFIX)
    path = (
        paper_files.paper_checkpoint_file(spec, config.data_dir, config.download)
        if paper_name
        else spec
    )
    if not os.path.isfile(path):
        raise ConfigError(f"--checkpoint {path}: no such file.")
    info: dict[str, Any] = {"checkpoint": spec, "path": os.path.abspath(path)}
    info["sha256"] = idx.sha256_of(path)
    if path.endswith(".keras"):
        info["kind"] = "keras"
        try:
            model = keras.saving.load_model(path)
        except Exception as e:
            text = " ".join(str(e).split())[:200]
            raise ConfigError(f"--checkpoint {path}: not a loadable .keras model ({text}).") from e
        return model, info
    ckpt = paper_checkpoint.read_paper_checkpoint(path)
    expected, matched = paper_files.known_blob_id(path)
    info.update(
        kind="paper",
        git_blob_id=paper_files.git_blob_id(path),
        published_git_blob_id=expected,
        git_blob_id_matches=matched,
        architecture=ckpt.architecture,
        loss_weights=ckpt.loss_weights,
        checkpoint_entries=ckpt.extra,
    )
    return paper_checkpoint.paper_model(ckpt, all_outputs=True), info


def _logits(model: keras.Model, images: np.ndarray) -> np.ndarray:
    out = np.asarray(model.predict(images, batch_size=1000, verbose=0), np.float64)
    if any(layer.name == "probabilities" for layer in model.layers):
        out = np.log(np.clip(out, 1e-30, None))  # a softmax model: log-probabilities
    return out


def readout(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """The letters' logits and the 62-way readout of a model's outputs.

    Args:
        logits: `(n, k)`: `k == num_classes`, or 62 for EMNIST-Letters' 26 classes.
        labels: Class ids 0..num_classes-1.
        num_classes: The data's classes.

    Returns:
        `{"logits": (n, num_classes) logits, ...}`, with `test_accuracy_62way`
        (argmax over all 62 against labels + 1) and `outside_letters` (images
        whose 62-way argmax is not 1..26) for a 62-output model.

    Raises:
        ConfigError: If the outputs do not fit the data's classes.
    """
    k = logits.shape[-1]
    if k == num_classes:
        return {"logits": logits, "outputs": k}
    if k == paper_checkpoint.PAPER_OUTPUTS and num_classes == 26:
        top = logits.argmax(-1)
        letters = (top >= 1) & (top <= 26)
        return {
            "logits": logits[:, paper_checkpoint.LETTER_OUTPUTS],
            "outputs": k,
            "test_accuracy_62way": float(np.mean(top == labels + 1)),
            "outside_letters": int((~letters).sum()),
        }
    raise ConfigError(
        f"The model has {k} outputs and the data {num_classes} classes: evaluate it on its "
        "own data (--dataset); 62 outputs fit EMNIST-Letters' 26 (outputs 1..26)."
    )


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Evaluates a model file on the test split and writes its report.

    Args:
        config: The model file and the data.

    Returns:
        The results, also written to `results.json`: test accuracy and its
        standard error `sqrt(p (1 - p) / n)`, ECE (15 bins), mean predictive
        entropy (nats), NLL, the file's SHA-256, and for a paper checkpoint its
        git blob id (and whether it is the published one), architecture, loss
        weights, the 62-way accuracy and the count of 62-way predictions that
        are not letters.

    Raises:
        ConfigError: If the model does not fit the data.
        PaperCheckpointError: If a checkpoint cannot be read or verified.
        DataError: If the data cannot be found or is corrupt.
        OutputError: If the outputs cannot be written.
    """
    with output_errors(config.output_dir):
        return _evaluate(config)


def _evaluate(config: EvaluateConfig) -> dict[str, Any]:
    model, info = _load_model(config)
    os.makedirs(config.output_dir, exist_ok=True)
    data, record = load_data_with_record(config, roles=("test",))
    images, labels = data["test"]
    num_classes = record.num_classes
    shape = tuple(model.input_shape[1:])
    if shape != tuple(images.shape[1:]):
        raise ConfigError(
            f"--checkpoint {config.checkpoint} takes images of shape {shape}; the data's are "
            f"{tuple(images.shape[1:])}."
        )
    entry = record.to_json()
    read = readout(_logits(model, images), labels, num_classes)
    logits = read.pop("logits")
    p, n = float(np.mean(logits.argmax(-1) == labels)), len(labels)
    results = {
        # the note names the data by their source, not the entry's description
        "note": reporting.note(config, {**entry, "description": None}),
        **info,
        "data": entry,
        "num_examples": n,
        "test_accuracy": p,
        "test_accuracy_se": math.sqrt(p * (1 - p) / n),
        **read,
        "test_ece": calibration.ece(logits, labels)[0],
        "test_mean_entropy": float(calibration.entropies(logits).mean()),
        "test_nll": calibration.nll(logits, labels),
        "versions": devices.versions(),
    }
    if info["kind"] == "paper" and record.kind == sources.EMNIST_LETTERS:
        reported = {f: acc for f, _, acc in paper_files.PAPER_FILES.values()}
        results["paper_reported_accuracy"] = reported.get(os.path.basename(info["path"]))
    out = config.output_dir
    write_json(os.path.join(out, "results.json"), results)
    title = f"{os.path.basename(info['path'])} on {config.dataset}"
    if results["note"]:
        title += f"\n{results['note']}"
    reporting.plot_calibration(logits, labels, out, title)
    print_evaluation(results)
    return results


def print_evaluation(r: dict[str, Any]) -> None:
    """Prints the console table of `evaluate`'s results."""
    rows = [
        ("checkpoint", r["checkpoint"]),
        ("SHA-256", r["sha256"]),
    ]
    if r["kind"] == "paper":
        match = {True: "matches the published id", False: "NOT the published id", None: ""}
        rows += [
            ("git blob id", f"{r['git_blob_id']} {match[r['git_blob_id_matches']]}".strip()),
            ("architecture", r["architecture"]),
            (
                "loss weights",
                ", ".join(f"{k} {v:.6g}" for k, v in r["loss_weights"].items()) or "none",
            ),
        ]
    rows += [
        ("data", f"{r['data'].get('description') or r['data'].get('source')} (test split)"),
        ("test images", str(r["num_examples"])),
        (
            "test accuracy %",
            f"{100 * r['test_accuracy']:.3f} +- {100 * r['test_accuracy_se']:.3f} (1 s.e.)",
        ),
    ]
    if "test_accuracy_62way" in r:
        rows += [
            ("62-way accuracy %", f"{100 * r['test_accuracy_62way']:.3f} (argmax over 62)"),
            ("62-way not a letter", str(r["outside_letters"])),
        ]
    if r.get("paper_reported_accuracy") is not None:
        rows.append(("paper reports %", f"{r['paper_reported_accuracy']:.3f}"))
    rows += [
        ("ECE %", f"{100 * r['test_ece']:.2f}"),
        ("mean entropy nats", f"{r['test_mean_entropy']:.4f}"),
        ("NLL nats", f"{r['test_nll']:.4f}"),
    ]
    print()
    for name, value in rows:
        print(f"{name:<20} {value}")
    if r["note"]:
        print(f"  ({r['note']})")
