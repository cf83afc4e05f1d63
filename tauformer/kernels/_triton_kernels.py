"""Triton kernel source for `triton_tau` (imported only when a Triton kernel is first launched).

Layouts (all contiguous): lq [B, H, Tq], lk [B, H_kv, Tk], v and dv [B, H_kv, Tk, D], out and dO
[B, H, Tq, D], lse2 / delta / dlq [B, H, Tq], scale [B * H] = log2(e) / t.  Query row i sits at
key position i + off (off = Tk - Tq) and, when causal, sees keys j <= i + off.  Program ids are
(tile, flat head); query head h of batch b reads kv head h // n_rep.  Tiles that every row of the
tile sees whole run without a mask; the tiles on the diagonal (and the last, partial one) with it.
Padded query rows load lse2 = +inf, so their P is 0 and they add nothing to dV or d lk.
The backward either runs `bwd_kv_kernel` alone with FUSE_Q (d lq and the d t sums added
atomically: one exp2 and two products per (query, key) pair, order of the additions not fixed)
or `bwd_kv_kernel` and then `bwd_q_kernel` (deterministic; P and dO . v computed twice).
"""

import triton
import triton.language as tl

LN2 = tl.constexpr(0.6931471805599453)  # a global a jit function may read


@triton.jit
def _pv(p, v, acc, IEEE: tl.constexpr):
    """acc + p @ v in float32.  IEEE: 0 native (p rounded to v's 16-bit dtype), 1 float32 products
    (no TF32 rounding), 2 p rounded to v's dtype and then float32 products: the numerics of 0 for
    Triton's interpreter, whose 16-bit dot is not usable."""
    if IEEE == 1:
        return tl.dot(p, v, acc, input_precision="ieee")
    if IEEE == 2:
        return tl.dot(p.to(v.dtype).to(tl.float32), v.to(tl.float32), acc, input_precision="ieee")
    return tl.dot(p.to(v.dtype), v, acc)


@triton.jit
def _key_tile(lq, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
              MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr):
    """Keys start_n .. start_n + BLOCK_N seen from a query tile: lq_i - lk_j [BLOCK_M, BLOCK_N], the
    base-2 logits -|lq_i - lk_j| c (with MASK: -inf past Tk and, when causal, after row i's last
    key) and the values v [BLOCK_N, BLOCK_D]."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    n_valid = offs_n < Tk
    lk = tl.load(lk_base + offs_n, mask=n_valid, other=0.0)
    v = tl.load(v_base + offs_n[:, None] * D + offs_d[None, :], mask=n_valid[:, None] & (offs_d[None, :] < D),
                other=0.0)  # [BLOCK_N, BLOCK_D]
    diff = lq[:, None] - lk[None, :]  # [BLOCK_M, BLOCK_N]
    s = -tl.abs(diff) * c
    if MASK:
        keep = n_valid[None, :]
        if CAUSAL:
            keep = keep & (offs_n[None, :] <= offs_m[:, None] + off)
        s = tl.where(keep, s, float("-inf"))
    return diff, s, v


@triton.jit
def _key_range(pid_m, Tk, off, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(full_end, hi) for query tile pid_m: key tiles below full_end are seen whole by every row
    (no mask), those in [full_end, hi) need the mask, none past hi is seen."""
    if CAUSAL:
        hi = tl.minimum(Tk, pid_m * BLOCK_M + BLOCK_M + off)  # past the last row's last key
        full_end = tl.minimum(Tk, pid_m * BLOCK_M + off + 1) // BLOCK_N * BLOCK_N  # seen by every row
    else:
        hi = Tk
        full_end = Tk // BLOCK_N * BLOCK_N
    return full_end, hi


@triton.jit
def _fwd_tile(acc, l_i, m_i, lq, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
              MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, BLOCK_N: tl.constexpr):
    """One key tile of the online softmax: update the running max, sum and P V accumulator."""
    _, s, v = _key_tile(lq, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off, MASK, CAUSAL, BLOCK_N)
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = _pv(p, v, acc * alpha[:, None], IEEE)
    return acc, l_i, m_new


@triton.jit
def fwd_kernel(LQ, LK, V, SCALE, OUT, LSE, H, n_rep, Tq, Tk, D, off,
               CAUSAL: tl.constexpr, IEEE: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    bh_kv = b * (H // n_rep) + (bh % H) // n_rep
    c = tl.load(SCALE + bh)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_valid = offs_m < Tq
    lq = tl.load(LQ + bh.to(tl.int64) * Tq + offs_m, mask=m_valid, other=0.0)
    lk_base = LK + bh_kv.to(tl.int64) * Tk
    v_base = V + bh_kv.to(tl.int64) * Tk * D
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    full_end, hi = _key_range(pid_m, Tk, off, CAUSAL, BLOCK_M, BLOCK_N)
    for start_n in range(0, full_end, BLOCK_N):
        acc, l_i, m_i = _fwd_tile(acc, l_i, m_i, lq, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
                                  False, CAUSAL, IEEE, BLOCK_N)
    for start_n in range(full_end, hi, BLOCK_N):
        acc, l_i, m_i = _fwd_tile(acc, l_i, m_i, lq, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
                                  True, CAUSAL, IEEE, BLOCK_N)
    out = acc / l_i[:, None]
    out_ptrs = OUT + bh.to(tl.int64) * Tq * D + offs_m[:, None] * D + offs_d[None, :]
    tl.store(out_ptrs, out.to(OUT.dtype.element_ty), mask=m_valid[:, None] & (offs_d[None, :] < D))
    tl.store(LSE + bh.to(tl.int64) * Tq + offs_m, m_i + tl.log2(l_i), mask=m_valid)


@triton.jit
def _bwd_kv_tile(dv, dlk, dt, lk, v, c, LQ_h, DO_h, LSE_h, DELTA_h, DLQ_h, start_m, offs_n, offs_d, Tq, Tk, D, off,
                 MASK: tl.constexpr, IEEE: tl.constexpr, FUSE_Q: tl.constexpr, BLOCK_M: tl.constexpr):
    """One query tile's share of dV and sum_i dS_ij sign(lq_i - lk_j) for a key tile; with FUSE_Q
    also its rows' d lq (atomically added: one scalar per row) and sum dS |lq - lk| for d t."""
    offs_m = start_m + tl.arange(0, BLOCK_M)
    m_valid = offs_m < Tq
    lq = tl.load(LQ_h + offs_m, mask=m_valid, other=0.0)
    lse = tl.load(LSE_h + offs_m, mask=m_valid, other=float("inf"))
    delta = tl.load(DELTA_h + offs_m, mask=m_valid, other=0.0)
    do = tl.load(DO_h + offs_m[:, None] * D + offs_d[None, :], mask=m_valid[:, None] & (offs_d[None, :] < D),
                 other=0.0)  # [BLOCK_M, BLOCK_D]
    diff = lq[:, None] - lk[None, :]  # [BLOCK_M, BLOCK_N]
    s = -tl.abs(diff) * c
    if MASK:
        s = tl.where(offs_n[None, :] <= offs_m[:, None] + off, s, float("-inf"))
    p = tl.exp2(s - lse[:, None])
    dv = _pv(tl.trans(p), do, dv, IEEE)  # [BLOCK_N, BLOCK_D]
    dp = _pv(do, tl.trans(v), tl.zeros(p.shape, tl.float32), IEEE)  # dO_i . v_j
    ds = p * (dp - delta[:, None])
    g = ds * tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0))
    if FUSE_Q:  # padded key columns (past Tk) are not masked in unmasked tiles: leave them out here
        keys = offs_n[None, :] < Tk
        tl.atomic_add(DLQ_h + offs_m, -tl.sum(tl.where(keys, g, 0.0), 1) * (c * LN2), mask=m_valid)
        dt += tl.sum(tl.sum(tl.where(keys, ds * tl.abs(diff), 0.0), 1), 0)
    return dv, dlk + tl.sum(g, 0), dt


@triton.jit
def bwd_kv_kernel(LQ, LK, V, SCALE, DO, LSE, DELTA, DV, DLK, DLQ, DT, H, n_rep, Tq, Tk, D, off,
                  CAUSAL: tl.constexpr, IEEE: tl.constexpr, FUSE_Q: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_n = tl.program_id(0)
    bhk = tl.program_id(1)
    H_kv = H // n_rep
    b = bhk // H_kv
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_valid = offs_n < Tk
    kv_mask = n_valid[:, None] & (offs_d[None, :] < D)
    lk = tl.load(LK + bhk.to(tl.int64) * Tk + offs_n, mask=n_valid, other=0.0)
    v_off = bhk.to(tl.int64) * Tk * D + offs_n[:, None] * D + offs_d[None, :]
    v = tl.load(V + v_off, mask=kv_mask, other=0.0)  # [BLOCK_N, BLOCK_D]
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dlk = tl.zeros([BLOCK_N], tl.float32)
    q_end = tl.cdiv(Tq, BLOCK_M) * BLOCK_M
    if CAUSAL:
        lo = tl.maximum(0, pid_n * BLOCK_N - off) // BLOCK_M * BLOCK_M  # first tile seeing this key tile
        mid = tl.minimum(q_end, tl.cdiv(tl.maximum(0, pid_n * BLOCK_N + BLOCK_N - 1 - off), BLOCK_M) * BLOCK_M)
    else:
        lo = 0
        mid = 0
    for r in range(0, n_rep):  # every query head reading this kv head
        bh = (b * H + (bhk % H_kv) * n_rep + r).to(tl.int64)
        c = tl.load(SCALE + bh)
        LQ_h, LSE_h, DELTA_h, DO_h = LQ + bh * Tq, LSE + bh * Tq, DELTA + bh * Tq, DO + bh * Tq * D
        DLQ_h = DLQ + bh * Tq
        dlk_h = tl.zeros([BLOCK_N], tl.float32)
        dt = tl.sum(tl.zeros([BLOCK_N], tl.float32), 0)
        for start_m in range(lo, mid, BLOCK_M):
            dv, dlk_h, dt = _bwd_kv_tile(dv, dlk_h, dt, lk, v, c, LQ_h, DO_h, LSE_h, DELTA_h, DLQ_h, start_m, offs_n,
                                         offs_d, Tq, Tk, D, off, True, IEEE, FUSE_Q, BLOCK_M)
        for start_m in range(tl.maximum(lo, mid), q_end, BLOCK_M):
            dv, dlk_h, dt = _bwd_kv_tile(dv, dlk_h, dt, lk, v, c, LQ_h, DO_h, LSE_h, DELTA_h, DLQ_h, start_m, offs_n,
                                         offs_d, Tq, Tk, D, off, False, IEEE, FUSE_Q, BLOCK_M)
        dlk += dlk_h * (c * LN2)  # / t of this head
        if FUSE_Q:
            tl.atomic_add(DT + bh, dt)
    tl.store(DV + v_off, dv.to(DV.dtype.element_ty), mask=kv_mask)
    tl.store(DLK + bhk.to(tl.int64) * Tk + offs_n, dlk, mask=n_valid)


@triton.jit
def _bwd_q_tile(dlq, dt, lq, lse, delta, do, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
                MASK: tl.constexpr, CAUSAL: tl.constexpr, IEEE: tl.constexpr, BLOCK_N: tl.constexpr):
    """One key tile's share of sum_j dS_ij sign(lq_i - lk_j) and sum_j dS_ij |lq_i - lk_j|."""
    diff, s, v = _key_tile(lq, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off, MASK, CAUSAL, BLOCK_N)
    p = tl.exp2(s - lse[:, None])
    dp = _pv(do, tl.trans(v), tl.zeros(p.shape, tl.float32), IEEE)
    ds = p * (dp - delta[:, None])
    sgn = tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0))
    return dlq + tl.sum(ds * sgn, 1), dt + tl.sum(ds * tl.abs(diff), 1)


@triton.jit
def bwd_q_kernel(LQ, LK, V, SCALE, DO, LSE, DELTA, DLQ, DT_PART, H, n_rep, Tq, Tk, D, off, n_q_tiles,
                 CAUSAL: tl.constexpr, IEEE: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    bh_kv = b * (H // n_rep) + (bh % H) // n_rep
    c = tl.load(SCALE + bh)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_valid = offs_m < Tq
    row = bh.to(tl.int64) * Tq
    lq = tl.load(LQ + row + offs_m, mask=m_valid, other=0.0)
    lse = tl.load(LSE + row + offs_m, mask=m_valid, other=float("inf"))
    delta = tl.load(DELTA + row + offs_m, mask=m_valid, other=0.0)
    do = tl.load(DO + row * D + offs_m[:, None] * D + offs_d[None, :], mask=m_valid[:, None] & (offs_d[None, :] < D),
                 other=0.0)
    lk_base = LK + bh_kv.to(tl.int64) * Tk
    v_base = V + bh_kv.to(tl.int64) * Tk * D
    dlq = tl.zeros([BLOCK_M], tl.float32)
    dt = tl.zeros([BLOCK_M], tl.float32)
    full_end, hi = _key_range(pid_m, Tk, off, CAUSAL, BLOCK_M, BLOCK_N)
    for start_n in range(0, full_end, BLOCK_N):
        dlq, dt = _bwd_q_tile(dlq, dt, lq, lse, delta, do, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
                              False, CAUSAL, IEEE, BLOCK_N)
    for start_n in range(full_end, hi, BLOCK_N):
        dlq, dt = _bwd_q_tile(dlq, dt, lq, lse, delta, do, c, lk_base, v_base, start_n, offs_m, offs_d, Tk, D, off,
                              True, CAUSAL, IEEE, BLOCK_N)
    tl.store(DLQ + row + offs_m, -dlq * (c * LN2), mask=m_valid)
    tl.store(DT_PART + bh.to(tl.int64) * n_q_tiles + pid_m, tl.sum(tl.where(m_valid, dt, 0.0), 0))
