#!/usr/bin/env bash
# GPU check: the test suite, CUDA-only checks, the meta-gradient cost on CUDA and a
# time-boxed --full reproduction, all writing under one folder.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [STAGE ...]
#
# STAGE: tests, checks, steps, stack, cost, repro (default: all six, about 14 minutes on an H100),
# and compiled (not in the default: step_cost with --compile-step, the inner step through
# torch.compile; compiling a paper-size conv learner took 11 minutes on a 2-core CPU, so
# give it its own call: bash benchmarks/gpu_check.sh gpu_results compiled).
# A machine that allows at most 10 minutes per command runs it in two calls:
#   bash benchmarks/gpu_check.sh gpu_results tests checks steps stack cost   # ~6 min
#   bash benchmarks/gpu_check.sh gpu_results repro               # 8 min
# Environment: REPRO_SECONDS (default 480: the hard limit of the --full run),
# COST_SECONDS (default 240), GTN_EDU_DATA (the MNIST folder; the repro stage is skipped
# without one, since the machine may not reach the internet).
# Every stage runs even if an earlier one failed; OUT_DIR/summary.txt lists exit codes.
set -uo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash benchmarks/gpu_check.sh OUT_DIR [tests|checks|steps|stack|cost|repro|compiled ...]" >&2
  exit 2
fi
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
STAGES="${*:-tests checks steps stack cost repro}"
cd "$(dirname "$0")/.."
REPRO_SECONDS="${REPRO_SECONDS:-480}"
COST_SECONDS="${COST_SECONDS:-240}"
if [ -z "${GTN_EDU_DATA:-}" ] && [ -d ../shared/data ]; then export GTN_EDU_DATA="$(cd ../shared/data && pwd)"; fi
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # gtn_edu from this checkout, installed or not
SUMMARY="$OUT/summary.txt"

{
  echo "gpu_check $(date '+%Y-%m-%d %H:%M') commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  for m in pytest hypothesis higher torchopt matplotlib; do
    "$PY" -c "import $m" 2>/dev/null && echo "  $m: installed" || echo "  $m: MISSING (pip install -e '.[dev,bench]')"
  done
} | tee -a "$SUMMARY"

run() {  # run NAME COMMAND...: log to OUT/NAME.log, record the exit code
  local name="$1"; shift
  echo "== $name: $*" | tee -a "$SUMMARY"
  local start=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - start)) s (log: $name.log)" | tee -a "$SUMMARY"
  tail -n 5 "$OUT/$name.log"
}

for stage in $STAGES; do
  case "$stage" in
    tests)
      # There are no CUDA-specific tests in tests/ yet: the whole suite, on this machine.
      run tests timeout 300 "$PY" -m pytest -q -p no:cacheprovider ;;
    checks)
      run cuda_checks timeout 120 "$PY" benchmarks/cuda_checks.py --out "$OUT/cuda_checks.json" ;;
    steps)
      # Paper size, T=32: seconds per outer iteration (both modes) and CUDA kernels per inner step.
      run step_cost timeout 180 "$PY" benchmarks/step_cost.py --device cuda --steps 32 --out "$OUT/step_cost" ;;
    compiled)
      # The same counts and seconds with the learner step and teacher batch compiled (COMPILED_SECONDS, default 540).
      run step_cost_compiled timeout "${COMPILED_SECONDS:-540}" "$PY" benchmarks/step_cost.py --device cuda --steps 32 \
        --compile-step --out "$OUT/step_cost_compiled" ;;
    stack)
      # k=4 learners of one architecture, one at a time against stacked (vmapped), quick size.
      run stack_cost timeout 150 "$PY" benchmarks/stack_cost.py --device cuda --repeats 3 --out "$OUT/stack_cost" ;;
    cost)
      run metagrad_cost timeout "$COST_SECONDS" "$PY" benchmarks/metagrad_cost.py --device cuda \
        --steps 8 16 32 64 128 --repeats 3 --max-mem-gb 60 --max-run-s 30 --out "$OUT/metagrad" ;;
    repro)
      if [ -z "${GTN_EDU_DATA:-}" ] || [ ! -e "$GTN_EDU_DATA/MNIST/raw/train-images-idx3-ubyte" ]; then
        echo "== repro: skipped, no MNIST under GTN_EDU_DATA='${GTN_EDU_DATA:-}'" | tee -a "$SUMMARY"
        continue
      fi
      # --time-limit leaves the script time to write its figures before the hard timeout.
      run repro_full timeout "$REPRO_SECONDS" "$PY" benchmarks/reproduce_mnist.py --full --device cuda \
        --time-limit $((REPRO_SECONDS - 60)) --out "$OUT/repro" ;;
    *) echo "unknown stage $stage" >&2 ;;
  esac
done
echo "results in $OUT" | tee -a "$SUMMARY"
