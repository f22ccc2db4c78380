"""The compiled merge loop of :mod:`genaannot.bpe` (imports ``numba``; imported lazily).

Compiled once per machine: ``cache=True`` keeps the machine code beside this file (or in
numba's user cache directory where that is not writable); later processes load it.
"""

import numba
import numpy as np

#: multiplier of the pair hash (equal to genaannot.bpe._HASH)
_HASH = 0x5851F42D4C957F2D


@numba.njit(cache=True, nogil=True)
def _lookup(table, mask, key):
    i = (((key * _HASH) & 0x7FFFFFFFFFFFFFFF) >> 20) & mask
    while True:
        v = table[i]
        if (v >> 31) == key:
            return v & 0x7FFFFFFF
        if v == -1:
            return -1
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def merge(ids, lens, word_start, table, mask, rank_new, rank_left, rank_right, vocab_n):
    """Apply the merges to the symbols ``ids`` in place; return how many symbols are left
    (compacted to the front of ``ids`` and ``lens``).

    ``tokenizers`` keeps a heap of (rank, position) of the pairs that have a merge and pops
    the least. Here every merge's parts are made by lower-ranked merges (checked by
    :meth:`genaannot.bpe.FastBPE.from_spec`), so each pair a merge creates ranks above it: the heap's
    minimum never decreases, and one bucket per rank, emptied in rank order and each in
    position order, pops the same entries in the same order, in linear time. An entry is
    applied only if it is still current, as in ``tokenizers``: its symbol exists, has a right
    neighbour in the same word, and that pair still makes the same token. Pairs and ranks
    are one-to-one and every token is made by one merge (both checked by ``from_spec``), so
    "still makes the same token" is "is still this rank's pair": two array reads, no lookup.

    Parameters
    ----------
    ids : int32 [n]
        Initial symbols (one per letter, a gap run's one symbol); overwritten.
    lens : int32 [n]
        Letters per symbol; overwritten (0 marks a symbol merged into its left neighbour).
    word_start : bool [n]
        True where a new word starts (no pair across it).
    rank_new, rank_left, rank_right : int32 [n_merges]
        Each merge's token, and the left and right symbols it joins.
    """
    n = ids.shape[0]
    n_ranks = rank_new.shape[0]
    nxt = np.empty(n, np.int32)
    prv = np.empty(n, np.int32)
    for i in range(n):
        nxt[i] = i + 1 if i + 1 < n and not word_start[i + 1] else -1
        prv[i] = i - 1 if i > 0 and not word_start[i] else -1
    head = np.full(n_ranks, -1, np.int32)
    tail = np.full(n_ranks, -1, np.int32)
    cap = 3 * n + 2
    e_pos = np.empty(cap, np.int32)
    e_next = np.empty(cap, np.int32)
    n_e = 0
    lo = n_ranks
    hi = -1
    for i in range(n):
        j = nxt[i]
        if j >= 0:
            r = _lookup(table, mask, ids[i] * vocab_n + ids[j])
            if r >= 0:
                e_pos[n_e] = i
                e_next[n_e] = -1
                if head[r] < 0:
                    head[r] = n_e
                else:
                    e_next[tail[r]] = n_e
                tail[r] = n_e
                n_e += 1
                lo = min(lo, r)
                hi = max(hi, r)
    todo = np.empty(cap, np.int32)
    rank = lo - 1
    while rank < hi:  # hi grows as merges queue higher ranks
        rank += 1
        e = head[rank]
        if e < 0:
            continue
        k = 0
        ordered = True
        while e >= 0:
            todo[k] = e_pos[e]
            if k > 0 and todo[k] < todo[k - 1]:
                ordered = False
            k += 1
            e = e_next[e]
        if not ordered:
            todo[:k].sort()
        new = rank_new[rank]
        left_id = rank_left[rank]
        right_id = rank_right[rank]
        for t in range(k):
            pos = todo[t]
            if lens[pos] == 0 or ids[pos] != left_id:
                continue  # an expired entry
            right = nxt[pos]
            if right < 0 or ids[right] != right_id:
                continue
            ids[pos] = new
            lens[pos] += lens[right]
            lens[right] = 0
            after = nxt[right]
            nxt[pos] = after
            if after >= 0:
                prv[after] = pos
            for side in range(2):
                if side == 0:
                    a = prv[pos]
                    b = pos
                else:
                    a = pos
                    b = nxt[pos]
                if a < 0 or b < 0:
                    continue
                r = _lookup(table, mask, ids[a] * vocab_n + ids[b])
                if r >= 0:
                    e_pos[n_e] = a
                    e_next[n_e] = -1
                    if head[r] < 0:
                        head[r] = n_e
                    else:
                        e_next[tail[r]] = n_e
                    tail[r] = n_e
                    n_e += 1
                    hi = max(hi, r)
    k = 0
    for i in range(n):
        if lens[i] != 0:
            ids[k] = ids[i]
            lens[k] = lens[i]
            k += 1
    return k
