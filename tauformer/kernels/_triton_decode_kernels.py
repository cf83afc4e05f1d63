"""Triton kernel source for `triton_decode` (imported when a decode kernel is first launched).

Layouts (contiguous): lq [B * H], lk [B, H_kv, Tk], v [B, H_kv, Tk, D], scale [B * H] = log2(e) / t;
partial results m, l [B * H, splits] and acc [B * H, splits, D] (float32), out [B * H, D].
"""

import triton
import triton.language as tl


@triton.jit
def decode_split_kernel(LQ, LK, V, SCALE, LEN, M_P, L_P, ACC_P, H, n_rep, Tk, D, chunk, splits,
                        HAS_LEN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_D: tl.constexpr):
    split = tl.program_id(0)
    bhk = tl.program_id(1)
    H_kv = H // n_rep
    b = bhk // H_kv
    offs_r = tl.arange(0, BLOCK_R)
    r_valid = offs_r < n_rep
    heads = b * H + (bhk % H_kv) * n_rep + offs_r  # the query heads reading this kv head
    lq = tl.load(LQ + heads, mask=r_valid, other=0.0)
    c = tl.load(SCALE + heads, mask=r_valid, other=1.0)
    offs_d = tl.arange(0, BLOCK_D)
    d_valid = offs_d < D
    n_keys = Tk
    if HAS_LEN:
        n_keys = tl.minimum(tl.load(LEN).to(tl.int32), Tk)
    start = split * chunk
    end = tl.minimum(start + chunk, n_keys)
    lk_base = LK + bhk.to(tl.int64) * Tk
    v_base = V + bhk.to(tl.int64) * Tk * D
    m_i = tl.full([BLOCK_R], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_R], tl.float32)
    acc = tl.zeros([BLOCK_R, BLOCK_D], tl.float32)
    for start_n in range(start, end, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_valid = offs_n < end
        lk = tl.load(lk_base + offs_n, mask=n_valid, other=0.0)
        v = tl.load(v_base + offs_n[:, None] * D + offs_d[None, :], mask=n_valid[:, None] & d_valid[None, :],
                    other=0.0).to(tl.float32)  # [BLOCK_N, BLOCK_D]
        s = -tl.abs(lq[:, None] - lk[None, :]) * c[:, None]  # [BLOCK_R, BLOCK_N]
        s = tl.where(n_valid[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * v[None, :, :], 1)
        m_i = m_new
    part = heads.to(tl.int64) * splits + split
    tl.store(M_P + part, m_i, mask=r_valid)
    tl.store(L_P + part, l_i, mask=r_valid)
    tl.store(ACC_P + part[:, None] * D + offs_d[None, :], acc, mask=r_valid[:, None] & d_valid[None, :])


@triton.jit
def decode_combine_kernel(M_P, L_P, ACC_P, OUT, splits, D, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr):
    bh = tl.program_id(0).to(tl.int64)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, BLOCK_D)
    s_valid = offs_s < splits
    m = tl.load(M_P + bh * splits + offs_s, mask=s_valid, other=float("-inf"))
    l = tl.load(L_P + bh * splits + offs_s, mask=s_valid, other=0.0)
    acc = tl.load(ACC_P + (bh * splits + offs_s)[:, None] * D + offs_d[None, :],
                  mask=s_valid[:, None] & (offs_d[None, :] < D), other=0.0)
    m_all = tl.max(m, 0)
    w = tl.where(m > float("-inf"), tl.exp2(m - m_all), 0.0)  # chunks past the cache length weigh 0
    out = tl.sum(w[:, None] * acc, 0) / tl.sum(w * l, 0)
    tl.store(OUT + bh * D + offs_d, out.to(OUT.dtype.element_ty), mask=offs_d < D)
