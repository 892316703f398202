"""The baseline comparison's flags and its pairing rule."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from kgrec.audit.compare import Row, paired


def row(diff, lo, hi, better="higher", cand=None, base=None):
    return Row("q", "gate", 0.5 + diff, 0.5, diff, lo, hi, better, cand, base)


@pytest.mark.parametrize("r, regression, improved", [
    (row(-0.02, -0.03, -0.01), True, False),                 # higher is better, CI below 0
    (row(+0.02, +0.01, +0.03), False, True),
    (row(-0.02, -0.04, +0.01), False, False),                # CI straddles 0
    (row(+0.02, +0.01, +0.03, better="lower"), True, False),  # lower is better, CI above 0
    (row(-0.02, -0.03, -0.01, better="lower"), False, True),
    (row(0.0, math.nan, math.nan, cand=False, base=True), True, False),   # newly failing gate
    (row(0.0, math.nan, math.nan, cand=True, base=False), False, True),   # newly passing gate
    (row(0.0, math.nan, math.nan, cand=True, base=None), False, False),   # baseline could not evaluate it
])
def test_regression_and_improvement_flags(r, regression, improved):
    assert (r.regression, r.improved) == (regression, improved)


def _ctx(users, items, relevant):
    nodes = {"user": SimpleNamespace(ids=np.array(users)), "item": SimpleNamespace(ids=np.array(items))}
    ds = SimpleNamespace(nodes=nodes, schema=SimpleNamespace(user_type="user", item_type="item"))
    return SimpleNamespace(run=SimpleNamespace(dataset=ds), users=np.arange(len(users)),
                           relevant=sp.csr_matrix(np.array(relevant)))


def test_pairing_needs_the_same_users_items_and_held_out_items():
    a = _ctx(["u1", "u2"], ["i1", "i2"], [[1, 0], [0, 1]])
    assert paired(a, _ctx(["u1", "u2"], ["i1", "i2"], [[1, 0], [0, 1]]))
    assert not paired(a, _ctx(["u1", "u3"], ["i1", "i2"], [[1, 0], [0, 1]]))  # another user
    assert not paired(a, _ctx(["u1", "u2"], ["i1", "i2"], [[1, 0], [1, 1]]))  # another held-out item
    assert not paired(a, _ctx(["u1", "u2"], ["i1", "i2", "i3"], [[1, 0, 0], [0, 1, 0]]))  # another catalogue
