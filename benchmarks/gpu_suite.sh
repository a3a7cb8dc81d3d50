#!/usr/bin/env bash
# The GPU suite: keras-minent (JAX and torch backends) against plain PyTorch, one table.
#
# On the lent GPU machine (no Keras there: wheels in .whl/, see RESULTS.md):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:. bash benchmarks/gpu_suite.sh
# On a CPU, TINY=1 runs the same code path in about two minutes (CI does that).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-/tmp/keras_minent_bench}
mkdir -p "$OUT_DIR"
J="$OUT_DIR/results.jsonl"
: > "$J"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${TINY:-0}" = 1 ]; then
  S=2; BIG=32; B=16; LOSSB="16"; STEPS_PEER=2; N=256; REP=3; T=300
else
  S=150; BIG=1000; B=100; LOSSB="100 1024 8192"; STEPS_PEER=100; N=8192; REP=50; T=150
fi
run() { echo "+ $*"; timeout "$T" "$@" || echo "!! failed or timed out ($?): $*"; }

run python3 benchmarks/matmul_peak.py --n "$N" --json "$J"
run python3 benchmarks/torch_peer.py --batch "$B" --steps "$STEPS_PEER" --json "$J"
KB="KERAS_BACKEND=jax"
run env $KB python3 benchmarks/train_step.py --precisions float32 mixed_bfloat16 mixed_float16 \
  --losses ce min_ent --batch-sizes "$B" --steps "$S" --json "$J"
run env $KB python3 benchmarks/train_step.py --precisions mixed_bfloat16 --losses mix_ent \
  --batch-sizes "$B" --steps "$S" --json "$J"
run env $KB python3 benchmarks/train_step.py --precisions mixed_bfloat16 --losses ce min_ent \
  --batch-sizes "$BIG" --steps $(( S / 5 + 1 )) --json "$J"
run env $KB python3 benchmarks/train_step.py --precisions mixed_bfloat16 --losses min_ent \
  --augment 0 --steps-per-execution 1 8 --batch-sizes "$B" --steps "$S" --json "$J"
run env KERAS_BACKEND=torch python3 benchmarks/train_step.py --precisions mixed_bfloat16 \
  --losses min_ent --batch-sizes "$B" --steps $(( S / 4 + 1 )) --epochs 2 --json "$J"
run env $KB python3 benchmarks/loss_cost.py --batch-sizes $LOSSB --repeats "$REP" --json "$J"
python3 benchmarks/summarize.py "$J"
