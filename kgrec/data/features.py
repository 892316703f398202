"""Schema-driven node feature matrices shared by the models, evaluation and the audit.

Nothing here knows a data set's name: the blocks come from the schema's feature types and
edge roles.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kgrec.graphs.dataset import GraphDataset


def attribute_matrix(ds: GraphDataset, node_type: str, include_sensitive: bool = False) -> sp.csr_matrix | None:
    """Binary [N, F] one-hot of a node type's categorical/multicategorical features and binned
    numeric features with bins; sensitive attributes only if ``include_sensitive``."""
    spec = ds.schema.nodes[node_type]
    node = ds.nodes[node_type]
    blocks = []
    for name, f in spec.features.items():
        if name in spec.sensitive and not include_sensitive:
            continue
        values = node.features[name]
        if f.type == "multicategorical":
            blocks.append(sp.csr_matrix(values))
        elif f.type == "categorical":
            ok = values >= 0
            blocks.append(sp.csr_matrix((np.ones(int(ok.sum())), (np.flatnonzero(ok), values[ok])),
                                        shape=(node.num, len(node.vocab[name]))))
        elif f.type == "numeric" and f.bins:
            idx = np.digitize(values, f.bins)
            ok = ~np.isnan(values)
            blocks.append(sp.csr_matrix((np.ones(int(ok.sum())), (np.flatnonzero(ok), idx[ok])),
                                        shape=(node.num, len(f.bins) + 1)))
    return sp.hstack(blocks, format="csr") if blocks else None


def item_feature_matrix(ds: GraphDataset) -> sp.csr_matrix | None:
    """Binary [I, F] item features for intra-list diversity: every KG/link neighbour of an
    item plus its categorical, multicategorical and binned features (schema-driven)."""
    item_type = ds.schema.item_type
    n_items = ds.num_items
    blocks: list[sp.spmatrix] = []
    for et in ds.edge_types():
        if ds.origin[et].role in ("kg", "link") and et[0] == item_type:
            e = ds.edges[et]
            blocks.append(sp.csr_matrix((np.ones(len(e)), (e.src, e.dst)), shape=(n_items, ds.nodes[et[2]].num)))
    attrs = attribute_matrix(ds, item_type, include_sensitive=True)
    if attrs is not None:
        blocks.append(attrs)
    if not blocks:
        return None
    m = sp.hstack(blocks, format="csr")
    m.data[:] = 1.0
    return m
