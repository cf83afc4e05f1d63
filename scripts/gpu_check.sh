#!/usr/bin/env bash
# GPU checks in one go: the gpu-marked tests and the CUDA benchmarks.
#
#   scripts/gpu_check.sh [OUT_DIR]      (default ./gpu-results; PYTHON=... picks the interpreter)
#
# Writes into OUT_DIR: device.txt (torch, CUDA, GPU), pytest-gpu.txt, bench-attention.json and
# bench-attention.txt.  Each step has its own time limit so that the whole run stays within
# about 10 minutes on an H100; a failing step is reported and the others still run.  Exits
# non-zero if any step failed, and with 3 when no CUDA device is visible.
set -uo pipefail

OUT="${1:-./gpu-results}"
PY="${PYTHON:-python}"
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT" || exit 2

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: torch sees no CUDA device; nothing to check" | tee "$OUT/device.txt" >&2
    exit 3
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))' \
    > "$OUT/device.txt"
nvidia-smi >> "$OUT/device.txt" 2>&1 || true
cat "$OUT/device.txt" | head -1

failed=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, record failure
    local name="$1" limit="$2"
    shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start))s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

# 1. tests that need CUDA (fast vs dense tau on the GPU, and any other gpu-marked test)
step "pytest -m gpu" 180 bash -c "'$PY' -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee '$OUT/pytest-gpu.txt'; exit \${PIPESTATUS[0]}"

# 2. attention kernels: fast tau vs dense tau vs SDPA, float32 and bfloat16, T = 512 .. 65536
step "bench attention" 300 bash -c "'$PY' -m tauformer bench attention --device cuda --json > '$OUT/bench-attention.json'"
if [ -s "$OUT/bench-attention.json" ]; then
    "$PY" - "$OUT/bench-attention.json" > "$OUT/bench-attention.txt" <<'PYEOF'
import json, sys
from tauformer.bench.common import format_table
result = json.load(open(sys.argv[1]))
print(format_table(result["rows"], result.get("columns")))
print("\n".join(result.get("summary", [])))
print(json.dumps(result.get("conditions", {})))
PYEOF
    cat "$OUT/bench-attention.txt"
fi

# 3. decode / KV-cache and training benchmarks: ADD HERE once they exist, e.g.
#    step "bench decode" 120 bash -c "'$PY' -m tauformer bench decode --device cuda --json > '$OUT/bench-decode.json'"
#    step "bench train"  120 bash -c "'$PY' -m tauformer bench train --device cuda --json > '$OUT/bench-train.json'"

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'gpu_check: failed: %s\n' "${failed[@]}" | tee "$OUT/FAILED.txt" >&2
    exit 1
fi
echo "gpu_check: all steps passed; results in $OUT"
