"""Explanations of single recommendations: Integrated Gradients over edge masks (Captum),
knowledge-graph paths (networkx) and a faithfulness check.

Attribution. For user ``u`` and recommended item ``i`` the model exposes
``f(m) = score(u, i)`` as a function of multipliers ``m ∈ [0, 1]^M`` on every input edge of
that score (:mod:`kgrec.models.masks`): ``u``'s training items, ``u``'s friends, ``i``'s KG
edges per relation path and entity, and the text and attribute channels. Captum's
``IntegratedGradients`` from the baseline ``m = 0`` to ``m = 1`` gives attributions ``a_j``
with (completeness) ``Σ_j a_j = f(1) − f(0)`` up to the integration error ``δ``; the number
of steps doubles (Gauss-Legendre) until ``|δ| ≤ max_delta · |f(1) − f(0)|`` or
``max_steps`` is reached, and ``δ`` is reported either way.

KG paths. Shortest paths of at most ``max_hops`` edges (default 3) from each history item to
``i`` in the undirected item-entity KG (``networkx``), as sentences naming the relations.

Faithfulness. Zeroing the masks of the ``k`` history items with the largest attributions
must lower the score more than zeroing ``k`` random history items (mean over ``draws``);
the audit reports the rate at which it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

KINDS = ("history", "friend", "kg", "item_text", "user_text", "user_attr")


@dataclass
class Attribution:
    kind: str
    label: str
    value: float


@dataclass
class Explanation:
    user: str
    item: str
    item_label: str
    rank: int
    score: float
    baseline_score: float
    delta: float
    relative_delta: float
    n_steps: int
    attributions: list[Attribution]
    by_kind: dict[str, float]
    paths: list[str] = field(default_factory=list)
    top_drop: float | None = None
    random_drop: float | None = None

    @property
    def faithful(self) -> bool | None:
        if self.top_drop is None or self.random_drop is None:
            return None
        return self.top_drop > self.random_drop

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["faithful"] = self.faithful
        return out


@dataclass
class MaskedScore:
    """``forward([N, M]) -> [N]`` scores and one ``(kind, label)`` per mask column."""

    forward: Callable[[Tensor], Tensor]
    labels: list[tuple[str, str]]
    history_columns: np.ndarray


def masked_score(model: Any, user: int, item: int, names: Callable[[str, int], str]) -> MaskedScore:
    """The score of ``(user, item)`` as a function of its edge masks (a kgrec model)."""
    from kgrec.models.masks import EdgeMasks

    labels: list[tuple[str, str]] = []
    slices: dict[str, slice] = {}

    def add(kind: str, entries: list[str]) -> None:
        slices[kind] = slice(len(labels), len(labels) + len(entries))
        labels.extend((kind.split(":")[0], e) for e in entries)

    history = model.history_items(user)
    add("history", [names("item", int(h)) for h in history])
    if model.social is not None:
        add("friend", [names("user", int(v)) for v in model.friend_row(user)[0]])
    for k, path in enumerate(model.paths):
        add(f"kg:{k}", [f"{path.name} → {names(path.target, int(e))}" for e in model.kg_row(k, item)[0]])
    if model.item_proj is not None:
        add("item_text", ["item text"])
    if model.user_proj is not None:
        add("user_text", ["user text"])
    if model.attr_emb is not None:
        add("user_attr", ["user attributes"])

    def build(m: Tensor) -> EdgeMasks:
        get = (lambda key: m[slices[key]] if key in slices else None)
        scalar = (lambda key: m[slices[key]].reshape(()) if key in slices else None)
        return EdgeMasks(user=user, item=item, history=get("history"), friends=get("friend"),
                         kg=[get(f"kg:{k}") for k in range(len(model.paths))], item_text=scalar("item_text"),
                         user_text=scalar("user_text"), user_attr=scalar("user_attr"))

    def forward(batch: Tensor) -> Tensor:
        out = []
        for row in batch:
            users, items = model.embed(build(row))
            out.append((users[user] * items[item]).sum())
        return torch.stack(out)

    return MaskedScore(forward, labels, np.arange(slices["history"].start, slices["history"].stop))


def integrated_gradients(ms: MaskedScore, *, n_steps: int = 64, max_delta: float = 0.01,
                         max_steps: int = 1024) -> tuple[np.ndarray, float, float, float, int]:
    """Captum IG from all-zero to all-one masks, doubling the steps until the completeness
    gap is within ``max_delta`` of ``|f(1) − f(0)|``. Returns (attributions [M], f(1), f(0),
    delta, steps)."""
    from captum.attr import IntegratedGradients

    m = len(ms.labels)
    ones, zeros = torch.ones(1, m), torch.zeros(1, m)
    with torch.no_grad():
        full, base = float(ms.forward(ones)[0]), float(ms.forward(zeros)[0])
    ig = IntegratedGradients(ms.forward)
    steps = n_steps
    while True:
        attr, delta = ig.attribute(ones, baselines=zeros, n_steps=steps, method="gausslegendre",
                                   return_convergence_delta=True)
        delta = float(delta.reshape(-1)[0])
        if abs(delta) <= max_delta * abs(full - base) or steps * 2 > max_steps:
            return attr.detach().numpy().reshape(-1), full, base, delta, steps
        steps *= 2


def faithfulness(ms: MaskedScore, attributions: np.ndarray, *, k: int = 3, draws: int = 5,
                 rng: np.random.Generator) -> tuple[float | None, float | None]:
    """Score drop when the top-``k`` attributed history items are removed, and the mean drop
    over ``draws`` random sets of ``k`` history items (None when the user has ≤ k items)."""
    cols = ms.history_columns
    if len(cols) <= k:
        return None, None
    m = len(ms.labels)
    with torch.no_grad():
        full = float(ms.forward(torch.ones(1, m))[0])

        def drop(chosen: np.ndarray) -> float:
            mask = torch.ones(1, m)
            mask[0, torch.from_numpy(chosen)] = 0.0
            return full - float(ms.forward(mask)[0])

        top = cols[np.argsort(-attributions[cols], kind="stable")[:k]]
        rand = [drop(rng.choice(cols, size=k, replace=False)) for _ in range(draws)]
        return drop(top), float(np.mean(rand))


def kg_graph(dataset: Any) -> Any:
    """Undirected networkx graph of items and KG nodes, edges labelled by relation."""
    import networkx as nx

    g = nx.Graph()
    for et in dataset.edge_types():
        if dataset.origin[et].role not in ("kg", "link"):
            continue
        e = dataset.edges[et]
        rel = et[1].split(".")[-1]
        g.add_edges_from(((et[0], int(s)), (et[2], int(d)), {"relation": rel}) for s, d in zip(e.src, e.dst))
    return g


def path_sentences(graph: Any, history: np.ndarray, item: int, item_type: str, names: Callable[[str, int], str],
                   *, max_hops: int = 3, limit: int = 3) -> list[str]:
    """Readable KG paths from history items to ``item`` (shortest first)."""
    import networkx as nx

    target = (item_type, int(item))
    if target not in graph:
        return []
    reach = nx.single_source_shortest_path(graph, target, cutoff=max_hops)
    found = sorted(((len(reach[(item_type, int(h))]), int(h)) for h in history
                    if (item_type, int(h)) in reach and int(h) != int(item)))
    sentences = []
    for _, h in found[:limit]:
        path = list(reversed(reach[(item_type, h)]))
        steps = [f"{graph.edges[a, b]['relation']} {names(b[0], b[1])}" for a, b in zip(path[1:-2], path[2:-1])]
        first = graph.edges[path[0], path[1]]["relation"]
        middle = f"{first} {names(*path[1])}" + "".join(f", which has {s}" for s in steps)
        last = graph.edges[path[-2], path[-1]]["relation"]
        sentences.append(f"You interacted with {names(*path[0])}, whose {middle} is also the {last} of "
                         f"{names(*path[-1])}." if len(path) == 3 else
                         f"You interacted with {names(*path[0])}: {middle}, linked by {last} to {names(*path[-1])}.")
    return sentences


def summarize(attributions: np.ndarray, labels: list[tuple[str, str]], top: int = 8) -> tuple[list[Attribution],
                                                                                              dict[str, float]]:
    order = np.argsort(-np.abs(attributions), kind="stable")[:top]
    kinds: dict[str, float] = {}
    for (kind, _), a in zip(labels, attributions):
        kinds[kind] = kinds.get(kind, 0.0) + float(a)
    return [Attribution(labels[j][0], labels[j][1], float(attributions[j])) for j in order], kinds
