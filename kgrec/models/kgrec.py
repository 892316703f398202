"""The kgrec model: collaborative, knowledge-graph, social and text signals fused into one
inner-product recommender.

Ego representations (d = ``dim``):

- item ``i``: ``h_i = m_i·e_i + g_i ⊙ P t_i + Σ_r softmax(a)_r · (M_r (E_{T(r)} ⊙ w_r))_i``
  where ``t_i`` is the frozen transformer embedding of the item text, ``P`` a linear
  projection, ``g_i = σ(G [e_i; P t_i])`` a learned gate, ``M_r`` the row-normalised
  item → node matrix of relation path ``r`` (from the schema's KG and link edges, one and
  two hops), ``E_T`` embeddings of the path's target nodes and ``w_r`` a per-relation
  diagonal transform (R-GCN with diagonal bases). ``m_i = 0`` for items without training
  interactions (cold); ID dropout in training teaches the side channels to carry load.
- user ``u``: ``h_u = m_u·e_u + A x_u + P_u t_u``, then social diffusion
  ``h_u ← h_u + β S h_u`` over the row-normalised friend matrix ``S`` (DiffNet-style),
  where ``x_u`` holds the non-sensitive attributes (sensitive ones only if asked).

LightGCN propagation over the training user-item graph turns ``h`` into ``z``. The
item-item component adds ``X_u · B_{:, i}`` with ``B = A Aᵀ − I`` of rank ``item_item_dim``
(ELSA, trained after the GNN and early-stopped on validation; for unseen items the score is
``(X_u A) · A_i``), or, with ``item_item_dim=None``, EASE with KG and text side information
in closed form. Its blend weight ``α`` is chosen on validation NDCG@10 after training. Both
terms are inner products, so the final vectors are ``[α z_u ; X_u A]`` and ``[z_i ; A_i]``
(``dim + item_item_dim`` dimensions; EASE: ``[α z_u ; X_u]`` and ``[z_i ; B_{:, i}]``) and
top-K is one matrix product.

Cold start. An item without training interactions gets the final vector ``c · M Y_w``:
kernel ridge regression (cosine kernels of text and KG rows) of the warm items' final
vectors ``Y_w`` on content, with the scale ``c`` chosen on validation. A user without
training interactions keeps the GNN's attribute/text/social vector and, for the item-item
term, the mean history of their friends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.data.features import attribute_matrix
from kgrec.models.cold_start import ContentRegression
from kgrec.models.base import Batch, Explainable, KGRelation, ModelContext, Recommender, l2_reg, register
from kgrec.models.debias import popularity_share
from kgrec.models.masks import CHANNELS, Channel, EdgeMasks, masked_propagate, replace_row, scale_row
from kgrec.models.propagation import (
    SparseOperator,
    propagate,
    to_torch_csr,
)
from kgrec.models.side import (
    item_item_with_side,
    item_relation_paths,
    social_matrix,
)

BLEND_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@register("kgrec")
class KGRec(Recommender, Explainable):
    """See the module docstring. Explainable (:class:`~kgrec.models.base.Explainable`):
    every channel it has can be masked for one score.

    Args:
        dim: embedding size (default 64).
        layers: LightGCN layers (default 2).
        reg: L2 weight on the batch's ego ID embeddings (default 1e-5).
        init_std: normal init std of the embeddings (default 0.1).
        use_kg, use_social, use_text: switch the side signals (for ablations).
        use_sensitive: also feed sensitive user attributes (default False).
        max_paths: most KG relation paths kept, by edge count (default 8).
        item_item: add the item-item term (default True).
        item_item_dim: the rank of the item-item term, trained as the low-rank ELSA
            autoencoder (:mod:`kgrec.models.lowrank`; default 192, so the final vectors have
            ``dim + 192 = 256`` dimensions whatever the catalogue size); ``None`` fits it in
            closed form as EASE with side information (an [I, I] matrix, vectors of
            ``dim + I`` dimensions).
        item_item_reg: EASE's λ (default 300).
        side_weight: weight of KG/text similarity in its Gram matrix (default 0.1).
        id_dropout: probability of dropping an ID embedding in a training step (default 0.1).
        cold_reg: λ of the kernel ridge regression that maps text and KG content to the final
            vectors of items without training interactions (default 1; 0 keeps the GNN's
            content-only vectors).
        popularity_target: PDA's ranking-time popularity exponent ``γ̃``; ``None`` (default)
            ranks by the deconfounded score.
    """

    needs_text = True
    fit_buffers = ("blend", "item_scale", "ii_in", "ii_item", "ii_proj", "cold_scale")

    def __init__(self, ctx: ModelContext, dim: int = 64, layers: int = 2, reg: float = 1e-5, init_std: float = 0.1,
                 use_kg: bool = True, use_social: bool = True, use_text: bool = True, use_sensitive: bool = False,
                 max_paths: int = 8, item_item: bool = True, item_item_dim: int | None = 192,
                 item_item_reg: float = 300.0, side_weight: float = 0.1,
                 id_dropout: float = 0.1, cold_reg: float = 1.0, popularity_target: float | None = None) -> None:
        super().__init__(ctx)
        ds = ctx.dataset
        self.layers, self.reg, self.id_dropout = layers, reg, id_dropout
        self.user_emb = nn.Embedding(ctx.num_users, dim)
        self.item_emb = nn.Embedding(ctx.num_items, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.register_buffer("user_warm", torch.from_numpy(np.diff(ctx.train.indptr) > 0).float().unsqueeze(1),
                             persistent=False)
        self.register_buffer("item_warm", torch.from_numpy(ctx.item_counts > 0).float().unsqueeze(1),
                             persistent=False)
        self.train_sp = sp.csr_matrix(ctx.train)
        self.train_sp.sort_indices()
        self.adj_sp = ctx.view.bipartite_adjacency()
        self.adj = to_torch_csr(self.adj_sp)
        # knowledge graph: one learned transform per relation path
        self.paths = item_relation_paths(ds, max_paths) if use_kg else []
        self.path_ops = [SparseOperator(p.matrix) for p in self.paths]
        targets = sorted({p.target for p in self.paths})
        self.target_index = {t: k for k, t in enumerate(targets)}
        self.node_emb = nn.ModuleList(nn.Embedding(ds.nodes[t].num, dim) for t in targets)
        for emb in self.node_emb:
            nn.init.normal_(emb.weight, std=init_std)
        self.rel_diag = nn.Parameter(torch.ones(len(self.paths), dim))
        self.rel_logit = nn.Parameter(torch.zeros(len(self.paths)))
        # text, fused by a learned gate
        self.item_proj = self.item_gate = self.user_proj = None
        if use_text and ctx.item_text is not None:
            self.register_buffer("item_text", torch.from_numpy(np.asarray(ctx.item_text, np.float32)), persistent=False)
            self.item_proj = nn.Linear(self.item_text.shape[1], dim)
            self.item_gate = nn.Linear(2 * dim, dim)
        if use_text and ctx.user_text is not None:
            self.register_buffer("user_text", torch.from_numpy(np.asarray(ctx.user_text, np.float32)), persistent=False)
            self.user_proj = nn.Linear(self.user_text.shape[1], dim)
        # user attributes and the social graph
        attrs = attribute_matrix(ds, ds.schema.user_type, include_sensitive=use_sensitive)
        user_spec = ds.schema.nodes[ds.schema.user_type]
        self._sensitive_inputs = frozenset(  # the sensitive features attribute_matrix encodes
            name for name, f in user_spec.features.items()
            if use_sensitive and name in user_spec.sensitive
            and (f.type in ("categorical", "multicategorical") or (f.type == "numeric" and f.bins)))
        self.attr_emb = None
        if attrs is not None:
            dense = attrs.toarray().astype(np.float32)
            dense /= np.maximum(dense.sum(1, keepdims=True), 1.0)
            self.register_buffer("user_attr", torch.from_numpy(dense), persistent=False)
            self.attr_emb = nn.Linear(dense.shape[1], dim, bias=False)
        social = social_matrix(ds) if use_social else None
        self.social = SparseOperator(social) if social is not None else None
        self.social_sp = social
        self.social_beta = nn.Parameter(torch.tensor(0.5)) if social is not None else None
        # closed-form item-item component with side information, fitted in after_fit under
        # the training objective (so early stopping judges the GNN alone)
        self.item_item, self.item_item_reg, self.side_weight = item_item, item_item_reg, side_weight
        self.item_item_dim = None if item_item_dim is None else min(int(item_item_dim), ctx.num_items)
        self.popularity_target = popularity_target
        self.register_buffer("blend", torch.tensor(1.0))
        self.register_buffer("item_scale", torch.ones(ctx.num_items, 1))
        if item_item:
            self.ii_side = [p.matrix for p in self.paths]
            if use_text and ctx.item_text is not None:
                self.ii_side.append(np.asarray(ctx.item_text, np.float64))
            history = sp.csr_matrix(ctx.train, dtype=np.float32)
            if social is not None:  # cold users borrow their friends' histories
                cold_u = np.flatnonzero(np.diff(ctx.train.indptr) == 0)
                place = sp.csr_matrix((np.ones(len(cold_u), np.float32), (cold_u, np.arange(len(cold_u)))),
                                      shape=(ctx.num_users, len(cold_u)))
                history = sp.csr_matrix(history + place @ sp.csr_matrix(social[cold_u] @ ctx.train, dtype=np.float32))
            history.sort_indices()
            self.ii_history = history  # [U, I] sparse: the item-item term's input rows
            if self.item_item_dim is None:  # EASE needs the dense rows anyway ([I, I] weights)
                self.register_buffer("ii_user", torch.from_numpy(history.toarray()), persistent=False)
            else:  # low rank: X A by a sparse product, memory O(nnz + I·d)
                self.ii_history_op = SparseOperator(history)
            self.register_buffer("ii_in", torch.ones(ctx.num_items))
            width = ctx.num_items if self.item_item_dim is None else self.item_item_dim
            self.register_buffer("ii_item", torch.zeros(ctx.num_items, width))
            # low rank: the user side is x_u A (A = ii_proj, unit rows), the item side A_i
            self.register_buffer("ii_proj", torch.zeros(ctx.num_items if self.item_item_dim else 0, width))
        # cold items: final vectors regressed from content on the warm items' final vectors
        content = []
        if use_text and ctx.item_text is not None:
            content.append(np.asarray(ctx.item_text, np.float64))
        if self.paths:
            content.append(sp.hstack([p.matrix for p in self.paths], format="csr"))
        warm = ctx.item_counts > 0
        self.content_regression = ContentRegression.fit(content, warm, cold_reg)
        cold_map = self.content_regression.cold_map
        self.register_buffer("cold_items", torch.from_numpy(np.flatnonzero(~warm)), persistent=False)
        self.register_buffer("warm_items", torch.from_numpy(np.flatnonzero(warm)), persistent=False)
        self.register_buffer("cold_map", torch.from_numpy(cold_map.astype(np.float32)), persistent=False)
        self.register_buffer("cold_scale", torch.tensor(1.0))

    def _item_ego(self, drop: Tensor | None, masks: EdgeMasks | None = None) -> Tensor:
        h = self.item_emb.weight * self.item_warm
        if drop is not None:
            h = h * drop
        if self.item_proj is not None:
            t = self.item_proj(self.item_text)
            g = torch.sigmoid(self.item_gate(torch.cat([h, t], dim=1))) * t
            h = h + (g if masks is None else scale_row(g, masks.item, masks.item_text))
        if self.paths:
            att = torch.softmax(self.rel_logit, 0)
            for k, (path, op) in enumerate(zip(self.paths, self.path_ops)):
                x = self.node_emb[self.target_index[path.target]].weight * self.rel_diag[k]
                y = op(x)
                if masks is not None and k < len(masks.kg) and masks.kg[k] is not None:
                    cols, vals = self.kg_row(k, masks.item)
                    y = replace_row(y, masks.item, (vals * masks.kg[k]) @ x[cols])
                h = h + att[k] * y
        return h

    def _user_ego(self, drop: Tensor | None, masks: EdgeMasks | None = None) -> Tensor:
        h = self.user_emb.weight * self.user_warm
        if drop is not None:
            h = h * drop
        if self.attr_emb is not None:
            a = self.attr_emb(self.user_attr)
            h = h + (a if masks is None else scale_row(a, masks.user, masks.user_attr))
        if self.user_proj is not None:
            t = self.user_proj(self.user_text)
            h = h + (t if masks is None else scale_row(t, masks.user, masks.user_text))
        if self.social is not None:
            s = self.social(h)
            if masks is not None and masks.friends is not None:
                cols, vals = self.friend_row(masks.user)
                s = replace_row(s, masks.user, (vals * masks.friends) @ h[cols])
            h = h + self.social_beta * s
        return h

    def gnn(self, training: bool = False, masks: EdgeMasks | None = None) -> tuple[Tensor, Tensor]:
        """The propagated representations ``z_u``, ``z_i`` (ID dropout when training; the
        edges of one score scaled by ``masks`` when explaining)."""
        du = di = None
        if training and self.id_dropout > 0:
            du = (torch.rand(self.num_users, 1) >= self.id_dropout).float()
            di = (torch.rand(self.num_items, 1) >= self.id_dropout).float()
        x = torch.cat([self._user_ego(du, masks), self._item_ego(di, masks)])
        if masks is None or masks.history is None:
            out = propagate(self.adj, x, self.layers)
        else:
            items = self.history_items(masks.user)
            weights = torch.from_numpy(self.adj_sp[masks.user, self.num_users + items].toarray().ravel()).float()
            out = masked_propagate(self.adj, x, self.layers, masks.user, torch.from_numpy(self.num_users + items),
                                   weights, masks.history)
        return out[: self.num_users], out[self.num_users:]

    def embed(self, masks: EdgeMasks | None = None) -> tuple[Tensor, Tensor]:
        users, items = self.gnn(masks=masks)
        if self.item_item:
            ii_users = self._all_ii_users()
            if masks is not None and masks.history is not None:
                ii_users = replace_row(ii_users, masks.user, self._ii_user(self._history_row(masks.user, masks)))
            users = torch.cat([self.blend * users, ii_users], 1)
            items = torch.cat([items, self.ii_item], 1)
        if len(self.cold_map):
            regressed = self.cold_map @ items[self.warm_items]
            items = items.index_copy(0, self.cold_items, self.cold_scale * regressed)
        return users, items * self.item_scale

    def pair_score(self, user: int, item: int, masks: EdgeMasks | None = None) -> Tensor:
        """``embed(masks)[0][user] · embed(masks)[1][item]`` without building every vector
        (cold items, whose vectors come from all warm items, take the full path)."""
        if len(self.cold_map) and bool((self.cold_items == item).any()):
            users, items = self.embed(masks)
            return (users[user] * items[item]).sum()
        users, items = self.gnn(masks=masks)
        score = (users[user] * items[item]).sum()
        if self.item_item:
            score = self.blend * score + (self._ii_user(self._history_row(user, masks)) * self.ii_item[item]).sum()
        return score * self.item_scale[item, 0]

    def _ii_user(self, history: Tensor) -> Tensor:
        """The user side of the item-item term from history rows [..., I]: the rows
        themselves (EASE), or their projection ``x_u A`` (low rank)."""
        return history if self.item_item_dim is None else history @ self.ii_proj

    def _all_ii_users(self) -> Tensor:
        """Every user's side of the item-item term: ``X diag(w)`` (EASE) or ``X diag(w) A``."""
        if self.item_item_dim is None:
            return self.ii_user * self.ii_in
        return self.ii_history_op(self.ii_in.unsqueeze(1) * self.ii_proj)

    def _history_rows(self, rows: np.ndarray) -> Tensor:
        """Dense rows [len(rows), I] of the item-item term's (unweighted) input."""
        if self.item_item_dim is None:
            return self.ii_user[torch.from_numpy(rows)]
        return torch.from_numpy(self.ii_history[rows].toarray())

    def _history_row(self, user: int, masks: EdgeMasks | None) -> Tensor:
        """The user's row of the item-item term's input, training items scaled by their masks."""
        row = self._history_rows(np.array([user]))[0] * self.ii_in
        if masks is None or masks.history is None:
            return row
        hist = torch.from_numpy(self.history_items(user))
        return row.index_copy(0, hist, row[hist] * masks.history)

    # the explanation protocol (kgrec.models.base.Explainable; masks: kgrec.models.masks)
    @property
    def mask_channels(self) -> tuple[Channel, ...]:
        present = {"history": True, "friends": self.social is not None, "kg": bool(self.paths),
                   "item_text": self.item_proj is not None, "user_text": self.user_proj is not None,
                   "user_attr": self.attr_emb is not None}
        return tuple(c for c in CHANNELS if present[c])

    @property
    def sensitive_inputs(self) -> frozenset[str]:
        return self._sensitive_inputs

    def kg_relations(self) -> list[KGRelation]:
        """The relation paths with their learned attention ``softmax(a)_r``."""
        weights = torch.softmax(self.rel_logit.detach(), 0).tolist() if self.paths else []
        return [KGRelation(p.name, p.target, w) for p, w in zip(self.paths, weights)]

    def history_items(self, user: int) -> np.ndarray:
        return self.train_sp.indices[self.train_sp.indptr[user]: self.train_sp.indptr[user + 1]].astype(np.int64)

    def friend_row(self, user: int) -> tuple[Tensor, Tensor]:
        row = self.social_sp[user]
        return torch.from_numpy(row.indices.astype(np.int64)), torch.from_numpy(row.data.astype(np.float32))

    def kg_row(self, k: int, item: int) -> tuple[Tensor, Tensor]:
        row = self.paths[k].matrix[item]
        return torch.from_numpy(row.indices.astype(np.int64)), torch.from_numpy(row.data.astype(np.float32))

    def loss(self, batch: Batch) -> Tensor:
        users, items = self.gnn(training=True)
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        pos = (u * p).sum(-1)
        neg = torch.einsum("bd,bkd->bk", u, n)
        ego = l2_reg(self.user_emb(batch.users), self.item_emb(batch.pos), self.item_emb(batch.neg.flatten()))
        return self.pair_loss(pos, neg, batch) + self.reg * ego

    @torch.no_grad()
    def after_fit(self, ctx: ModelContext, score: Callable[[Recommender], float]) -> None:
        """Choose the blend weight ``α`` of the GNN against the item-item term on validation,
        with the GNN scores scaled to the item-item scores' spread; then calibrate the scale
        of the cold items' regressed vectors (ridge shrinks them towards zero) by leave-one-out
        regression on warm items, so cold items rank by their expected score. Last, the PDA
        popularity target, if set, scales item ``i``'s vector by ``m_i^γ̃``."""
        if self.item_item:
            self._fit_item_item(ctx, score)
            self._choose_blend(score)
        if len(self.cold_map):
            users, items = self.embed()
            sample = torch.arange(0, self.num_users, max(1, self.num_users // 256))
            self.cold_scale.fill_(self.content_regression.calibration(users[sample], items[self.warm_items]))
        if self.popularity_target is not None:
            self.item_scale.copy_(torch.from_numpy(popularity_share(ctx.item_counts) ** self.popularity_target)
                                  .float().unsqueeze(1))

    def _fit_item_item(self, ctx: ModelContext, score: Callable[[Recommender], float]) -> None:
        """The item-item term under the training objective: ``ips`` fits it on ``X diag(√w)``
        (each target item's loss weighted by its IPS weight ``w_i``, the same weights as
        IPS-BPR); ``pda`` divides item ``i``'s column (low rank: its vector) by ``m_i^γ``,
        the popularity factor PDA trains with, so it ranks by the deconfounded score. EASE
        with side information is closed-form; ELSA is early-stopped on ``score`` with the
        GNN part switched off (blend 0)."""
        weights = np.ones(self.num_items)
        if self.objective.kind == "ips":
            weights = np.sqrt(self.objective.item_weight.double().numpy())
        x = sp.csr_matrix(ctx.train @ sp.diags(weights))
        pda = popularity_share(ctx.item_counts) ** self.objective.gamma if self.objective.kind == "pda" else None
        self.ii_in.copy_(torch.from_numpy(weights).float())
        if self.item_item_dim is not None:
            self._fit_low_rank(x, pda, score)
            return
        b = item_item_with_side(x, self.ii_side, self.item_item_reg, self.side_weight)
        if pda is not None:
            b = b / pda[None, :]
        self.ii_item.copy_(torch.from_numpy(b.T).float())

    def _fit_low_rank(self, x: sp.csr_matrix, pda: np.ndarray | None, score: Callable[[Recommender], float]) -> None:
        from kgrec.models.lowrank import fit_elsa

        def use(a: Tensor) -> None:
            self.ii_proj.copy_(a)
            self.ii_item.copy_(a if pda is None else a / torch.from_numpy(pda).float().unsqueeze(1))

        def validate(a: Tensor) -> float:
            use(a)
            return score(self)

        blend = float(self.blend)
        self.blend.fill_(0.0)  # early-stopped on the item-item term alone
        with torch.enable_grad():
            a, _ = fit_elsa(x, self.item_item_dim, lr=0.01, batch_size=256, validate=validate,
                            seed=int(torch.initial_seed()) % (2**31))
        use(a)
        self.blend.fill_(blend)

    def _choose_blend(self, score: Callable[[Recommender], float]) -> None:
        users, items = self.gnn()
        sample = torch.arange(0, self.num_users, max(1, self.num_users // 256))
        gnn_std = (users[sample] @ items.T).std().clamp_min(1e-12)
        ii_std = (self._ii_user(self._history_rows(sample.numpy())) @ self.ii_item.T).std()
        unit = float(ii_std / gnn_std)
        best = (-1.0, 1.0)
        for a in BLEND_GRID:
            self.blend.fill_(a * unit)
            best = max(best, (score(self), a * unit))
        self.blend.fill_(best[1])
