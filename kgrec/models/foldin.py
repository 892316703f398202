r"""Fold-in: the final vector of a user or an item that training never saw, through the
trained model's own path and without retraining (``kgrec serve``): :meth:`FoldIn.for_model`
precomputes once what every request shares; :meth:`FoldIn.user_vector` takes a history of
item indices (oldest first, repeats allowed, optionally one multiplier per entry) and
:meth:`FoldIn.item_vector` a new item's content. Both return float32 vectors scored against
``model.embed()`` by the same inner product. Items are the model's internal indices.

kgrec (:mod:`kgrec.models.kgrec`). A history ``H`` (entries ``e``, items ``i_e``, weights
``w_e``, 1 by default) gives the row ``x_i = max_{e: i_e = i} w_e`` (the binary training row
with unit weights) and the channels' history weights (the time channel's
``r_i = Σ_{e: i_e = i} w_e δ^{pos_e}``, ``pos`` 0 the last entry, as
:func:`kgrec.models.channels.time.recency_weights`).

* GNN part: the user is a new graph node joined to the ``n`` distinct items of ``H`` (the
  user's degree in ``Â``, which has no self loops; zero-weight entries count, as the
  explanation masks keep the trained normalisation), with the training degrees ``d_i``
  kept and the items not hearing back from it (one-way: the catalogue's vectors do not
  move; a symmetric append would add the echo ``(Σ_i c_i²) e_u⁰`` at layer 2, and more
  beyond, O(1/d_i)):

  .. math::
      e_u^0 = h_u, \quad e_u^{k+1} = \sum_{i ∈ H} c_i e_i^k, \quad c_i = \frac{x_i}{\sqrt{n\,\max(d_i, 1)}},
      \quad z_u = \frac{1}{L+1} \sum_{k=0}^{L} e_u^k
              = \frac{1}{L+1}\Big(h_u + \sum_{i ∈ H} c_i S_i\Big),\quad S = \sum_{k=0}^{L-1} [Â^k X]_{items}

  with ``X`` the model's eval-mode egos (``egos()``), so a request costs O(|H|·d).
  ``h_u`` is the sum of the channels' fold-in user terms: the time channel's
  ``(r / Σ r) E``; no ID (zero, as a cold user), attributes, text or friends for an
  anonymous user. An item without training edges (``d_i = 0``) has ``S_i = e_i⁰`` and
  counts as degree 1. Given a warm user's own training history and trained ego ``h_u``
  (``ego=``), ``z_u`` is that user's trained ``z_u`` exactly, whatever ``L``.
* item-item part: ``((x + κ r) ⊙ w_in) A`` (low rank, ``A = ii_proj``) or
  ``(x + κ r) ⊙ w_in`` (EASE), ``w_in = ii_in``.
* user vector ``[α z_u ; item-item ; β]`` (``[z_u ; β]`` without the item-item term), as
  :meth:`KGRec.embed`; for a warm user's training history everything but the ego is exact.
* new item: with the content regression on (``cold_reg > 0``), exactly a training-time
  cold item's path: its content rows → its ``k`` nearest warm items
  (:class:`~kgrec.models.cold_start.WarmContent`) → local ridge weights ``w`` →
  ``c · Σ_j w_j Y_j`` with ``Y`` the warm items' ``[z_i ; A_i]`` and ``c`` the model's
  ``cold_scale`` (calibrated here as ``after_fit`` would, if the model had no cold item).
  Without it, the GNN vector of an item without edges, ``z = h_i / (L+1)`` (``h_i`` the
  channels' fold-in item terms: gated text, KG paths, time bucket 12), with a zero
  item-item part (its ``A_i`` or ``B_{:,i}`` was never fitted). Then the priors of an item
  without interactions (0) and its ``item_scale`` (1, or the PDA target ``m^γ̃`` of the
  smallest share).
* a new item's content rows: its text vector; per KG path ``r`` the row ``1/n`` over the
  ``n`` distinct targets given for ``r``, or for a two-hop path given none, its first hop's
  links through the data set's second-hop edges, weighted as in training, when
  ``for_model`` has the data set (else empty). On MovieLens-100k every kept path is
  two-hop: pass the data set and the ``linked_to`` links, which reproduce a catalogue
  item's rows exactly (two-hop targets given directly weigh ``1/n`` each, as training
  does only when each is reached once).

LightGCN: the GNN part with a zero ego. ELSA: ``x A``. EASE, ItemKNN: ``x``. Text:
``normalise(x T)``; a new item's vector is its text vector. MostPop: ``[1]``; a new item
``[0]``. BPR-MF and unknown models raise :class:`NotSupported`.
"""

from __future__ import annotations

import abc

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kgrec.models.base import Recommender
from kgrec.models.channels.base import NewItem
from kgrec.models.cold_start import WarmContent
from kgrec.models.debias import popularity_share


class NotSupported(ValueError):
    """The model cannot fold in a user (or place a new item) without retraining."""


@dataclass(frozen=True)
class History:
    """A validated history: ``items`` int64 [H] and ``weights`` float64 [H] per entry, its
    ``distinct`` items (ascending) and their row values ``x`` (the largest entry weight)."""

    items: np.ndarray
    weights: np.ndarray
    distinct: np.ndarray
    x: np.ndarray

    @classmethod
    def of(cls, items: np.ndarray, weights: np.ndarray | None, num_items: int) -> History:
        items = np.asarray(items)
        if items.ndim != 1 or (items.size and not np.issubdtype(items.dtype, np.integer)):
            raise ValueError(f"items must be a 1-d array of item indices, got shape {items.shape} ({items.dtype})")
        items = items.astype(np.int64)
        if items.size and (items.min() < 0 or items.max() >= num_items):
            bad = int(items[(items < 0) | (items >= num_items)][0])
            raise ValueError(f"item index out of range [0, {num_items}): {bad}")
        w = np.ones(len(items)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != items.shape or not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"weights must be {len(items)} finite non-negative numbers, one per history entry")
        distinct, inverse = np.unique(items, return_inverse=True)
        x = np.zeros(len(distinct))
        np.maximum.at(x, inverse, w)
        return cls(items, w, distinct, x)


class Propagation:
    """The GNN fold-in of a new user node (module docstring): ``S`` [I, d] and ``max(d_i,1)^{-1/2}``."""

    def __init__(self, adj: Tensor, x: Tensor, num_users: int, layers: int) -> None:
        deg = np.diff(adj.crow_indices().numpy())[num_users:]
        self.inv_sqrt_deg = 1.0 / np.sqrt(np.maximum(deg, 1).astype(np.float64))
        self.layers = layers
        with torch.no_grad():
            cur, acc = x, torch.zeros(x.shape[0] - num_users, x.shape[1])
            for _ in range(layers):
                acc = acc + cur[num_users:]
                cur = adj @ cur
        self.layer_sum = acc.numpy().astype(np.float32)

    def user(self, ego: np.ndarray, h: History) -> np.ndarray:
        out = np.array(ego, np.float32)
        if out.shape != self.layer_sum.shape[1:]:
            raise ValueError(f"ego must have shape {self.layer_sum.shape[1:]}, got {out.shape}")
        if len(h.distinct):
            c = h.x * self.inv_sqrt_deg[h.distinct] / np.sqrt(len(h.distinct))
            out += c.astype(np.float32) @ self.layer_sum[h.distinct]
        return out / (self.layers + 1)


class FoldIn(abc.ABC):
    """Precomputed state for one trained model (built once at serve start); see the module
    docstring for the math per model."""

    model_name: str = ""
    dim: int = 0  #: D, the width of the vectors (``model.embed()``'s)

    def __init__(self, model: Recommender) -> None:
        self.model_name, self.num_items = type(model).name, model.num_items

    @classmethod
    def for_model(cls, model: Recommender, dataset=None) -> FoldIn:
        """The fold-in of ``model`` (fitted; put in eval mode while this runs). ``dataset``
        (kgrec only; the run's training-view data set, ``run.view.dataset``): lets a new
        item's two-hop KG rows follow from its first hop's links. Raises :class:`NotSupported` for models that cannot
        fold in (BPR-MF: free per-user vectors; unknown models)."""
        from kgrec.models import baselines as b
        from kgrec.models.kgrec import KGRec
        from kgrec.models.lightgcn import LightGCN

        kinds = {KGRec: KGRecFoldIn, LightGCN: LightGCNFoldIn, b.ELSA: RowFoldIn, b.EASE: RowFoldIn,
                 b.ItemKNN: RowFoldIn, b.MostPop: MostPopFoldIn, b.TextOnly: TextFoldIn}
        kind = next((k for c, k in kinds.items() if type(model) is c), None)
        if kind is None:
            why = "its user vectors are free parameters learned per user" if type(model).name == "bprmf" else \
                "it has no fold-in path"
            raise NotSupported(f"model '{type(model).name or type(model).__name__}' cannot fold in a new user: "
                               f"{why}; fold-in supports kgrec, lightgcn, elsa, ease, itemknn, text and mostpop")
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                return kind(model, dataset) if kind is KGRecFoldIn else kind(model)
        finally:
            model.train(was)

    @abc.abstractmethod
    def user_vector(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """[D] float32 vector of a user with history ``items`` (int64 item indices, oldest
        first, may repeat; empty: a user with no interactions) and optional per-entry
        multipliers ``weights`` [H] (≥ 0; 1 = as in training)."""

    def item_vector(self, text: np.ndarray | None = None, links: dict[str, list[int]] | None = None) -> np.ndarray:
        """[D] float32 vector of a new item (like ``model.embed()[1]`` rows) from ``text`` (a
        vector in the model's text space) and ``links`` (a name of :meth:`link_relations` →
        target node indices; see the module docstring for two-hop paths)."""
        raise NotSupported(f"model '{self.model_name}' has no content path to place a new item")

    def link_relations(self) -> dict[str, tuple[str, int]]:
        """The names ``item_vector``'s links may use → (target node type, node count)."""
        return {}


class KGRecFoldIn(FoldIn):
    """kgrec: the GNN, item-item and prior parts of a user; a new item by the content regression."""

    def __init__(self, model, dataset=None) -> None:
        super().__init__(model)
        self.channels = list(model.channels.values())
        self.ego_dim = model.ids.user_emb.embedding_dim
        self.graph = Propagation(model.adj, torch.cat(model.egos()), model.num_users, model.layers)
        self.item_item, self.blend = model.item_item, float(model.blend)
        self.kappa = float(model.ii_recency) if model.item_item and model.ii_recency_sp is not None else 0.0
        self.low_rank = model.item_item and model.item_item_dim is not None
        if model.item_item:
            self.ii_in = model.ii_in.numpy().astype(np.float32)
            self.ii_proj = (self.ii_in[:, None] * model.ii_proj.numpy()) if self.low_rank else None
        self.recency = [ch for ch in self.channels if ch.history_weights() is not None]
        self.prior_weight = model.prior_weight.numpy().astype(np.float32)
        self.dim = self.ego_dim + (model.ii_item.shape[1] if model.item_item else 0) + len(self.prior_weight)
        self._setup_items(model, dataset)

    def user_vector(self, items: np.ndarray, weights: np.ndarray | None = None, *,
                    ego: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`FoldIn.user_vector`; ``ego`` [d] replaces the channels' fold-in ego
        (a warm user's trained ego and history give its ``embed()`` row)."""
        h = History.of(items, weights, self.num_items)
        z = self.graph.user(self._ego(h) if ego is None else ego, h)  # Propagation.user checks ego
        parts = [self.blend * z, self._item_item_user(h)] if self.item_item else [z]
        return np.concatenate([*parts, self.prior_weight]).astype(np.float32)

    def ego(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The fold-in ego ``h_u`` [d]: the channels' fold-in user terms of that history."""
        return self._ego(History.of(items, weights, self.num_items))

    def _ego(self, h: History) -> np.ndarray:
        with torch.no_grad():
            e = torch.zeros(self.ego_dim)
            for channel in self.channels:
                e = channel.fold_in_user(e, h.items, h.weights)
        return e.numpy()

    def _item_item_user(self, h: History) -> np.ndarray:
        rows = [(h.distinct, h.x)]
        if self.kappa:
            for channel in self.recency:
                idx, r = channel.fold_in_history_weights(h.items, h.weights)
                rows.append((idx, self.kappa * r))
        if self.low_rank:
            return sum(v.astype(np.float32) @ self.ii_proj[idx] for idx, v in rows)
        out = np.zeros(self.num_items)
        for idx, v in rows:
            np.add.at(out, idx, v)
        return out.astype(np.float32) * self.ii_in

    def _setup_items(self, model, dataset) -> None:
        content = [block for ch in self.channels for block in ch.item_content()]
        blank = [block for ch in self.channels for block in ch.new_item_content(NewItem())]
        if len(blank) != len(content):
            raise NotSupported(f"model '{self.model_name}': a channel gives cold items content but no fold-in rows")
        self.has_content, self.layers = bool(content), model.layers
        self.kg, self.text = model.kg, model.channels["text"] if "text" in model.channels else None
        self.second_hops = self.kg.second_hops(dataset) if self.kg is not None and dataset is not None else {}
        zu, zi = model.gnn()
        y = torch.cat([zi, model.ii_item], 1) if model.item_item else zi
        self.width = y.shape[1]
        warm = model.warm_items.numpy()
        regression = model.content_regression
        self.reg, self.k, self.warm_content = regression.reg, regression.k, None
        self.cold_scale = float(model.cold_scale)
        if content and regression.reg > 0 and len(warm):
            mask = np.zeros(model.num_items, bool)
            mask[warm] = True
            self.warm_content = WarmContent(content, mask)
            self.y_warm = y[torch.from_numpy(warm)].double().numpy()
            if model.cold_op is None:  # no cold item in training: calibrate as after_fit would have
                users = model.embed()[0][:, : self.width]
                sample = torch.arange(0, model.num_users, max(1, model.num_users // 256))
                loo = self.warm_content.leave_one_out(regression.k, regression.reg)
                self.cold_scale = loo.calibration(users[sample], y[torch.from_numpy(warm)], method="rms")
        self.priors = np.array([ch.new_item_prior() for ch in self.channels if ch.item_prior() is not None],
                               np.float32)
        counts = np.diff(model.adj.crow_indices().numpy())[model.num_users:]
        target = model.popularity_target
        self.item_scale = 1.0 if target is None else float(popularity_share(np.append(counts, 0))[-1] ** target)

    def link_relations(self) -> dict[str, tuple[str, int]]:
        """The names ``item_vector``'s links may use → (target node type, node count): the KG
        paths, and (with the data set) the first hops of the two-hop paths."""
        return self.kg.link_relations(self.second_hops) if self.kg is not None else {}

    def new_item(self, text: np.ndarray | None = None, links: dict[str, list[int]] | None = None) -> NewItem:
        """The validated :class:`~kgrec.models.channels.base.NewItem` of that content."""
        if text is not None:
            if self.text is None or self.text.item_proj is None:
                raise ValueError(f"model '{self.model_name}' reads no item text")
            width = self.text.item_text.shape[1]
            text = np.asarray(text, np.float32)
            if text.shape != (width,) or not np.isfinite(text).all():
                raise ValueError(f"text must be {width} finite numbers (the model's text space), "
                                 f"got shape {text.shape}")
        known = self.link_relations()
        out = {}
        for name, targets in (links or {}).items():
            if name not in known:
                first_hop = self.kg is not None and any(p.name.startswith(f"{name}/") for p in self.kg.paths)
                hint = " (a first hop of two-hop paths: needs for_model(model, dataset))" if first_hop else ""
                raise ValueError(f"unknown link relation {name!r}{hint}; known: {', '.join(sorted(known)) or 'none'}")
            t = np.asarray(targets, np.int64).reshape(-1)
            if t.size and (t.min() < 0 or t.max() >= known[name][1]):
                raise ValueError(f"link target out of range [0, {known[name][1]}) for {name!r}")
            out[name] = np.unique(t)
        return NewItem(text, out, self.second_hops)

    def item_vector(self, text: np.ndarray | None = None, links: dict[str, list[int]] | None = None) -> np.ndarray:
        if not self.has_content:
            raise NotSupported(f"model '{self.model_name}' has no content channel (text or KG) to place a new item")
        item = self.new_item(text, links)
        if self.warm_content is not None:
            rows = [block for ch in self.channels for block in ch.new_item_content(item)]
            pos, w = self.warm_content.regression(rows, self.k, self.reg)
            vec = self.cold_scale * (w[0] @ self.y_warm[pos[0]])
        else:
            with torch.no_grad():
                h = torch.zeros(self.ego_dim)
                for channel in self.channels:
                    h = channel.fold_in_item(h, item)
            vec = np.zeros(self.width)
            vec[: self.ego_dim] = h.numpy() / (self.layers + 1)
        return (np.concatenate([vec, self.priors]) * self.item_scale).astype(np.float32)


class LightGCNFoldIn(FoldIn):
    """LightGCN: the GNN fold-in with a zero ego (no content path)."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.graph = Propagation(model.adj, model.emb.weight, model.num_users, model.layers)
        self.dim = model.emb.embedding_dim

    def user_vector(self, items: np.ndarray, weights: np.ndarray | None = None, *,
                    ego: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`FoldIn.user_vector` with a zero ego, or ``ego`` [d]."""
        h = History.of(items, weights, self.num_items)
        return self.graph.user(np.zeros(self.dim, np.float32) if ego is None else ego, h).astype(np.float32)


class _ClosedFormFoldIn(FoldIn):
    def __init__(self, model) -> None:
        super().__init__(model)
        self.items = model.item_factors.numpy()
        if self.items.shape[0] != model.num_items:
            raise ValueError(f"model '{self.model_name}' is not fitted")
        self.dim = model.user_factors.shape[1]


class RowFoldIn(_ClosedFormFoldIn):
    """EASE, ItemKNN: the history row ``x``; ELSA: ``x A``."""

    def user_vector(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        h = History.of(items, weights, self.num_items)
        if self.model_name == "elsa":
            return (h.x.astype(np.float32) @ self.items[h.distinct]).astype(np.float32)
        out = np.zeros(self.num_items, np.float32)
        out[h.distinct] = h.x
        return out


class TextFoldIn(_ClosedFormFoldIn):
    """Text: the normalised sum of the history's text vectors; a new item's is its text vector."""

    def user_vector(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        h = History.of(items, weights, self.num_items)
        profile = (h.x.astype(np.float32) @ self.items[h.distinct]) / max(float(h.x.sum()), 1.0)
        return (profile / max(float(np.linalg.norm(profile)), 1e-12)).astype(np.float32)

    def item_vector(self, text: np.ndarray | None = None, links: dict[str, list[int]] | None = None) -> np.ndarray:
        if text is None or links:
            raise ValueError(f"model '{self.model_name}' places a new item by its text vector alone")
        text = np.asarray(text, np.float32)
        if text.shape != (self.dim,):
            raise ValueError(f"text must have {self.dim} numbers, got shape {text.shape}")
        return text.copy()


class MostPopFoldIn(_ClosedFormFoldIn):
    """MostPop: ``[1]`` for every user, ``[0]`` for a new item."""

    def user_vector(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        History.of(items, weights, self.num_items)
        return np.ones(1, np.float32)

    def item_vector(self, text: np.ndarray | None = None, links: dict[str, list[int]] | None = None) -> np.ndarray:
        return np.zeros(1, np.float32)  # no training interactions: popularity 0
