"""KerasTuner search of the regularization strength (needs the `tuning` extra).

`RegularizationHyperModel` builds and compiles a model with `MinEntLoss` or
`MixEntLoss` whose regularizer weight is searched on a log scale (plain cross
entropy can be an arm of the search); every trial is a short run of the `train`
recipe (`keras_minent.training.build_recipe`: network, augmentation, Adam and
its learning-rate rule, metrics, precision). `search(TuneConfig(...))` runs a whole
search on EMNIST-Letters and writes a readable report. Searches resume from
their directory, and keras-tuner's chief/worker mode distributes them:

```bash
# chief (runs the oracle, trains nothing):
KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
    python -m keras_minent tune --output-dir /shared/search ...
# one worker per GPU or machine, same command and directory:
CUDA_VISIBLE_DEVICES=0 KERASTUNER_TUNER_ID=worker0 KERASTUNER_ORACLE_IP=10.0.0.1 \\
    KERASTUNER_ORACLE_PORT=8000 python -m keras_minent tune --output-dir /shared/search ...
```

The objective is validation accuracy (or validation cross entropy, tracked as
a separate metric), never `val_loss`: the loss itself changes with the weight.
"""

from keras_minent.tuning.hypermodel import RegularizationHyperModel, trial_seed
from keras_minent.tuning.oracle import OBJECTIVES, TUNERS, make_tuner
from keras_minent.tuning.results import plot_objective, report, trial_table
from keras_minent.tuning.search import (
    SearchFailedError,
    SearchStateError,
    TuneConfig,
    search,
)

__all__ = [
    "OBJECTIVES",
    "TUNERS",
    "RegularizationHyperModel",
    "SearchFailedError",
    "SearchStateError",
    "TuneConfig",
    "make_tuner",
    "plot_objective",
    "report",
    "search",
    "trial_seed",
    "trial_table",
]
