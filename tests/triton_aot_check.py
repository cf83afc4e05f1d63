"""Compile the Triton kernels for an sm_90 GPU ahead of time, without a GPU (no driver needed).

Triton's interpreter accepts code the compiler refuses (e.g. non-constexpr globals), so the
slow test in test_triton_compile.py runs this in a process without TRITON_INTERPRET.  Prints one
line per kernel and configuration; exits 1 if any failed to compile.
"""

import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tauformer.kernels import _triton_decode_kernels as DK
from tauformer.kernels import _triton_kernels as K
from tauformer.kernels import _triton_lambda_kernels as LK

I32 = "i32"


def ptr(dtype: str) -> str:
    return "*" + dtype


def compile_kernel(fn, types: dict, consts: dict, num_warps: int = 4) -> bool:
    names = fn.arg_names
    signature = {n: "constexpr" if n in consts else types[n] for n in names}
    src = ASTSource(fn=fn, signature=signature, constexprs={(names.index(k),): v for k, v in consts.items()})
    try:
        triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps, "num_stages": 2})
    except Exception as exc:  # report every failure, then exit 1
        print("FAIL", fn.__name__, consts, str(exc).strip().splitlines()[-1][:300])
        return False
    print("OK", fn.__name__, consts)
    return True


def main() -> int:
    ok = True
    vt = "bf16"
    common = dict(CAUSAL=True, IEEE=0, BLOCK_M=128, BLOCK_N=64, BLOCK_D=64)
    attn = dict(LQ=ptr("fp32"), LK=ptr("fp32"), V=ptr(vt), SCALE=ptr("fp32"), H=I32, n_rep=I32, Tq=I32, Tk=I32,
                D=I32, off=I32)
    ok &= compile_kernel(K.fwd_kernel, dict(attn, OUT=ptr(vt), LSE=ptr("fp32")), common)
    grads = dict(attn, DO=ptr(vt), LSE=ptr("fp32"), DELTA=ptr("fp32"))
    ok &= compile_kernel(K.bwd_kv_kernel, dict(grads, DV=ptr(vt), DLK=ptr("fp32"), DLQ=ptr("fp32"), DT=ptr("fp32")),
                         dict(common, FUSE_Q=True))
    ok &= compile_kernel(K.bwd_q_kernel, dict(grads, DLQ=ptr("fp32"), DT_PART=ptr("fp32"), n_q_tiles=I32),
                         dict(common, CAUSAL=False, IEEE=1, BLOCK_M=64))
    ok &= compile_kernel(DK.decode_split_kernel,
                         dict(LQ=ptr("fp32"), LK=ptr("fp32"), V=ptr(vt), SCALE=ptr("fp32"), LEN=ptr("i64"),
                              M_P=ptr("fp32"), L_P=ptr("fp32"), ACC_P=ptr("fp32"), H=I32, n_rep=I32, Tk=I32, D=I32,
                              chunk=I32, splits=I32),
                         dict(HAS_LEN=True, BLOCK_R=2, BLOCK_N=16, BLOCK_D=512), num_warps=8)
    ok &= compile_kernel(DK.decode_combine_kernel,
                         dict(M_P=ptr("fp32"), L_P=ptr("fp32"), ACC_P=ptr("fp32"), OUT=ptr(vt), splits=I32, D=I32),
                         dict(BLOCK_S=128, BLOCK_D=512))
    lam = dict(L=ptr("fp32"), TAU=ptr("fp32"), N=I32, D=I32, eps="fp32")
    ok &= compile_kernel(LK.lambda_fwd_kernel, dict(lam, X=ptr(vt), LAM=ptr("fp32"), ENERGY=ptr("fp32")),
                         dict(BLOCK_R=32, BLOCK_D=64, BLOCK_J=64))
    ok &= compile_kernel(LK.lambda_bwd_kernel, dict(lam, G=ptr("fp32"), X=ptr(vt), ENERGY=ptr("fp32"), GX=ptr(vt)),
                         dict(BLOCK_R=16, BLOCK_D=512, BLOCK_J=64), num_warps=8)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
