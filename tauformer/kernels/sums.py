"""Structured sums behind fast tau attention: causal prefix sums over lambda-sorted sources.

For targets x_t and sources x_s (centred lambdas) with rows U_s, this computes for every target
sum_s exp(-|x_t - x_s| / t) U_s over the sources it may see (and optionally the sum with
sign(x_t - x_s)), in O(T log T * E) for rows of width E.  `tauformer.kernels.fast` runs it once
forward (keys are sources) and once backward (queries are sources, time reversed).

Layout: the timeline of T positions is padded to nb * Cb, nb a power of two.  The diagonal
blocks of Cb positions are computed densely with the causal mask.  At level l, pairs of halves
of Cb * 2^l positions: the sources of each left half serve the targets of its right half with
no mask.  All levels are done together: every half's sources are sorted, their rows exp(+x/t) U
(ascending lambda) and exp(-x/t) U (descending) are gathered in one index_select and prefix-
summed per segment (in-chunk scans as one matrix product, then chunk carries); each target then
reads, per level, the prefix over sources <= it and the one over sources > it, found by
searchsorted, and one embedding_bag sums all of them with weights exp(-x_t/t) and exp(+x_t/t).
"""

from __future__ import annotations

import functools
import math
import threading

import torch
import torch.nn.functional as F

_CHUNK = 16  # in-chunk prefix sums are one matrix product; block sizes are multiples of it


class _Scratch(threading.local):
    """Reusable CPU scratch buffers, one per name and dtype.

    Large fresh CPU allocations are returned to the OS when freed, so every call would pay page
    faults on hundreds of MB; reusing buffers avoids that.  Buffers never leave this module
    (outputs and saved tensors are fresh).  CUDA's caching allocator already reuses memory.
    """

    max_bytes = 1 << 30  # no single buffer above this is kept

    def __init__(self):
        self.buffers: dict = {}

    def take(self, name: str, shape, dtype, device) -> torch.Tensor:
        numel = math.prod(shape)
        if device.type != "cpu" or numel * dtype.itemsize > self.max_bytes:
            return torch.empty(shape, dtype=dtype, device=device)
        buf = self.buffers.get((name, dtype))
        if buf is None or buf.numel() < numel:
            buf = self.buffers[(name, dtype)] = torch.empty(numel, dtype=dtype)
        return buf[:numel].view(shape)


_SCRATCH = _Scratch()


def release_scratch() -> None:
    """Free the CPU scratch buffers the fast kernel keeps between calls (in this thread)."""
    _SCRATCH.buffers.clear()


@functools.lru_cache(maxsize=32)
def _triangle(n: int, upper: bool, dtype, device) -> torch.Tensor:
    """Cached [n, n] matrix of ones on and below (upper: above) the diagonal."""
    ones = torch.ones(n, n, dtype=dtype, device=device)
    return ones.triu() if upper else ones.tril()


def attention_sums(xs, V, last, scale, xt, T, inv_t, *, causal, reverse, signed, block):
    """Sums over sources of w * U for every target, w = exp(-|xt - xs| * inv_t), U = scale * [V, last].

    Parameters
    ----------
    xs : [G, Ns] centred source lambdas.
    V : [G, Ns, D] source rows; last : [G, Ns] their extra column (None: ones); scale : [G, Ns]
        factor on both (None: ones).
    xt : [G, Nt] centred target lambdas.
    T : length of the causal timeline.  Forward (reverse=False): sources are positions 0..Ns-1,
        targets the last Nt positions, and target p sees sources at positions <= p.  Transposed
        (reverse=True): sources are the last Ns positions, targets 0..Nt-1, and target p sees
        sources at positions >= p.
    inv_t : [G] inverse temperatures.
    signed : also return the sum of sign(xt - xs) * w * U.

    Returns
    -------
    (total [G, Nt, D + 1], signed [G, Nt, D + 1] or None), fresh tensors.
    """
    G, Ns = xs.shape
    Nt = xt.shape[1]
    if not causal:
        tab = _build_table(xs, V, last, scale, 0, Ns, inv_t)
        levels = [_Level(s=Ns, npairs=1, klo=0, khi=1)]
        return _level_sums(tab, xs, xt, xt, inv_t, levels, 0, Ns, Nt, signed, None, _CHUNK)
    src0, tgt0 = (T - Ns, 0) if reverse else (0, T - Nt)
    nb, Cb, chunk = _block_layout(T, block)
    P = nb * Cb
    xs_f = xs.new_zeros(G, P)  # lambdas on the zero-padded timeline
    xs_f[:, src0:src0 + Ns] = xs
    xt_f = xt.new_zeros(G, P)
    xt_f[:, tgt0:tgt0 + Nt] = xt
    hs, ht = (1, 0) if reverse else (0, 1)  # which half of a pair holds sources / targets
    levels = []
    for level in range(nb.bit_length() - 1):
        s = Cb << level
        npairs = nb >> (level + 1)
        ks = [k for k in range(npairs)
              if _overlaps(2 * k * s + hs * s, s, src0, Ns) and _overlaps(2 * k * s + ht * s, s, tgt0, Nt)]
        if ks:
            levels.append(_Level(s=s, npairs=npairs, klo=ks[0], khi=ks[-1] + 1))
    if levels:
        tab = _build_table(xs, V, last, scale, src0, P, inv_t)
        total, sig = _level_sums(tab, xs_f, xt_f, xt, inv_t, levels, tgt0, P, P, signed, (hs, ht), chunk)
        del tab
    else:
        total = xs.new_zeros(G, Nt, V.shape[-1] + 1)
        sig = torch.zeros_like(total) if signed else None
    _add_dense_blocks(total, sig, xs_f, xt_f, V, last, scale, src0, tgt0, Ns, nb, Cb, inv_t, reverse)
    return total, sig


class _Level:
    """One level of the time split: pairs of halves of s positions; pairs klo..khi-1 are used."""

    __slots__ = ("s", "npairs", "klo", "khi")

    def __init__(self, s, npairs, klo, khi):
        self.s, self.npairs, self.klo, self.khi = s, npairs, klo, khi


def _block_layout(T: int, block: int) -> tuple[int, int, int]:
    """(number of blocks, a power of two; block size; chunk of the prefix sums, which divides it).

    The block size is about T / nb, in [block, 2 * block), rounded up to a multiple of the chunk.
    """
    n_levels = int(math.floor(math.log2(T / block))) if T >= 2 * block else 0
    nb = 1 << n_levels
    chunk = min(_CHUNK, 1 << int(math.log2(block)))
    if nb == 1:
        return 1, T, chunk
    return nb, -(-T // (nb * chunk)) * chunk, chunk


def _overlaps(start: int, length: int, lo: int, n: int) -> bool:
    return start < lo + n and lo < start + length


def _build_table(xs, V, last, scale, src0, P, inv_t):
    """Flat [2 * G * P + 1, E] table: rows exp(+xs/t) * U, then exp(-xs/t) * U, on a zero-padded
    timeline of P positions, then one zero row."""
    G, Ns, D = V.shape
    tab = _SCRATCH.take("table", (2 * G * P + 1, D + 1), xs.dtype, xs.device)
    halves = tab[:-1].view(2, G, P, D + 1)
    if src0 > 0:
        halves[:, :, :src0].zero_()
    if src0 + Ns < P:
        halves[:, :, src0 + Ns:].zero_()
    tab[-1].zero_()
    e_pos = (xs * inv_t.unsqueeze(-1)).exp_()  # [G, Ns]
    e_neg = e_pos.reciprocal()
    if scale is not None:
        e_pos.mul_(scale)
        e_neg.mul_(scale)
    part = halves[:, :, src0:src0 + Ns]  # [2, G, Ns, E]
    torch.mul(V, e_pos.unsqueeze(-1), out=part[0, ..., :D])
    torch.mul(V, e_neg.unsqueeze(-1), out=part[1, ..., :D])
    if last is None:
        part[0, ..., D] = e_pos
        part[1, ..., D] = e_neg
    else:
        torch.mul(last, e_pos, out=part[0, ..., D])
        torch.mul(last, e_neg, out=part[1, ..., D])
    return tab


def _level_sums(tab, xs_f, xt_f, xt, inv_t, levels, tgt0, P, Pt, signed, halves, c):
    """Level contributions for every target: ([G, Nt, E] total, signed or None).

    xs_f [G, P] sources and xt_f [G, Pt] targets on their timelines; xt [G, Nt] the real
    targets, which start at position tgt0 of theirs.  ``halves`` is (source half, target half)
    of each pair, or None for one unmasked segment holding all P sources (non-causal).  c is
    the chunk of the prefix sums.

    Each level's source halves are sorted and their table rows gathered in ascending lambda
    order (exp(+x) rows) and in descending order (exp(-x) rows), then prefix-summed per segment
    (see `_segment_prefix_sums`).  A target needs, per level, the ascending prefix over sources
    <= it and the descending prefix over sources > it; one embedding bag per target sums those
    rows over all levels with weights exp(-x/t) and exp(+x/t).  Where a position is no target
    of a level, or a prefix is empty, its entry points at a zero row.
    """
    G, Nt = xt.shape
    E = tab.shape[-1]
    dev = tab.device
    GP = G * P
    zero_tab = 2 * GP  # the table's zero row
    L = len(levels)
    g_rows = torch.arange(G, device=dev).view(G, 1, 1) * P

    # 1. sorted segments: [n_seg, s_pad] table rows per level, padded with the zero row
    seqs, plans = [], []
    m0 = 0
    for lv in levels:
        s, K = lv.s, lv.khi - lv.klo
        if halves is None:
            src, start = xs_f.view(G, 1, s), 0
        else:
            src = xs_f.view(G, lv.npairs, 2, s)[:, lv.klo:lv.khi, halves[0]]  # [G, K, s]
            start = halves[0] * s
        vals, order = src.sort(dim=-1)
        s_pad = -(-s // c) * c
        starts = torch.arange(lv.klo, lv.khi, device=dev).view(1, K, 1) * (2 * s) + start
        asc = order.add_(g_rows + starts)  # [G, K, s] table rows in ascending lambda order
        seq = torch.full((G, K, 2, s_pad), zero_tab, dtype=torch.long, device=dev)
        seq[:, :, 0, :s] = asc
        torch.add(asc.flip(-1), GP, out=seq[:, :, 1, :s])
        seqs.append(seq.view(-1, c))  # [chunks, c]
        plans.append((lv, vals, m0, s_pad // c))
        m0 += G * K * 2 * (s_pad // c)
    M = m0  # number of chunks over all levels
    sums = _segment_prefix_sums(tab, torch.cat(seqs).t(), plans, G)  # [c * M + 1, E]
    zero = c * M  # the zero row of sums

    # 2. bag entries: per target and level, rows of the two prefix sums
    idx_tot = _SCRATCH.take("bag_total", (G, Pt, L, 2), torch.long, dev)
    idx_tot.fill_(zero)
    idx_sig = None
    if signed:
        idx_sig = _SCRATCH.take("bag_signed", (G, Pt, L, 2), torch.long, dev)
        idx_sig.fill_(zero)

    def row_of(first_chunk, n):
        """Row of sums holding the prefix over the first n sources of a segment (zero row if n=0)."""
        p = (n - 1).clamp_min_(0)
        row = (p % c) * M + first_chunk + torch.div(p, c, rounding_mode="floor")
        return torch.where(n > 0, row, zero)

    for j, (lv, vals, m_first, q) in enumerate(plans):
        s, K = lv.s, lv.khi - lv.klo
        if halves is None:
            tgt = xt_f.view(G, 1, Pt)
            iv, isg = (None if a is None else a.view(G, 1, Pt, L, 2)[:, :, :, j] for a in (idx_tot, idx_sig))
        else:
            tgt = xt_f.view(G, lv.npairs, 2, s)[:, lv.klo:lv.khi, halves[1]].contiguous()
            view = (slice(None), slice(lv.klo, lv.khi), halves[1], slice(None), j)
            iv, isg = (None if a is None else a.view(G, lv.npairs, 2, s, L, 2)[view] for a in (idx_tot, idx_sig))
        # iv: [G, K, m, 2] this level's bag entries for the targets of its segments
        seg = m_first + torch.arange(G * K, device=dev).view(G, K, 1) * (2 * q)  # first chunk, ascending
        pos_le = torch.searchsorted(vals, tgt, right=True)  # [G, K, m] sources <= target
        iv[..., 0] = row_of(seg, pos_le)
        iv[..., 1] = row_of(seg + q, s - pos_le)
        if signed:
            isg[..., 0] = row_of(seg, torch.searchsorted(vals, tgt, right=False))
            isg[..., 1] = iv[..., 1]

    e_pos = (xt * inv_t.unsqueeze(-1)).exp_()  # [G, Nt] target factors
    e_neg = e_pos.reciprocal()
    tw = slice(tgt0, tgt0 + Nt)
    w = torch.stack([e_neg, e_pos], dim=-1).unsqueeze(2).expand(G, Nt, L, 2).reshape(G * Nt, 2 * L)
    total = F.embedding_bag(idx_tot[:, tw].reshape(G * Nt, 2 * L), sums, per_sample_weights=w, mode="sum")
    sig = None
    if signed:
        w = torch.stack([e_neg, -e_pos], dim=-1).unsqueeze(2).expand(G, Nt, L, 2).reshape(G * Nt, 2 * L)
        sig = F.embedding_bag(idx_sig[:, tw].reshape(G * Nt, 2 * L), sums, per_sample_weights=w, mode="sum")
        sig = sig.view(G, Nt, E)
    return total.view(G, Nt, E), sig


def _segment_prefix_sums(tab, rows, plans, G):
    """Inclusive prefix sums of gathered table rows within each sorted segment.

    rows [c, M]: table row of element r of chunk m; a segment is q consecutive chunks.  The
    gather lays chunks out position-major, so the in-chunk scan is one [c, c] x [c, M * E]
    matrix product with a lower-triangular matrix of ones; each chunk then adds the exclusive
    prefix of its segment's earlier chunk totals.  Returns [c * M + 1, E]; row r * M + m holds
    the prefix up to element r of chunk m, and the last row is zero.
    """
    c, M = rows.shape
    E = tab.shape[-1]
    dev = tab.device
    gathered = _SCRATCH.take("gathered", (c * M, E), tab.dtype, dev)
    torch.index_select(tab, 0, rows.reshape(-1), out=gathered)
    sums = _SCRATCH.take("sums", (c * M + 1, E), tab.dtype, dev)
    tri = _triangle(c, False, tab.dtype, dev)
    torch.mm(tri, gathered.view(c, M * E), out=sums[:-1].view(c, M * E))
    sums[-1].zero_()
    chunk_tot = sums[(c - 1) * M:c * M]  # [M, E] chunk totals
    carry = _SCRATCH.take("carry", (M, E), tab.dtype, dev)
    for lv, _, m_first, q in plans:
        n_chunks = G * (lv.khi - lv.klo) * 2 * q
        tot = chunk_tot[m_first:m_first + n_chunks].view(-1, q, E)
        car = carry[m_first:m_first + n_chunks].view(-1, q, E)
        car[:, 0].zero_()
        if q > 1:
            car[:, 1:] = tot[:, :-1].cumsum(1)  # exclusive prefix of chunk totals (1/c of the data)
    sums[:-1].view(c, M, E).add_(carry)
    return sums


def _add_dense_blocks(total, sig, xs_f, xt_f, V, last, scale, src0, tgt0, Ns, nb, Cb, inv_t, reverse):
    """Add the diagonal blocks' contributions (dense weights, causal mask) into total / sig."""
    G, Nt, E = total.shape
    D = E - 1
    dev = total.device
    bl = [i for i in range(nb) if _overlaps(i * Cb, Cb, src0, Ns) and _overlaps(i * Cb, Cb, tgt0, Nt)]
    if not bl:
        return
    blo, bhi = bl[0], bl[-1] + 1
    nbb = bhi - blo
    w0 = blo * Cb  # first position of the window of dense blocks
    # unscaled source rows [V, last] * scale on the window
    U = _SCRATCH.take("block_rows", (G, nbb * Cb, E), total.dtype, dev)
    lo, hi = max(src0, w0), min(src0 + Ns, bhi * Cb)
    if lo - w0 > 0:
        U[:, :lo - w0].zero_()
    if hi < bhi * Cb:
        U[:, hi - w0:].zero_()
    part = U[:, lo - w0:hi - w0]
    sl = slice(lo - src0, hi - src0)
    if scale is None:
        part[..., :D] = V[:, sl]
        if last is None:
            part[..., D] = 1.0
        else:
            part[..., D] = last[:, sl]
    else:
        torch.mul(V[:, sl], scale[:, sl].unsqueeze(-1), out=part[..., :D])
        if last is None:
            part[..., D] = scale[:, sl]
        else:
            torch.mul(last[:, sl], scale[:, sl], out=part[..., D])
    it = inv_t.view(G, 1, 1)
    xs_b = (xs_f.view(G, nb, Cb)[:, blo:bhi] * it).unsqueeze(-2)  # [G, nbb, 1, Cb] sources
    xt_b = (xt_f.view(G, nb, Cb)[:, blo:bhi] * it).unsqueeze(-1)  # [G, nbb, Cb, 1] targets
    w = _SCRATCH.take("block_weights", (G, nbb, Cb, Cb), total.dtype, dev)
    torch.sub(xt_b, xs_b, out=w)
    sg = None
    if sig is not None:
        sg = _SCRATCH.take("block_signs", (G, nbb, Cb, Cb), total.dtype, dev)
        torch.sign(w, out=sg)
    keep = _triangle(Cb, reverse, total.dtype, dev)  # [target, source] causal mask
    w.abs_().neg_().exp_().mul_(keep)
    Ub = U.view(G, nbb, Cb, E)
    lo, hi = max(tgt0, w0), min(tgt0 + Nt, bhi * Cb)  # targets inside the window
    sl_t, sl_w = slice(lo - tgt0, hi - tgt0), slice(lo - w0, hi - w0)
    total[:, sl_t] += torch.matmul(w, Ub).view(G, -1, E)[:, sl_w]
    if sig is not None:
        sig[:, sl_t] += torch.matmul(w.mul_(sg), Ub).view(G, -1, E)[:, sl_w]
