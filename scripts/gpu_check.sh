#!/usr/bin/env bash
# GPU checks in one go: the gpu-marked tests and the CUDA benchmarks.
#
#   scripts/gpu_check.sh [OUT_DIR]      (default ./gpu-results; PYTHON=... picks the interpreter)
#
# Writes into OUT_DIR: device.txt (torch, CUDA, GPU), pytest-gpu.txt, and per benchmark NAME
# (attention, decode, train, cache) bench-NAME.json and bench-NAME.txt.  Each step has its own
# time limit, cut further so that the whole run ends within GPU_CHECK_BUDGET seconds (default
# 570, about 10 minutes on an H100); a failing or skipped step is reported and the others still
# run.  GPU_CHECK_STEPS=pytest,attention,decode,train,cache (the default: all) runs a subset.
# Exits non-zero if any step failed, and with 3 when no CUDA device is visible.
set -uo pipefail

OUT="${1:-./gpu-results}"
PY="${PYTHON:-python}"
STEPS=",${GPU_CHECK_STEPS:-pytest,attention,decode,train,cache},"
DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET:-570}))
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
step() {  # step NAME SECONDS COMMAND...: run with a time limit (and within the budget), record failure
    local name="$1" limit="$2"
    shift 2
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -lt 15 ]; then
        echo "== $name: skipped, ${left}s of the budget left"
        failed+=("$name (no time left)")
        return
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start))s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

wanted() { [[ "$STEPS" == *",$1,"* ]]; }

bench() {  # bench NAME SECONDS ARGS...: one benchmark as JSON, then its table as text
    local name="$1" limit="$2"
    shift 2
    wanted "$name" || return 0
    step "bench $name" "$limit" bash -c "'$PY' -m tauformer bench $name $* --json > '$OUT/bench-$name.json'"
    if [ -s "$OUT/bench-$name.json" ]; then
        "$PY" - "$OUT/bench-$name.json" > "$OUT/bench-$name.txt" <<'PYEOF'
import json, sys
from tauformer.bench.common import format_table
result = json.load(open(sys.argv[1]))
print(format_table(result["rows"], result.get("columns")))
print("\n".join(result.get("summary", [])))
print(json.dumps(result.get("conditions", {})))
PYEOF
        cat "$OUT/bench-$name.txt"
    fi
}

# 1. tests that need CUDA (fast vs dense tau on the GPU, and any other gpu-marked test); only
#    the files that hold gpu tests are collected, so a GPU image without the app stack (plotly,
#    dash) does not fail on collecting the figure tests
if wanted pytest; then
    gpu_files=$(grep -l "mark.gpu" tests/*.py | tr '\n' ' ')
    step "pytest -m gpu" 180 bash -c "'$PY' -m pytest -m gpu -q -p no:cacheprovider $gpu_files 2>&1 | tee '$OUT/pytest-gpu.txt'; exit \${PIPESTATUS[0]}"
fi

# 2. attention kernels: fast tau vs dense tau vs SDPA, float32 and bfloat16, T = 512 .. 65536
bench attention 300 --device cuda

# 3. decode with / without the KV cache (reference and demo shapes, contexts 128 .. 16384),
#    training tokens/s (demo shape, bf16 autocast, T = 256 and 1024), cache bytes per token
bench decode 120 --device cuda
bench train 90 --device cuda
bench cache 30

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'gpu_check: failed: %s\n' "${failed[@]}" | tee "$OUT/FAILED.txt" >&2
    exit 1
fi
echo "gpu_check: all steps passed; results in $OUT"
