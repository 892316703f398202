"""AuditContext.name: items are named by their schema label, whole (no cut at ". "), and
node types without a label by raw id, listed by ``unlabelled``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from kgrec.audit.context import AuditContext


def _ctx(dataset) -> AuditContext:
    empty = np.zeros(0, dtype=np.int64)
    return AuditContext(run=SimpleNamespace(dataset=dataset), plan=None, users=empty, topk=empty.reshape(0, 1),
                        relevant=sp.csr_matrix((0, 1)), per_user={}, metrics={})


def test_items_are_named_by_their_whole_label(movielens):
    ctx = _ctx(movielens)
    titles = list(movielens.nodes["item"].features["movie_title"])
    for title in ("E.T. the Extra-Terrestrial", "Island of Dr. Moreau, The"):
        assert ctx.name("item", titles.index(title)) == title  # the old name() cut these at the first ". "
    long = next(i for i, t in enumerate(titles) if t.startswith("Dr. Strangelove"))
    assert ctx.name("item", long) == titles[long][:57] + "..." and len(ctx.name("item", long)) == 60


def test_unlabelled_types_are_named_by_raw_id(movielens):
    ctx = _ctx(movielens)
    assert set(ctx.unlabelled()) == {"user", "entity"}  # MovieLens' KG entities are Freebase ids only
    assert ctx.name("entity", 0) == f"entity {movielens.nodes['entity'].ids[0]}"
