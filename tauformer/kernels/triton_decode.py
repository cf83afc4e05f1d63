"""Split-K single-query tau attention in Triton (flash-decoding, SPEC section 6b).

One decode step has one query per head against the whole (V, lambda_k) cache.  The keys are cut
into chunks; a program per (chunk, batch, kv head) reads its chunk of lambda_k and V once for
all the query heads that share that kv head (GQA) and writes a partial (max, sum, P V) triple
per query head; a second kernel merges the chunks' triples.  The number of chunks depends only
on the cache length Tk, so a step over a static cache (keys beyond ``length`` masked) has fixed
shapes and can be captured in a CUDA graph.
"""

from __future__ import annotations

import functools
import math

import torch

from .triton_tau import LOG2E, check_device, interpreting

BLOCK_N = 64
TARGET_PROGRAMS = 2  # per streaming multiprocessor
MAX_SPLITS = 128


@functools.lru_cache(maxsize=8)
def _multiprocessors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def plan_splits(Tk: int, programs_per_split: int, device) -> tuple[int, int]:
    """(number of chunks, keys per chunk): enough programs to fill the GPU, chunks of whole tiles."""
    tiles = math.ceil(Tk / BLOCK_N)
    if interpreting() or torch.device(device).type != "cuda":
        want = 4
    else:
        index = torch.device(device).index
        sms = _multiprocessors(torch.cuda.current_device() if index is None else index)
        want = max(1, TARGET_PROGRAMS * sms // max(1, programs_per_split))
    splits = max(1, min(tiles, want, MAX_SPLITS))
    chunk = math.ceil(tiles / splits) * BLOCK_N
    return math.ceil(Tk / chunk), chunk


def tau_decode_triton(lq, lk, v, t_bh, length: torch.Tensor | None = None):
    """One query per head: lq [B, H, 1], lk [B, H_kv, Tk] (float32), v [B, H_kv, Tk, D], t_bh [B, H].

    ``length`` (an int tensor of one element, on v's device) limits attention to the first
    ``length`` keys; None means all Tk.  Returns [B, H, 1, D] in v's dtype.  No autograd.
    """
    from ._triton_decode_kernels import decode_combine_kernel, decode_split_kernel

    check_device(lq, lk, v)
    B, H, _ = lq.shape
    H_kv, Tk, D = v.shape[1], v.shape[2], v.shape[3]
    n_rep = H // H_kv
    lq = lq.reshape(B, H).float().contiguous()
    lk = lk.float().contiguous()
    v = v.contiguous()
    scale = (LOG2E / t_bh.float()).reshape(B * H).contiguous()
    splits, chunk = plan_splits(Tk, B * H_kv, v.device)
    m_part = torch.empty((B * H, splits), device=v.device, dtype=torch.float32)
    l_part = torch.empty_like(m_part)
    acc_part = torch.empty((B * H, splits, D), device=v.device, dtype=torch.float32)
    block_d = max(16, 1 << (D - 1).bit_length())
    block_r = max(2, 1 << (n_rep - 1).bit_length())  # padded query heads are masked
    block_n = max(16, min(BLOCK_N, 8192 // (block_r * block_d)))
    has_len = length is not None
    decode_split_kernel[(splits, B * H_kv)](
        lq, lk, v, scale, length if has_len else lq, m_part, l_part, acc_part, H, n_rep, Tk, D, chunk, splits,
        HAS_LEN=has_len, BLOCK_R=block_r, BLOCK_N=block_n, BLOCK_D=block_d, num_warps=8 if block_d >= 256 else 4)
    out = torch.empty((B, H, 1, D), device=v.device, dtype=v.dtype)
    decode_combine_kernel[(B * H,)](m_part, l_part, acc_part, out, splits, D,
                                    BLOCK_S=max(2, 1 << (splits - 1).bit_length()), BLOCK_D=block_d, num_warps=4)
    return out
