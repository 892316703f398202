"""Group labels of the fairness checks: values in a sortable dtype, and the reading order in
which reports list groups (bins by their value, not as text)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd


def labels_of(codes: np.ndarray) -> np.ndarray:
    """Known values in a sortable dtype: integer-valued floats → int64, objects → str."""
    if codes.dtype.kind == "f" and codes.size and np.all(codes == np.round(codes)):
        return codes.astype(np.int64)
    if codes.dtype.kind == "O":
        return codes.astype(str)
    return codes


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def group_order(label: Any) -> tuple[int, float, str]:
    """Sort key that puts group labels in reading order: numbers and bin labels by their value
    ("<18" before "18-25" before ">=56", not as text), other labels alphabetically after them."""
    text = str(label)
    found = _NUMBER.search(text)
    if found is None:
        return (1, 0.0, text)
    value = float(found.group())
    return (0, value - 1e-9 if text.lstrip().startswith("<") else value, text)


def ordered(labels: np.ndarray) -> pd.Categorical:
    """Labels as a pandas Categorical whose category order is :func:`group_order`'s."""
    return pd.Categorical(labels, categories=sorted(set(labels.tolist()), key=group_order))
