#!/usr/bin/env bash
# On the GPU machine (no network), from the repository root with .whl/ carried along (benchmarks/device_wheels.sh
# fetched it): install the wheels into $SITE, show the GPU JAX sees, run `python -m benchmarks run device`
# (extra arguments pass through), and copy its JSON, the redrawn docs/benchmarks.md and the log to $OUT if set.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
SITE="${SITE:-/tmp/site}"
LOG="${LOG:-/tmp/device_run.log}"
export PYTHONUNBUFFERED=1
exec > >(tee "$LOG") 2>&1
started=$(date +%s)
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
  || echo "device_run: pip install of .whl/ failed"
export PYTHONPATH="$SITE:$PWD"
nvidia-smi -L || echo "device_run: no nvidia-smi"
"$PYTHON" -c "import jax, numpy; print('jax', jax.__version__, 'numpy', numpy.__version__, jax.devices())"
echo "device_run: set-up took $(( $(date +%s) - started )) s"
if [ -n "${PREFLIGHT:-}" ]; then  # a module that must finish in time before the benchmark runs, e.g. benchmarks.dust_probe
  timeout "${PREFLIGHT_TIMEOUT:-90}" "$PYTHON" -m $PREFLIGHT || { echo "device_run: preflight $PREFLIGHT failed"; exit 3; }
fi
timeout "${BENCH_TIMEOUT:-430}" "$PYTHON" -m benchmarks run device "$@"
rc=$?
echo "device_run: benchmark exit $rc, $(( $(date +%s) - started )) s in all"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp benchmarks/results/device*.json docs/benchmarks.md "$OUT/" 2>/dev/null || echo "device_run: no device.json to copy"
  sleep 1; cp "$LOG" "$OUT/device_run.log"
fi
exit $rc
