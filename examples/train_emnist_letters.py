"""Train VGG-5 with MIN-ENT on EMNIST-Letters through the Python API.

The same as `python -m keras_minent train`; the library does the work.

    python examples/train_emnist_letters.py --epochs 5            # real data
    python examples/train_emnist_letters.py --synthetic --epochs 2  # smoke test
"""

import argparse

from keras_minent.training import TrainConfig, train

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--loss", default="min_ent", choices=("ce", "min_ent", "mix_ent"))
parser.add_argument("--idx-dir", default=None, help="folder with the four EMNIST .gz files")
parser.add_argument("--synthetic", action="store_true")
parser.add_argument("--synthetic-size", type=int, default=2600, help="with --synthetic")
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--output-dir", default="runs/example")
args = parser.parse_args()

config = TrainConfig(
    loss=args.loss,
    paper_loss_settings=True,  # the paper's published weights and log bases
    epochs=args.epochs,
    idx_dir=args.idx_dir,
    synthetic=args.synthetic,
    synthetic_size=args.synthetic_size,  # refused without --synthetic
    batch_size=args.batch_size,
    output_dir=args.output_dir,
)
results = train(config)  # resumes if output_dir holds an unfinished run
print(f"test accuracy at epoch {results['selected_epoch']}: {results['test_accuracy']:.4f}")
