"""genaannot.models.base: the shared [CLS]/[SEP] batch layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genaannot.models.base import ModelError, collate_cls_sep, split_cls_sep


def _reference(content, *, cls_id, sep_id, pad_id, width):
    """Row by row, as the layout is defined."""
    ids = torch.full((len(content), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(content), width), dtype=torch.long)
    for i, c in enumerate(content):
        n = len(c)
        ids[i, 0], ids[i, 1 : n + 1], ids[i, n + 1] = cls_id, torch.as_tensor(np.asarray(c, dtype=np.int64)), sep_id
        mask[i, : n + 2] = 1
    return ids, mask


@pytest.mark.parametrize("seed", range(6))
def test_collate_cls_sep_lays_out_rows_as_defined(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 40, size=int(rng.integers(1, 9)))
    content = [rng.integers(5, 1000, size=n) for n in lengths]
    if seed % 2:  # lists and int32 arrays are accepted too
        content = [c.tolist() if i % 2 else c.astype(np.int32) for i, c in enumerate(content)]
    tile = None if seed < 3 else int(lengths.max()) + 2 + seed
    got = collate_cls_sep(content, cls_id=1, sep_id=2, pad_id=3, tile=tile)
    ids, mask = _reference(content, cls_id=1, sep_id=2, pad_id=3, width=tile or int(lengths.max()) + 2)
    assert got["input_ids"].dtype == torch.long and got["attention_mask"].dtype == torch.long
    assert torch.equal(got["input_ids"], ids) and torch.equal(got["attention_mask"], mask)
    # split_cls_sep is its inverse on a token head's output
    back = split_cls_sep(got["input_ids"][..., None], [len(c) for c in content], head="token")
    assert [b[:, 0].tolist() for b in back] == [list(map(int, c)) for c in content]


def test_collate_cls_sep_refuses_an_input_longer_than_the_tile():
    with pytest.raises(ModelError, match="exceeds the fixed tile of 6"):
        collate_cls_sep([np.arange(5)], cls_id=1, sep_id=2, pad_id=3, tile=6)
