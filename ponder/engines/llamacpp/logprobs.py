"""Log-probabilities from a decode's logits: the chosen token's and the top k, vectorised."""

from __future__ import annotations

import numpy as np

from ponder.engines.llamacpp.capi import FloatArray, IntArray


def logprob_table(
    logits: FloatArray, k: int, scratch: FloatArray
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Row-wise log-sum-exp and (when k > 0) the top-k tokens and logprobs, best first.

    Vectorised over the (rows, n_vocab) logits; `scratch` is a preallocated buffer of at
    least that shape (no per-step allocation of a vocab-sized array).
    """
    rows = len(logits)
    peak = logits.max(axis=1, keepdims=True)
    buf = scratch[:rows]
    np.subtract(logits, peak, out=buf)
    np.exp(buf, out=buf)
    lse: FloatArray = peak[:, 0] + np.log(buf.sum(axis=1))
    if k <= 0:
        return lse, np.empty((rows, 0), np.int64), np.empty((rows, 0), np.float32)
    k = min(k, logits.shape[1])
    ids = np.empty((rows, k), np.int64)
    for r in range(rows):
        ids[r] = top_k(logits[r], float(peak[r, 0]), k)
    lps: FloatArray = np.take_along_axis(logits, ids, axis=1) - lse[:, None]
    return lse, ids, lps


def top_k(row: FloatArray, peak: float, k: int) -> IntArray:
    """Ids of the k largest logits, best first. Looks among the logits within 12 nats of the
    peak first (a few hundred at most, usually), falling back to the whole row."""
    cand = np.flatnonzero(row >= peak - 12.0)
    if len(cand) < k:
        cand = np.arange(len(row))
    part = cand[np.argpartition(row[cand], len(cand) - k)[len(cand) - k :]]
    order = np.argsort(-row[part], kind="stable")
    out: IntArray = part[order].astype(np.int64)
    return out
