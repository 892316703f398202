"""Explanations of single recommendations: Integrated Gradients over edge masks (Captum),
knowledge-graph paths (networkx) and a faithfulness check.

Attribution. For user ``u`` and recommended item ``i`` an explainable model
(:class:`kgrec.models.base.Explainable`) exposes ``f(m) = score(u, i)`` as a function of
multipliers ``m ∈ [0, 1]^M`` on every input edge of that score (:mod:`kgrec.models.masks`):
``u``'s training items, ``u``'s friends, ``i``'s KG edges per relation path and entity, and
the scalar channels (text, attributes, time), as far as the model declares them (``mask_channels``). Captum's
``IntegratedGradients`` from the baseline ``m = 0`` to ``m = 1`` gives attributions ``a_j``
with (completeness) ``Σ_j a_j = f(1) − f(0)`` up to the integration error ``δ``; the number
of steps doubles (Gauss-Legendre) until ``|δ| ≤ max_delta · |f(1) − f(0)|`` or
``max_steps`` is reached, and ``δ`` is reported either way.

KG paths. KG nodes that a history item and ``i`` share in the undirected item-entity KG
(``networkx``, item ↔ own-entity links contracted), the most specific first, as sentences
naming the relations.

Faithfulness. Zeroing the masks of the ``k`` history items with the largest attributions
must lower the score more than zeroing ``k`` random history items (mean over ``draws``);
the audit reports the rate at which it does.

Robustness. Captum's infidelity (subset removal) and max-sensitivity of the same
attributions, beside faithfulness: :mod:`kgrec.audit.explain_robustness`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from kgrec.models.base import Explainable

#: the attribution kind of each edge channel (the report's labels); a scalar channel's kind is its name
KINDS = {"history": "history", "friends": "friend", "kg": "kg"}


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
    infidelity: float | None = None  # Captum, in units of (score − baseline)² (kgrec.audit.explain_robustness)
    max_sensitivity: float | None = None  # Captum, relative change of the attributions

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


def masked_score(model: Explainable, user: int, item: int, names: Callable[[str, int], str]) -> MaskedScore:
    """The score of ``(user, item)`` as a function of its edge masks: one column per
    history item, friend and KG edge, and one per text or attribute channel, for the
    channels the model declares (``model.mask_channels``)."""
    from kgrec.models.masks import EdgeMasks

    labels: list[tuple[str, str]] = []
    slices: dict[str, slice] = {}
    channels = model.mask_channels
    relations = model.kg_relations() if "kg" in channels else []

    def add(key: str, kind: str, entries: list[str]) -> None:
        slices[key] = slice(len(labels), len(labels) + len(entries))
        labels.extend((kind, e) for e in entries)

    add("history", KINDS["history"], [names("item", int(h)) for h in model.history_items(user)])
    if "friends" in channels:
        add("friends", KINDS["friends"], [names("user", int(v)) for v in model.friend_row(user)[0]])
    for k, rel in enumerate(relations):
        add(f"kg:{k}", KINDS["kg"], [f"{rel.name} → {names(rel.target, int(e))}" for e in model.kg_row(k, item)[0]])
    scalars = [c for c in model.scalar_channels() if c.name in channels]
    for channel in scalars:
        add(channel.name, channel.name, [channel.label])

    def build(m: Tensor) -> EdgeMasks:
        get = (lambda key: m[slices[key]] if key in slices else None)
        scalar = (lambda key: m[slices[key]].reshape(()) if key in slices else None)
        return EdgeMasks(user=user, item=item, history=get("history"), friends=get("friends"),
                         kg=[get(f"kg:{k}") for k in range(len(relations))],
                         scalars={c.name: scalar(c.name) for c in scalars})

    def forward(batch: Tensor) -> Tensor:
        out = []
        for row in batch:
            out.append(model.pair_score(user, item, build(row)))
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


def relation_label(name: str) -> str:
    """A short relation name: ``film.film.director`` and ``film.director.film`` → ``director``."""
    parts = name.split(".")
    if len(parts) == 3:
        return parts[2] if parts[1] == parts[0] else parts[1]
    return parts[-1]


def kg_graph(dataset: Any) -> Any:
    """Undirected networkx graph of items and KG nodes, edges labelled by relation. Link
    edges (an item and the KG entity that stands for it) are contracted, so the entity is
    the item node itself."""
    import networkx as nx

    item = dataset.schema.item_type
    alias: dict[tuple[str, int], tuple[str, int]] = {}
    kg = []
    for et in dataset.edge_types():
        role = dataset.origin[et].role
        e = dataset.edges[et]
        if role == "link" and et[0] == item:
            alias.update(((et[2], int(d)), (item, int(s))) for s, d in zip(e.src, e.dst))
        elif role == "kg":
            kg.append(et)
    g = nx.Graph()
    for et in kg:
        e = dataset.edges[et]
        rel = relation_label(et[1])
        g.add_edges_from((alias.get((et[0], int(s)), (et[0], int(s))), alias.get((et[2], int(d)), (et[2], int(d))),
                          {"relation": rel}) for s, d in zip(e.src, e.dst))
    return g


def path_sentences(graph: Any, history: np.ndarray, item: int, item_type: str, names: Callable[[str, int], str],
                   *, limit: int = 3) -> list[str]:
    """Readable KG paths from history items to ``item``: a KG node both share (an actor,
    a director, a tag), the most specific ones (lowest degree) first; one sentence per
    history item, at most ``limit``."""
    import networkx as nx

    target = (item_type, int(item))
    if target not in graph:
        return []
    found = []
    for h in history:
        src = (item_type, int(h))
        if int(h) == int(item) or src not in graph:
            continue
        for c in nx.common_neighbors(graph, src, target):
            found.append((graph.degree[c], int(h), c))
    sentences, used = [], set()
    for _, h, c in sorted(found, key=lambda x: (x[0], x[1])):
        if h in used:
            continue
        used.add(h)
        src = (item_type, h)
        r1, r2 = graph.edges[src, c]["relation"], graph.edges[c, target]["relation"]
        sentences.append(f"You interacted with {names(*src)}, whose {r1} {names(*c)} is also the {r2} of "
                         f"{names(*target)}.")
        if len(sentences) == limit:
            break
    return sentences


def summarize(attributions: np.ndarray, labels: list[tuple[str, str]], top: int = 8) -> tuple[list[Attribution],
                                                                                              dict[str, float]]:
    order = np.argsort(-np.abs(attributions), kind="stable")[:top]
    kinds: dict[str, float] = {}
    for (kind, _), a in zip(labels, attributions):
        kinds[kind] = kinds.get(kind, 0.0) + float(a)
    return [Attribution(labels[j][0], labels[j][1], float(attributions[j])) for j in order], kinds
