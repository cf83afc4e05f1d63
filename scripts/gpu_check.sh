#!/usr/bin/env bash
# GPU checks in one go: the gpu-marked tests and the CUDA benchmarks.
#
#   scripts/gpu_check.sh [OUT_DIR]      (default ./gpu-results; PYTHON=... picks the interpreter)
#
# Writes into OUT_DIR: device.txt (torch, CUDA, GPU), pytest-gpu.txt, and per benchmark run LABEL
# bench-LABEL.json and bench-LABEL.txt.  Each step has its own time limit, cut further so that
# the whole run ends within GPU_CHECK_BUDGET seconds (default 570, about 10 minutes on an H100);
# a failing or skipped step is reported and the others still run.  Steps, most important first:
#   pytest       the gpu-marked tests (Triton vs dense, graph-captured decode, fast vs dense)
#   attention    fused Triton tau vs SDPA (flash), bf16, B=4 H=8 D=64,128, T=1k..16k (target <= 0.6)
#   train        small preset (12 x 6 x 768), bf16 autocast, tau (auto = triton) vs dot, T=1024,4096
#   decode-graph reference shape, graph-captured steps, contexts 1024, 8192 (targets 0.9 / 0.65)
#   decode       the same without graphs (eager steps), cache        bytes per token
#   attention-f32 the earlier float32 table (B*H=8, D=64: fast / dense / triton / SDPA)
# GPU_CHECK_STEPS=pytest,attention,... (the default: all) runs a subset.  The machine needs torch
# with CUDA and triton (pip install triton; torch's CUDA wheels bring it).
# Exits non-zero if any step failed, and with 3 when no CUDA device is visible.
set -uo pipefail

OUT="${1:-./gpu-results}"
PY="${PYTHON:-python}"
STEPS=",${GPU_CHECK_STEPS:-pytest,attention,train,decode-graph,decode,cache,attention-f32},"
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

bench() {  # bench LABEL NAME SECONDS ARGS...: one benchmark as JSON, then its table as text
    local label="$1" name="$2" limit="$3"
    shift 3
    wanted "$label" || return 0
    step "bench $label" "$limit" bash -c "'$PY' -m tauformer bench $name $* --json > '$OUT/bench-$label.json'"
    if [ -s "$OUT/bench-$label.json" ]; then
        "$PY" - "$OUT/bench-$label.json" > "$OUT/bench-$label.txt" <<'PYEOF'
import json, sys
from tauformer.bench.common import format_table
result = json.load(open(sys.argv[1]))
print(format_table(result["rows"], result.get("columns")))
print("\n".join(result.get("summary", [])))
print(json.dumps(result.get("conditions", {})))
PYEOF
        cat "$OUT/bench-$label.txt"
    fi
}

"$PY" -c 'import triton; print("triton", triton.__version__)' >> "$OUT/device.txt" 2>&1 \
    || echo "gpu_check: triton is not importable; the triton steps will fail" | tee -a "$OUT/device.txt" >&2

# 1. tests that need CUDA (Triton vs dense tau, graph-captured decode, fast vs dense, any other
#    gpu-marked test); only the files that hold gpu tests are collected, so a GPU image without
#    the app stack (plotly, dash) does not fail on collecting the figure tests
if wanted pytest; then
    gpu_files=$(grep -l "mark.gpu" tests/*.py | tr '\n' ' ')
    step "pytest -m gpu" 150 bash -c "'$PY' -m pytest -p no:xdist -m gpu -q -p no:cacheprovider $gpu_files 2>&1 | tee '$OUT/pytest-gpu.txt'; exit \${PIPESTATUS[0]}"
fi

# 2. the fused kernel against flash attention at the target shapes (fwd and fwd+bwd, bf16)
bench attention attention 150 --device cuda --batch 4 --heads 8 --head-dims 64,128 \
    --T 1024,2048,4096,8192,16384 --dtypes bfloat16 --kernels triton,sdpa --repeats 5

# 3. training tokens/s on the small preset; `tau` (auto) is the Triton kernel on CUDA
bench train train 120 --device cuda --shape small --blocks 1024,4096 --tokens 16384 \
    --variants dot,tau --repeats 5 --warmup 2

# 4. decode per token with the cache: graph-captured steps of both models, then eager steps
bench decode-graph decode 60 --device cuda --graph --shapes reference --contexts 1024,8192 \
    --no-cache-contexts none
bench decode decode 60 --device cuda --shapes reference,demo --contexts 128,1024,8192 \
    --no-cache-contexts 1024
bench cache cache 20

# 5. the earlier float32 table (B*H = 8, D = 64), now with the triton column
bench attention-f32 attention 50 --device cuda --T 1024,4096,16384 --dtypes float32 --repeats 3

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'gpu_check: failed: %s\n' "${failed[@]}" | tee "$OUT/FAILED.txt" >&2
    exit 1
fi
echo "gpu_check: all steps passed; results in $OUT"
