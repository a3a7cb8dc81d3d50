#!/usr/bin/env bash
# The GPU suite, one device call (about 7-8 minutes on an H100/H200):
#   1. the real command, `python -m keras_minent train`, on the JAX backend with data of
#      EMNIST-Letters' size (--synthetic --synthetic-size 124800: 114,400 fit, 10,400
#      validation, 20,800 test images), 4 epochs; whole-epoch images/s, the projected
#      200-epoch time and the share outside the training steps (benchmarks/train_command.py);
#   2. the paper-style PyTorch loop (benchmarks/torch_peer.py) and the Keras PyTorch backend
#      beside it (benchmarks/torch_backend.py: augmentation, metrics, eager);
#   3. float32 against mixed_bfloat16 at batch 1000 (the `--precision auto` rule);
#   4. the train command on the PyTorch backend (a tenth of the data: its speed decides);
#   5. seeds trained together: 10 and 30 members against one alone (benchmarks/seed_parallel.py);
#   6. one summary table (benchmarks/summarize.py).
#
# On the lent GPU machine (no TensorFlow, no Keras there: wheels in .whl/, see RESULTS.md):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD bash benchmarks/gpu_suite.sh
# SUITE_SMOKE=1 (or TINY=1) runs the same code path with tiny sizes on a CPU (~3 minutes
# on 2 cores), so the script cannot rot (tests/test_benchmarks.py).
# FULL=1 adds the earlier suite's rows (float16, the loss cost, steps per execution).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
OUT_DIR=${OUT:-/tmp/keras_minent_bench}
mkdir -p "$OUT_DIR"
J="$OUT_DIR/results.jsonl"
# The runs' directories (checkpoints of 44 MB) stay out of $OUT; their results.json is copied.
RUNS=${RUNS_DIR:-/tmp/keras_minent_runs}
rm -rf "$RUNS"
: > "$J"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SUITE_SMOKE:-${TINY:-0}}" = 1 ]; then
  SIZE=511; EP=3; B=52; S=2; BIG=32; PEER=2; TB_STEPS=2; TB_ROUNDS=1; TSIZE=104; N=256; LOSSB=16; REP=3
  MEMBERS="2"; SP_STEPS=2; SP_VAL=104; SP_EPOCHS=2
  T=400
else
  SIZE=124800; EP=4; B=100; S=150; BIG=1000; PEER=100; TB_STEPS=20; TB_ROUNDS=2; TSIZE=5200; N=8192
  LOSSB="100 1024 8192"; REP=50; T=240
  MEMBERS="10 30"; SP_STEPS=100; SP_VAL=10400; SP_EPOCHS=3
fi
run() { echo "+ $*"; timeout "$T" "$@" || echo "!! failed or timed out ($?): $*"; }
JAX="env KERAS_BACKEND=jax"
TORCH="env KERAS_BACKEND=torch"

if [ "${ONLY_SEED_PARALLEL:-0}" != 1 ]; then
# 1. The main job itself (precision auto: float32 at batch 100, see devices.py).
run $JAX python3 benchmarks/train_command.py --size "$SIZE" --batch-size "$B" --epochs "$EP" \
  --output-dir "$RUNS/train_jax" --json "$J"
cp "$RUNS/train_jax/results.json" "$OUT_DIR/train_jax_results.json" 2>/dev/null
# 2. PyTorch: the paper's loop, and the Keras PyTorch backend beside it (same process).
run python3 benchmarks/torch_peer.py --modes paper --batch "$B" --steps "$PEER" --json "$J"
run $TORCH python3 benchmarks/torch_backend.py --batch "$B" --steps "$TB_STEPS" --rounds "$TB_ROUNDS" \
  --configs "train command (aug, metrics, eager)" "train command, Keras's per-image augmentation" \
  "no augmentation" "no metrics" --json "$J"
# 3. Precision at batch 1000, where `auto` switches to mixed_bfloat16 (float32 there was never
#    measured; batch 100 was: RESULTS.md section 1). Steps per execution 8, as the train command.
run $JAX python3 benchmarks/train_step.py --precisions float32 mixed_bfloat16 --losses min_ent \
  --batch-sizes "$BIG" --steps $(( S / 5 + 1 )) --steps-per-execution 8 --json "$J"
# 4. The train command on the PyTorch backend, a tenth of the data, whole epochs only.
run $TORCH python3 benchmarks/train_command.py --size "$TSIZE" --batch-size "$B" --epochs 3 \
  --no-step-only --output-dir "$RUNS/train_torch" --json "$J"
cp "$RUNS/train_torch/results.json" "$OUT_DIR/train_torch_results.json" 2>/dev/null
fi
# 5. Seeds trained together: 10 and 30 members against one alone, batch 100,
#    validation included; the projected time of the 3 losses x 10 seeds comparison. About
#    5 minutes on a GPU (compiling 30 members), so a device call of its own: SEED_PARALLEL=1
#    ONLY_SEED_PARALLEL=1 runs this step alone (RESULTS.md section 6).
if [ "${SEED_PARALLEL:-0}" = 1 ] || [ "${SUITE_SMOKE:-${TINY:-0}}" = 1 ]; then
  T=540 run $JAX python3 benchmarks/seed_parallel.py --members $MEMBERS --batch "$B" \
    --steps "$SP_STEPS" --epochs "$SP_EPOCHS" --val-size "$SP_VAL" --json "$J"
fi
if [ "${FULL:-0}" = 1 ]; then
  run python3 benchmarks/matmul_peak.py --n "$N" --json "$J"
  run $JAX python3 benchmarks/train_step.py --precisions float32 mixed_bfloat16 mixed_float16 \
    --losses ce min_ent --steps-per-execution 8 \
    --batch-sizes "$B" --steps "$S" --json "$J"
  run $JAX python3 benchmarks/train_step.py --precisions mixed_bfloat16 --losses min_ent \
    --augment 0 --steps-per-execution 1 8 --batch-sizes "$B" --steps "$S" --json "$J"
  run $JAX python3 benchmarks/loss_cost.py --batch-sizes $LOSSB --repeats "$REP" --json "$J"
fi
python3 benchmarks/summarize.py "$J"
