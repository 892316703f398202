"""Tables the causal questions are asked of: one row per item or per user, built from a
run's data, its training split and its top-K lists.

- :func:`item_frame`: ``log_popularity`` (log 1 + training interactions, the treatment),
  ``log_exposure`` (log 1 + the number of users whose top-K holds the item, the outcome),
  and content confounders: the item's numeric features, one column per categorical value
  (most frequent ones), KG degree, and the first principal components of its text vector.
- :func:`user_frame`: a binary treatment from a user attribute, an outcome of the user's
  top-K (the share of a genre, or the mean log popularity) and confounders: activity
  (log 1 + training interactions), the same quantity over the user's training history, and
  the other user attributes.
- :func:`history_frame`: the same user table with the outcome taken from the observed
  interactions instead of a model's lists (what a data set's planted effects are about).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.errors import SchemaError

MAX_DUMMIES = 8
TEXT_COMPONENTS = 3


def slug(text: str) -> str:
    """A column name safe for DoWhy's formulas: ``age_>=45`` → ``age_ge45``, ``Drama`` → ``drama``."""
    text = str(text).replace(">=", "ge").replace("<=", "le").replace("<", "lt").replace(">", "gt")
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower() or "x"


def node_covariates(dataset: Any, node_type: str, *, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """Numeric columns from a node type's features: numeric as is (NaN → column mean, plus a
    missing indicator when any is missing), categorical and multicategorical as 0/1 columns
    for the ``MAX_DUMMIES`` most frequent values (the rest is the reference level)."""
    node = dataset.nodes[node_type]
    spec = dataset.schema.nodes[node_type].features
    cols: dict[str, np.ndarray] = {}
    for name, f in spec.items():
        if name in skip or f.type == "text":
            continue
        values = node.features[name]
        if f.type == "numeric":
            v = values.astype(np.float64)
            miss = np.isnan(v)
            cols[name] = np.where(miss, np.nanmean(v) if (~miss).any() else 0.0, v)
            if miss.any():
                cols[f"{name}_missing"] = miss.astype(np.float64)
        else:
            hot = values if f.type == "multicategorical" else _one_hot(values, len(node.vocab[name]))
            freq = np.asarray(hot.sum(0)).ravel()
            for j in np.argsort(-freq, kind="stable")[1: MAX_DUMMIES + 1]:  # drop the most frequent level
                if freq[j] > 0:
                    cols[f"{name}_{slug(node.vocab[name][j])}"] = np.asarray(hot[:, j]).ravel().astype(np.float64)
    return pd.DataFrame(cols)


def _one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(codes), max(n, 1)))
    ok = codes >= 0
    out[np.flatnonzero(ok), codes[ok]] = 1.0
    return out


def topk_counts(topk: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(topk.ravel(), minlength=n_items).astype(np.float64)


def item_frame(dataset: Any, train: sp.csr_matrix, topk: np.ndarray, item_text: np.ndarray | None) -> pd.DataFrame:
    item = dataset.schema.item_type
    counts = np.asarray(train.sum(0)).ravel()
    df = pd.DataFrame({"log_popularity": np.log1p(counts), "log_exposure": np.log1p(topk_counts(topk, train.shape[1]))})
    degree = np.zeros(train.shape[1])
    for et in dataset.edge_types():
        if dataset.origin[et].role in ("kg", "link") and et[0] == item:
            degree += np.bincount(dataset.edges[et].src, minlength=train.shape[1])
    df["kg_degree"] = np.log1p(degree)
    df = pd.concat([df, node_covariates(dataset, item)], axis=1)
    if item_text is not None and len(item_text):
        x = item_text - item_text.mean(0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        for c in range(min(TEXT_COMPONENTS, vt.shape[0])):
            df[f"text_pc{c + 1}"] = x @ vt[c]
    return df


def genre_matrix(dataset: Any, genre: str) -> np.ndarray:
    """0/1 per item: the item has ``genre`` in some categorical or multicategorical feature."""
    item = dataset.schema.item_type
    node = dataset.nodes[item]
    for name, f in dataset.schema.nodes[item].features.items():
        vocab = node.vocab.get(name, [])
        if f.type in ("categorical", "multicategorical") and genre in vocab:
            j = vocab.index(genre)
            values = node.features[name]
            return (values[:, j] > 0 if f.type == "multicategorical" else values == j).astype(np.float64)
    raise SchemaError(f"no item feature has the value '{genre}'", field="causal.genre")


def treatment_vector(dataset: Any, attribute: str, treated: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(treated 0/1, known mask, treated label) for a categorical user attribute; for a
    numeric one with bins, ``treated`` is a bin label such as ``>=45`` or ``<18``."""
    user = dataset.schema.user_type
    node = dataset.nodes[user]
    spec = dataset.schema.nodes[user].features[attribute]
    values = node.features[attribute]
    if spec.type == "categorical":
        vocab = node.vocab[attribute]
        label = treated if treated is not None else vocab[-1]
        if label not in vocab:
            raise SchemaError(f"'{label}' is not a value of '{attribute}' (values: {', '.join(vocab)})",
                              field="causal.treated")
        return (values == vocab.index(label)).astype(np.float64), values >= 0, label
    if spec.type == "numeric":
        known = ~np.isnan(values)
        if treated is None or not treated.startswith((">=", "<")):
            raise SchemaError(f"numeric attribute '{attribute}' needs treated: '>=X' or '<X'", field="causal.treated")
        cut = float(treated.lstrip(">=<"))
        t = values >= cut if treated.startswith(">=") else values < cut
        return np.where(known, t, False).astype(np.float64), known, treated
    raise SchemaError(f"attribute '{attribute}' must be categorical or numeric", field="causal.attribute")


def _row_mean(m: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    n = np.diff(m.indptr)
    s = np.asarray(m @ values).ravel()
    return np.where(n > 0, s / np.maximum(n, 1), 0.0)


def user_frame(dataset: Any, train: sp.csr_matrix, topk: np.ndarray, users: np.ndarray, *, attribute: str,
               treated: str | None, outcome: str, genre: str | None) -> tuple[pd.DataFrame, str]:
    """Rows for ``users`` (those with known ``attribute``): treatment ``t``, ``outcome`` of
    their top-K, ``activity``, ``history`` (the same quantity over training items) and the
    other user attributes. Returns the frame and the treated label."""
    t, known, label = treatment_vector(dataset, attribute, treated)
    counts = np.asarray(train.sum(0)).ravel()
    if outcome == "genre_share":
        if genre is None:
            raise SchemaError("a genre_share question needs 'genre'", field="causal.genre")
        per_item = genre_matrix(dataset, genre)
    else:
        per_item = np.log1p(counts)
    rec = per_item[topk].mean(1)
    hist = _row_mean(sp.csr_matrix(train[users], dtype=np.float64), per_item)
    keep = known[users]
    df = pd.DataFrame({"t": t[users], "outcome": rec, "activity": np.log1p(np.diff(sp.csr_matrix(train).indptr)[users]),
                       "history": hist})
    others = node_covariates(dataset, dataset.schema.user_type, skip=(attribute,)).iloc[users].reset_index(drop=True)
    return pd.concat([df, others], axis=1)[keep].reset_index(drop=True), label


def history_frame(dataset: Any, *, attribute: str, treated: str | None, genre: str) -> tuple[pd.DataFrame, str]:
    """Per user: treatment, the share of ``genre`` in all their interactions, activity and
    the other attributes (users without interactions are left out)."""
    inter = dataset.interactions
    n_u, n_i = dataset.num_users, dataset.num_items
    m = sp.csr_matrix((np.ones(len(inter.src)), (inter.src, inter.dst)), shape=(n_u, n_i))
    m.data[:] = 1.0
    t, known, label = treatment_vector(dataset, attribute, treated)
    share = _row_mean(m, genre_matrix(dataset, genre))
    n = np.diff(m.indptr)
    df = pd.DataFrame({"t": t, "outcome": share, "activity": np.log1p(n)})
    others = node_covariates(dataset, dataset.schema.user_type, skip=(attribute,))
    keep = known & (n > 0)
    return pd.concat([df, others], axis=1)[keep].reset_index(drop=True), label
