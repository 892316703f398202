"""The causal DAG of one question: confounders ``W -> T`` and ``W -> Y``, and ``T -> Y``."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from kgrec.errors import SchemaError


def causal_graph(*, treatment: str, outcome: str, confounders: Sequence[str],
                 extra_edges: Sequence[tuple[str, str]] = ()) -> nx.DiGraph:
    """The DAG ``W -> T``, ``W -> Y`` for each confounder ``W``, ``T -> Y``, plus ``extra_edges``.

    Raises ``SchemaError(field="graph")`` naming the cycle if the result is not acyclic.
    """
    g = nx.DiGraph()
    g.add_nodes_from([treatment, outcome, *confounders])
    g.add_edge(treatment, outcome)
    for w in confounders:
        if w in (treatment, outcome):
            raise SchemaError(f"confounder '{w}' is the treatment or the outcome",
                              field="confounders")
        g.add_edge(w, treatment)
        g.add_edge(w, outcome)
    g.add_edges_from(extra_edges)
    check_acyclic(g)
    return g


def check_acyclic(g: nx.DiGraph) -> None:
    """Raise ``SchemaError(field="graph")`` naming a cycle of ``g``, if it has one."""
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([str(u) for u, _ in cycle] + [str(cycle[0][0])])
    raise SchemaError(f"causal graph has a cycle: {path}", field="graph")
