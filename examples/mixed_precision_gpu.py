"""Train VGG-5 with MIN-ENT in mixed precision, set explicitly with `keras.mixed_precision`.

On a GPU with compute capability >= 8.0 (A100, H100, RTX 30xx/40xx) use
`mixed_bfloat16`; on older GPUs `mixed_float16` (Keras then wraps the optimizer in a
`LossScaleOptimizer`). The model's logits and the loss stay float32. The global
policy is put back afterwards. It also runs on a CPU (slowly: bfloat16 is emulated).

    KERAS_BACKEND=jax python examples/mixed_precision_gpu.py --epochs 5 --idx-dir EMNIST/raw
    python examples/mixed_precision_gpu.py --synthetic --epochs 1  # smoke test, any device
"""

import argparse

import keras

import keras_minent
from keras_minent.datasets import evaluation_dataset, load_data
from keras_minent.training import DataOptions, accelerator

parser = argparse.ArgumentParser()
parser.add_argument(
    "--policy", default="mixed_bfloat16", choices=("mixed_bfloat16", "mixed_float16")
)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--idx-dir", default=None, help="folder with the four EMNIST .gz files")
parser.add_argument("--synthetic", action="store_true", help="generated images (smoke test)")
parser.add_argument("--synthetic-size", type=int, default=2600)
parser.add_argument("--output-dir", default="runs/mixed_precision_example")
args = parser.parse_args()

print("device:", accelerator())
data = load_data(
    DataOptions(
        output_dir=args.output_dir,
        idx_dir=args.idx_dir,
        synthetic=args.synthetic,
        synthetic_size=args.synthetic_size,
    )
)
(x_fit, y_fit), (x_val, y_val), (x_test, y_test) = data["fit"], data["val"], data["test"]

previous = keras.config.dtype_policy()
keras.mixed_precision.set_global_policy(args.policy)  # = keras.config.set_dtype_policy
try:
    model = keras_minent.vgg5(augment=True, seed=0)  # built under the policy
    model.compile(
        optimizer=keras.optimizers.Adam(0.005),  # loss-scaled under mixed_float16
        loss=keras_minent.MinEntLoss.from_paper(from_logits=True),
        metrics=["accuracy"],
    )
    conv = model.get_layer("block1_conv1")
    print(
        f"policy {args.policy}: convolutions compute in {conv.compute_dtype} with "
        f"{conv.variable_dtype} weights; logits {model.output.dtype}; "
        f"optimizer {type(model.optimizer).__name__}"
    )
    model.fit(
        x_fit,
        y_fit,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        verbose=2,
    )
    _, accuracy = model.evaluate(evaluation_dataset(x_test, y_test, 1000), verbose=0)
    print(f"test accuracy: {accuracy:.4f}")
    model.save(f"{args.output_dir}/mixed_precision_vgg5.keras")
finally:
    keras.mixed_precision.set_global_policy(previous)
print("global policy restored:", keras.config.dtype_policy().name)
