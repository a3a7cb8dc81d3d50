"""Search the MIN-ENT / MIX-ENT regularizer weight with KerasTuner, from Python.

keras-tuner's own `BayesianOptimization` (or `RandomSearch`) drives this package's
`RegularizationHyperModel` (every trial trains the `train` recipe: VGG-5 with its
augmentation, Adam and the paper's learning-rate rule; the loss and its weight,
log-uniform, are the hyperparameters) on EMNIST-Letters' official split
(validation = the 10,400 images carved from training). The same search is
`python -m keras_minent tune`. Needs `pip install "keras-minent[tuning]"`.

    python examples/tune_regularization.py --trials 10 --epochs 10 --idx-dir EMNIST/raw
    python examples/tune_regularization.py --synthetic --trials 2 --epochs 1  # smoke test
"""

import argparse

import keras_tuner

from keras_minent import tuning
from keras_minent.datasets import load_data

parser = argparse.ArgumentParser()
parser.add_argument("--tuner", default="bayesian", choices=("bayesian", "random"))
parser.add_argument("--trials", type=int, default=10)
parser.add_argument("--epochs", type=int, default=10, help="epochs per trial")
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--losses", nargs="+", default=["min_ent", "mix_ent"])
parser.add_argument("--precision", default="auto", help="auto, float32, mixed_bfloat16, ...")
parser.add_argument("--idx-dir", default=None, help="folder with the four EMNIST .gz files")
parser.add_argument("--synthetic", action="store_true", help="generated images (smoke test)")
parser.add_argument("--synthetic-size", type=int, default=2600)
parser.add_argument("--output-dir", default="runs/tune_example")
args = parser.parse_args()

# The search's data and recipe options (those of `train`); the report reads them too.
config = tuning.TuneConfig(
    output_dir=args.output_dir,
    idx_dir=args.idx_dir,
    synthetic=args.synthetic,
    synthetic_size=args.synthetic_size,
    epochs=args.epochs,
    batch_size=args.batch_size,
    precision=args.precision,  # set in every trial; the global policy is restored after
)
data = load_data(config, roles=("fit", "val"))  # the test split stays unseen
(x_fit, y_fit), (x_val, y_val) = data["fit"], data["val"]

hypermodel = tuning.RegularizationHyperModel(
    losses=args.losses,
    weight_range=(1e-3, 1.0),
    recipe=config.train_config(),  # every trial: the train recipe (network, rule, metrics)
)
# Validation accuracy, never val_loss: the loss itself changes with the weight.
objective = keras_tuner.Objective("val_accuracy", direction="max")
Tuner = keras_tuner.BayesianOptimization if args.tuner == "bayesian" else keras_tuner.RandomSearch
tuner = Tuner(
    hypermodel,
    objective=objective,
    max_trials=args.trials,
    directory=args.output_dir,
    project_name="search",  # run again with the same --output-dir to resume
    seed=1,  # not 0: keras-tuner 1.4 reads seed=0 as "no seed"
)
tuner.search(
    x_fit,
    y_fit,
    validation_data=(x_val, y_val),
    epochs=config.epochs,
    batch_size=config.batch_size,
    verbose=2,
)
# The package's report: trials.json, best_hyperparameters.json, objective.png and the
# `train` command for the final model.
result = tuning.report(tuner, config)
print("best:", result["best"])
