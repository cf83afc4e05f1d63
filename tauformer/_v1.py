"""Fast exact tau attention in O(T log T * D) (SPEC section 6).

The weight of key j for query i is w_ij = exp(-|a_i - b_j| / t).  It factorises as
exp(-a_i/t) * exp(b_j/t) when b_j <= a_i and exp(a_i/t) * exp(-b_j/t) otherwise, so for keys
sorted by lambda both sum_j w_ij v_j and sum_j w_ij are a prefix sum plus a suffix sum, read off
at the query's rank (found by binary search).  A column of ones appended to v carries the
softmax denominator through the same sums.

Causality: time is split into 2^L blocks.  Inside a block the weights are computed densely with
the causal mask; at level l every left half of 2^(l+1) blocks serves every right half with no
mask, all pairs of one level in one batched sort + cumsum + gather.  The per-query factor
exp(-+a_i/t) is the same at every level, so the levels accumulate unscaled sums and the factor
is applied once at the end.

Numerics: lambdas are centred on the midpoint of their range per (batch, head), so every factor
lies in [exp(-r/t), exp(r/t)] with r the half range.  float32 is used while those factors and
their products stay far from overflow and underflow, float64 beyond that, and the dense kernel
(which subtracts the row maximum) when even float64 would not be safe.

Backward (a custom autograd Function) uses the same machinery: the value gradient is the
transposed attention, a second structured pass with queries as sources and time reversed; the
lambda gradients need sign-weighted sums sum_j w_ij sign(a_i - b_j) [v_j, 1], which the forward
pass keeps; the temperature gradient follows from scale invariance,
t * dL/dt = -(sum_i a_i dL/da_i + sum_j b_j dL/db_j).
"""

from __future__ import annotations

import math

import torch

from .errors import ShapeError
from .kernels import check_tau_inputs, tau_attention_dense

DEFAULT_BLOCK = 128
# Bounds on r/t (half range of lambda over temperature) and on the log of the largest sum.
_F32_MAX_SPREAD = 70.0  # weights down to exp(-70) ~ 4e-31, well above float32's 1e-38
_F32_MAX_LOG = 80.0  # float32 overflows at exp(88.7)
_F64_MAX_SPREAD = 1300.0  # float64 underflows at exp(-708)
_F64_MAX_LOG = 690.0  # float64 overflows at exp(709.8)


def tau_attention_fast(lambda_q, lambda_k, v, *, temperature=1.0, causal: bool = True, block: int | None = None):
    """Exact tau attention without the [Tq, Tk] weight matrix.

    Parameters
    ----------
    lambda_q : [B, H, Tq] query lambdas.
    lambda_k : [B, H, Tk] key lambdas (already repeated to H heads for GQA).
    v : [B, H, Tk, D] values.
    temperature : float or tensor of shape [], [H] or [B, H]; may require grad.
    causal : queries are the last Tq positions of the Tk keys and see keys up to their own.
    block : base block size for the dense diagonal blocks (default 128; actual size is in
        [block, 2 * block) so that the number of blocks is a power of two).

    Returns
    -------
    [B, H, Tq, D] in v's dtype; equal to `tau_attention_dense` up to rounding.  Falls back to
    the dense kernel where the temperature is so small (or the lambdas so spread) that the
    factorised sums would leave float64's range, and for empty inputs.
    """
    check_tau_inputs(lambda_q, lambda_k, v, causal)
    B, H, Tq = lambda_q.shape
    Tk = lambda_k.shape[-1]
    t_bh = temperature_bh(temperature, B, H, lambda_q.device)
    if Tq == 0 or Tk == 0 or v.shape[-1] == 0:
        return tau_attention_dense(lambda_q, lambda_k, v, temperature=temperature, causal=causal)
    plan = plan_precision(lambda_q, lambda_k, v, t_bh)
    if plan is None:
        return tau_attention_dense(lambda_q, lambda_k, v, temperature=temperature, causal=causal)
    dtype, centre = plan
    return _FastTau.apply(lambda_q, lambda_k, v, t_bh, centre, dtype, causal, int(block or DEFAULT_BLOCK))


def temperature_bh(temperature, B: int, H: int, device) -> torch.Tensor:
    """Temperature as a [B, H] tensor, differentiable with respect to a tensor argument."""
    if isinstance(temperature, torch.Tensor):
        t = temperature.to(device)
        if not t.is_floating_point():
            t = t.float()
    else:
        t = torch.tensor(float(temperature), device=device)
    if t.dim() == 0:
        return t.expand(B, H)
    if t.shape == (H,):
        return t.unsqueeze(0).expand(B, H)
    if t.shape == (B, H):
        return t
    raise ShapeError(f"temperature must be a float, [H]={H} or [B, H]=({B}, {H}); got {tuple(t.shape)}")


def plan_precision(lambda_q, lambda_k, v, t_bh):
    """Pick the accumulation dtype, or None when only the dense kernel is safe.

    Returns ``(dtype, centre)`` with centre the [B, H] midpoint of the lambdas.  One host sync.
    """
    with torch.no_grad():
        lq = lambda_q.detach()
        lk = lambda_k.detach()
        lo = torch.minimum(lq.amin(-1), lk.amin(-1)).double()
        hi = torch.maximum(lq.amax(-1), lk.amax(-1)).double()
        t = t_bh.detach().double()
        spread = ((hi - lo) / t).amax()  # = 2 r / t, the widest log-weight range of any head
        stats = torch.stack([spread, t.amin(), v.detach().abs().amax().double()]).tolist()
    spread, t_min, v_max = stats
    if not (math.isfinite(spread) and math.isfinite(v_max) and t_min > 0):
        return None
    log_max = spread / 2 + math.log(max(v_max, 1.0)) + math.log(lambda_k.shape[-1] + 1)
    wide = torch.float64 in (lambda_q.dtype, lambda_k.dtype, v.dtype)
    if not wide and spread <= _F32_MAX_SPREAD and log_max <= _F32_MAX_LOG:
        dtype = torch.float32
    elif spread <= _F64_MAX_SPREAD and log_max <= _F64_MAX_LOG:
        dtype = torch.float64
    else:
        return None
    return dtype, ((lo + hi) / 2).to(dtype)


class _FastTau(torch.autograd.Function):
    """Autograd wrapper: forward and backward both run the structured prefix-sum passes."""

    @staticmethod
    def forward(ctx, lambda_q, lambda_k, v, t_bh, centre, dtype, causal, block):
        B, H, Tq = lambda_q.shape
        Tk, D = v.shape[-2], v.shape[-1]
        G = B * H
        a = lambda_q.detach().reshape(G, Tq).to(dtype) - centre.reshape(G, 1)  # [G, Tq]
        b = lambda_k.detach().reshape(G, Tk).to(dtype) - centre.reshape(G, 1)  # [G, Tk]
        inv_t = 1.0 / t_bh.detach().reshape(G).to(dtype)  # [G]
        vg = v.detach().reshape(G, Tk, D)
        U = torch.empty(G, Tk, D + 1, dtype=dtype, device=v.device)  # [v, 1]
        U[..., :D] = vg
        U[..., D] = 1.0
        need_lambda = ctx.needs_input_grad[0] or ctx.needs_input_grad[1] or ctx.needs_input_grad[3]
        total, signed = _attention_sums(b, U, a, Tk, inv_t, causal=causal, reverse=False, signed=need_lambda,
                                        block=block)
        Z = total[..., D]  # [G, Tq]
        y = total[..., :D] / Z.unsqueeze(-1)
        ctx.save_for_backward(a, b, inv_t, vg, y, Z, signed if need_lambda else None)
        ctx.shape = (B, H, Tq, Tk, D)
        ctx.dtypes = (lambda_q.dtype, lambda_k.dtype, v.dtype, t_bh.dtype)
        ctx.causal, ctx.block = causal, block
        return y.reshape(B, H, Tq, D).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        a, b, inv_t, vg, y, Z, signed = ctx.saved_tensors
        B, H, Tq, Tk, D = ctx.shape
        G = B * H
        dq_dtype, dk_dtype, v_dtype, t_dtype = ctx.dtypes
        need_q, need_k, need_v, need_t = ctx.needs_input_grad[:4]
        dtype = y.dtype
        g = grad_y.reshape(G, Tq, D).to(dtype)
        delta = (g * y).sum(-1)  # [G, Tq] = g_i . y_i
        rz = 1.0 / Z
        Uq = torch.empty(G, Tq, D + 1, dtype=dtype, device=g.device)  # [g/Z, delta/Z]
        torch.mul(g, rz.unsqueeze(-1), out=Uq[..., :D])
        torch.mul(delta, rz, out=Uq[..., D])

        grad_q = grad_k = grad_v = grad_t = None
        da = db = None
        if need_q or need_t:
            x = (g * signed[..., :D]).sum(-1) - delta * signed[..., D]  # sum_j p_ij sgn_ij (g.v_j - delta)*Z
            da = -x * rz * inv_t.unsqueeze(-1)  # [G, Tq]
        if need_v or need_k or need_t:
            want_signed = need_k or need_t
            vg_c = vg.to(dtype)
            total_t, raw_t = _attention_sums(a, Uq, b, Tk, inv_t, causal=ctx.causal, reverse=True,
                                             signed=want_signed, block=ctx.block)
            if need_v:
                grad_v = total_t[..., :D].reshape(B, H, Tk, D).to(v_dtype)
            if want_signed:
                # sign(a_i - b_j) = -sign(target - source) in this transposed pass
                db = -((vg_c * raw_t[..., :D]).sum(-1) - raw_t[..., D]) * inv_t.unsqueeze(-1)  # [G, Tk]
        if need_q:
            grad_q = da.reshape(B, H, Tq).to(dq_dtype)
        if need_k:
            grad_k = db.reshape(B, H, Tk).to(dk_dtype)
        if need_t:
            grad_t = (-((a * da).sum(-1) + (b * db).sum(-1)) * inv_t).reshape(B, H).to(t_dtype)
        return grad_q, grad_k, grad_v, grad_t, None, None, None, None


def _attention_sums(xs, Us, xt, T, inv_t, *, causal, reverse, signed, block):
    """Sums over sources of w * Us for every target, w = exp(-|xt - xs| * inv_t).

    Parameters
    ----------
    xs : [G, Ns] centred source lambdas; Us : [G, Ns, E] source rows.
    xt : [G, Nt] centred target lambdas.
    T : length of the causal timeline.  Forward (reverse=False): sources are positions 0..Ns-1,
        targets the last Nt positions, and target p sees sources at positions <= p.  Transposed
        (reverse=True): sources are the last Ns positions, targets 0..Nt-1, and target p sees
        sources at positions >= p.
    inv_t : [G] inverse temperatures.
    signed : also return sum of sign(xt - xs) * w * Us.

    Returns
    -------
    (total [G, Nt, E], signed [G, Nt, E] or None)
    """
    if not causal:
        return _full_sums(xs, Us, xt, inv_t, signed)
    Ns, Nt = xs.shape[1], xt.shape[1]
    src0, tgt0 = (T - Ns, 0) if reverse else (0, T - Nt)
    return _causal_sums(xs, Us, src0, xt, tgt0, T, inv_t, reverse, signed, block)


def _block_layout(T: int, block: int) -> tuple[int, int]:
    """(number of blocks, a power of two; block size in [block, 2 * block)) covering T."""
    n_levels = max(0, int(math.floor(math.log2(max(T, 1) / block)))) if T > block else 0
    nb = 1 << n_levels
    return nb, -(-T // nb)


def _overlaps(start: int, length: int, lo: int, n: int) -> bool:
    return start < lo + n and lo < start + length


def _build_table(xs, Us, src0, P, inv_t):
    """Rows exp(+xs/t) * Us then exp(-xs/t) * Us on a zero-padded timeline, then one zero row.

    Returns the flat table [2 * G * P + 1, E].
    """
    G, Ns, E = Us.shape
    tab = Us.new_empty(2 * G * P + 1, E)
    halves = tab[: 2 * G * P].view(2, G, P, E)
    if src0 > 0:
        halves[:, :, :src0].zero_()
    if src0 + Ns < P:
        halves[:, :, src0 + Ns:].zero_()
    e_pos = (xs * inv_t.unsqueeze(-1)).exp_().unsqueeze(-1)  # [G, Ns, 1]
    torch.mul(Us, e_pos, out=halves[0, :, src0:src0 + Ns])
    torch.div(Us, e_pos, out=halves[1, :, src0:src0 + Ns])
    tab[-1].zero_()
    return tab


def _segment_rows(tab, GP, xs_seg, rowbase, xt_seg, signed):
    """Unscaled prefix / suffix sums of sorted source segments, read at each target's rank.

    xs_seg [G, K, s] source lambdas of K segments whose table rows start at rowbase [G, K];
    xt_seg [G, K, m] targets of the same segments.  Returns [G, K, m, R, E] with R = 2 (or 3):
    sum over xs <= xt of exp(xs/t) U, sum over xs > xt of exp(-xs/t) U (and sum over xs < xt of
    exp(xs/t) U).
    """
    G, K, s = xs_seg.shape
    m = xt_seg.shape[-1]
    E = tab.shape[-1]
    vals, order = xs_seg.sort(dim=-1)
    asc = order.add_(rowbase.unsqueeze(-1))  # [G, K, s] table rows in ascending lambda order
    idx = torch.empty(G, K, 2, s + 1, dtype=torch.long, device=tab.device)
    idx[..., 0] = 2 * GP  # the zero row: prefix sums start at 0
    idx[:, :, 0, 1:] = asc
    torch.add(asc.flip(-1), GP, out=idx[:, :, 1, 1:])
    sums = tab.index_select(0, idx.view(-1)).view(G, K, 2, s + 1, E)
    sums.cumsum_(3)
    xt_c = xt_seg.contiguous()
    pos = torch.searchsorted(vals, xt_c, right=True)  # [G, K, m] sources <= target
    seg = torch.arange(G * K, device=tab.device).view(G, K, 1) * (2 * (s + 1))
    R = 3 if signed else 2
    gidx = torch.empty(G, K, m, R, dtype=torch.long, device=tab.device)
    torch.add(seg, pos, out=gidx[..., 0])
    torch.sub(seg + (2 * s + 1), pos, out=gidx[..., 1])
    if signed:
        torch.add(seg, torch.searchsorted(vals, xt_c, right=False), out=gidx[..., 2])
    return sums.view(-1, E).index_select(0, gidx.view(-1)).view(G, K, m, R, E)


def _scale_rows(rows, xt, inv_t, signed):
    """Apply the per-target factors: rows [G, N, R, E] unscaled -> (total, signed) [G, N, E]."""
    e_pos = (xt * inv_t.unsqueeze(-1)).exp_().unsqueeze(-1)  # [G, N, 1]
    e_neg = 1.0 / e_pos
    hi = rows[..., 1, :] * e_pos
    total = torch.addcmul(hi, rows[..., 0, :], e_neg)
    sg = torch.addcmul(hi.neg_(), rows[..., 2, :], e_neg) if signed else None
    return total, sg


def _full_sums(xs, Us, xt, inv_t, signed):
    """Non-causal: one segment holding every source, read by every target."""
    G, Ns = xs.shape
    tab = _build_table(xs, Us, 0, Ns, inv_t)
    rowbase = (torch.arange(G, device=xs.device) * Ns).view(G, 1)
    rows = _segment_rows(tab, G * Ns, xs.unsqueeze(1), rowbase, xt.unsqueeze(1), signed)
    return _scale_rows(rows[:, 0], xt, inv_t, signed)


def _causal_sums(xs, Us, src0, xt, tgt0, T, inv_t, reverse, signed, block):
    """Causal sums by recursive time splitting (see `_attention_sums`)."""
    G, Ns, E = Us.shape
    Nt = xt.shape[1]
    nb, Cb = _block_layout(T, block)
    P = nb * Cb
    GP = G * P
    xs_f = xs.new_zeros(G, P)
    xs_f[:, src0:src0 + Ns] = xs
    xt_f = xt.new_zeros(G, P)
    xt_f[:, tgt0:tgt0 + Nt] = xt
    R = 3 if signed else 2
    hs, ht = (1, 0) if reverse else (0, 1)  # which half of a pair holds sources / targets

    acc = None
    if nb > 1:
        tab = _build_table(xs, Us, src0, P, inv_t)
        acc = Us.new_zeros(G, P, R, E)
        g_base = torch.arange(G, device=xs.device).view(G, 1) * P
        for level in range(nb.bit_length() - 1):
            s = Cb << level
            npairs = nb >> (level + 1)
            ks = [k for k in range(npairs)
                  if _overlaps(2 * k * s + hs * s, s, src0, Ns) and _overlaps(2 * k * s + ht * s, s, tgt0, Nt)]
            if not ks:
                continue
            klo, khi = ks[0], ks[-1] + 1
            xs_seg = xs_f.view(G, npairs, 2, s)[:, klo:khi, hs]  # [G, K, s]
            xt_seg = xt_f.view(G, npairs, 2, s)[:, klo:khi, ht]
            starts = torch.arange(klo, khi, device=xs.device) * (2 * s) + hs * s  # [K]
            rows = _segment_rows(tab, GP, xs_seg, g_base + starts, xt_seg, signed)  # [G, K, s, R, E]
            acc.view(G, npairs, 2, s, R, E)[:, klo:khi, ht] += rows
        del tab

    if acc is None:
        total = Us.new_zeros(G, Nt, E)
        sg = Us.new_zeros(G, Nt, E) if signed else None
    else:
        total, sg = _scale_rows(acc[:, tgt0:tgt0 + Nt], xt, inv_t, signed)
        del acc

    # Dense diagonal blocks, on the blocks that hold both sources and targets.
    bl = [i for i in range(nb) if _overlaps(i * Cb, Cb, src0, Ns) and _overlaps(i * Cb, Cb, tgt0, Nt)]
    if not bl:
        return total, sg
    blo, bhi = bl[0], bl[-1] + 1
    w0 = blo * Cb  # first position of the dense-block window
    xs_b = xs_f.view(G, nb, Cb)[:, blo:bhi]  # [G, nbb, Cb]
    xt_b = xt_f.view(G, nb, Cb)[:, blo:bhi]
    U_b = Us.new_zeros(G, (bhi - blo) * Cb, E)
    lo, hi = max(src0, w0), min(src0 + Ns, bhi * Cb)
    U_b[:, lo - w0:hi - w0] = Us[:, lo - src0:hi - src0]
    U_b = U_b.view(G, bhi - blo, Cb, E)
    d = xt_b.unsqueeze(-1) - xs_b.unsqueeze(-2)  # [G, nbb, Cb(target), Cb(source)]
    w = d.abs().mul_(-inv_t.view(G, 1, 1, 1)).exp_()
    keep = torch.ones(Cb, Cb, dtype=torch.bool, device=xs.device)
    keep = keep.triu() if reverse else keep.tril()
    w.masked_fill_(~keep, 0.0)
    lo, hi = max(tgt0, w0), min(tgt0 + Nt, bhi * Cb)  # targets inside the window
    total[:, lo - tgt0:hi - tgt0] += (w @ U_b).view(G, -1, E)[:, lo - w0:hi - w0]
    if signed:
        sg[:, lo - tgt0:hi - tgt0] += (w.mul_(d.sign_()) @ U_b).view(G, -1, E)[:, lo - w0:hi - w0]
    return total, sg
