"""MIN-ENT and MIX-ENT: cross entropy regularized by entropy terms.

The formulas (A. O. Ibraheem, arXiv:2501.13709, 2025; see `docs/method.md`),
for one example with target distribution `t` and predicted distribution
`p = softmax(z)`:

```
CE  = - sum_c t_c * log p_c                  # cross entropy
H   = - sum_c p_c * log p_c                  # entropy of the prediction
SCE = - sum_c p_c * log(t_c + epsilon)       # "swapped" cross entropy

MIN-ENT = ce_weight * CE / ln(ce_log_base) + entropy_weight * H / ln(entropy_log_base)
MIX-ENT = ce_weight * CE / ln(ce_log_base) + swapped_weight * SCE / ln(swapped_log_base)
```

Both are one computation (`functions.regularized_cross_entropy`): cross entropy plus
a regularizer, both read from one softmax pass (`SoftmaxParts`). Each loss
class supplies its regularizer through one hook, `regularizer(target, softmax)`,
and its coefficient through `regularizer_coefficient()`. Log bases must be > 1.

Everything here is written with `keras.ops` only, so it runs on the
TensorFlow, JAX and PyTorch backends.

**How targets are read.** `y_true` holds integer class ids when its rank is
one less than the rank of `y_pred` (e.g. `(B,)` against `(B, K)`), or when it
has the rank of `y_pred` with size 1 along `axis` (e.g. `(B, 1)`). Otherwise
it must have exactly the shape of `y_pred` and is read as a distribution over
classes (one-hot or soft targets). Class ids are 0-based and must be integers
(integer-valued floats such as `3.0` are accepted) in `[0, K)`. When they are
concrete (eager mode) this is checked and a bad id raises; in compiled code
(`jax.jit`, `tf.function`, `torch.compile`) the loss of such an example is NaN,
as with Keras's own sparse cross entropy.

**Layout.** This package is the public module; its names are re-exported from
`keras_minent.losses.functions` (the per-example functions, registered with
Keras), `keras_minent.losses.classes` (the `keras.losses.Loss` classes and
`PAPER_SETTINGS`) and `keras_minent.losses.factory` (`get`, `LOSS_NAMES`). The
helpers they share (and `keras_minent.metrics` uses) are in
`keras_minent._loss_utils`.
"""

from __future__ import annotations

from keras_minent._loss_utils import PACKAGE
from keras_minent.losses.classes import PAPER_SETTINGS, MinEntLoss, MixEntLoss
from keras_minent.losses.factory import LOSS_NAMES, get
from keras_minent.losses.functions import (
    entropy,
    min_ent,
    mix_ent,
    swapped_cross_entropy,
    target_distribution,
)

__all__ = [
    "LOSS_NAMES",
    "PACKAGE",
    "PAPER_SETTINGS",
    "MinEntLoss",
    "MixEntLoss",
    "entropy",
    "get",
    "min_ent",
    "mix_ent",
    "swapped_cross_entropy",
    "target_distribution",
]

# The public objects keep `keras_minent.losses` as their module, as before the
# split into submodules: Keras writes it into saved configs (`"module"`), and
# pickles and documentation refer to the public path.
for _obj in (
    MinEntLoss,
    MixEntLoss,
    entropy,
    get,
    min_ent,
    mix_ent,
    swapped_cross_entropy,
    target_distribution,
):
    _obj.__module__ = __name__
del _obj
