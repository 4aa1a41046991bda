#!/usr/bin/env bash
# The reference shape on a GPU machine with JAX (no TensorFlow needed): 96x96, batch 525,
# random images, float32 then mixed bfloat16. Prints images/s, seconds per 200-step epoch and
# achieved TFLOP/s. Runs on a CPU too (slowly): STEPS=1 WARMUP=1 bash benchmarks/gpu_check.sh
#
# Keras may come as a wheel: put it in .whl/ and it is installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export KERAS_BACKEND=jax PYTHONPATH=$PWD:${PYTHONPATH:-}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
for precision in float32 mixed_bfloat16; do
  python3 - "$precision" "$STEPS" "$WARMUP" <<'PY'
import json, sys
from simclr_lab.studies.bench import bench_table, run_bench
precision, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
result = run_bench(96, 525, 25, steps=steps, warmup=warmup, precision=precision)
print(bench_table(result))
step = result["seconds"]["whole training step"]
print(f"GPU_CHECK {precision}: {result['images_per_s']:.0f} images/s, "
      f"{200 * step:.1f} s per 200-step epoch, {result['achieved_gflops'] / 1000:.2f} TFLOP/s")
PY
done
