"""The early-stopping sample of validation users: all of them up to the cap, then a fixed
uniform sample."""

import numpy as np
import scipy.sparse as sp

from kgrec.train.validation import validation_users


class _HeldOut:
    def __init__(self, valid: sp.csr_matrix) -> None:
        self.valid = valid


def test_all_users_with_validation_items_below_the_cap():
    valid = sp.csr_matrix(np.array([[1, 0], [0, 0], [0, 1], [1, 1]]))
    assert validation_users(_HeldOut(valid)).tolist() == [0, 2, 3]
    assert validation_users(_HeldOut(valid), max_users=3).tolist() == [0, 2, 3]


def test_capped_sample_is_fixed_sorted_and_among_eligible_users():
    rows = np.zeros((1000, 3))
    rows[::2, 1] = 1  # only even users have validation items
    held = _HeldOut(sp.csr_matrix(rows))
    a = validation_users(held, max_users=100, seed=7)
    assert len(a) == 100 and (a % 2 == 0).all() and (np.diff(a) > 0).all()
    assert np.array_equal(a, validation_users(held, max_users=100, seed=7))
    assert not np.array_equal(a, validation_users(held, max_users=100, seed=8))
