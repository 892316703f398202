"""The kgrec model: a composition of channels (IDs, text, KG paths, user attributes, time,
social; :mod:`kgrec.models.channels`) propagated by LightGCN, plus a low-rank item-item
term, in one inner-product recommender.

Ego representations (d = ``dim``): ``h = c_K(… c_2(c_1(0)))`` over the channels ``c_k`` of
:data:`kgrec.models.channels.REGISTRY` that find their data in the schema and training view
(each adds its user and item terms; see each channel's docstring for its math). LightGCN
propagation over the training user-item graph turns ``h`` into ``z``.

The item-item component adds ``x_u · B_{:, i}`` with ``B = A Aᵀ − I`` of rank
``item_item_dim`` (ELSA, trained after the GNN and early-stopped on validation; for unseen
items the score is ``(x_u A) · A_i``), or, with ``item_item_dim=None``, EASE with KG and text
side information in closed form. The user's input row is ``x_u + κ r_u`` with ``r_u`` the
channels' history weights (the time channel's recency; ``κ`` chosen on validation, 0 without
one). Its blend weight ``α`` is chosen on validation NDCG@10 after training. Channels may
add an item prior ``p_i`` (the time channel's current demand) with a weight ``β`` chosen on
validation. All terms are inner products, so the final vectors are ``[α z_u ; x_u A ; β]``
and ``[z_i ; A_i ; p_i]`` (``dim + item_item_dim + P`` dimensions, 64 + 191 + 1 = 256 by
default; EASE: ``[α z_u ; x_u ; β]`` and ``[z_i ; B_{:, i} ; p_i]``) and top-K is one matrix
product.

Cold start. An item without training interactions gets the final vector ``c · M Y_w``:
a ridge regression on its k = 50 nearest warm items by content (:mod:`kgrec.models.cold_start`;
memory O((C + W)·k), no kernel over all warm items) of their final vectors ``Y_w``, with the
scale ``c`` from leave-one-out predictions of warm items (matched spread of scores). A user
without training interactions keeps the channels' attribute/text/social vector and, for
the item-item term, the mean history of their friends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from kgrec.errors import SchemaError
from kgrec.models.base import Batch, Explainable, KGRelation, ModelContext, Recommender, l2_reg, register
from kgrec.models.channels import REGISTRY, ChannelSettings
from kgrec.models.cold_start import ContentRegression
from kgrec.models.debias import popularity_share
from kgrec.models.masks import (EDGE_CHANNELS, Channel, EdgeMasks, ScalarChannel, masked_propagate, replace_row,
                               scale_row)
from kgrec.models.propagation import SparseOperator, propagate, to_torch_csr
from kgrec.models.side import item_item_with_side
from kgrec.models.tuning import choose

BLEND_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 6.0, 12.0, 50.0)  # 50: the GNN almost alone
RECENCY_GRID = (0.0, 0.5, 1.0, 2.0, 4.0)
ELSA_STEPS = 64  # the item-item term's steps per epoch at most (the batch of user rows grows beyond)
PRIOR_GRID = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


@register("kgrec")
class KGRec(Recommender, Explainable):
    """See the module docstring. Explainable (:class:`~kgrec.models.base.Explainable`):
    every channel it has can be masked for one score.

    Args:
        dim: embedding size (default 64).
        layers: LightGCN layers (default 2).
        reg: L2 weight on the batch's ego ID embeddings (default 1e-5).
        init_std: normal init std of the embeddings (default 0.1).
        use_kg, use_social, use_text, use_time: switch those channels (for ablations).
        channels: the channel names to use (default ``None``: every registered channel that
            finds its data; the ID channel is always on).
        use_sensitive: also feed sensitive user attributes (default False).
        max_paths: most KG relation paths kept, by edge count (default 8).
        time_decay: the time channel's recency decay per history position (default 0.9).
        item_item: add the item-item term (default True).
        item_item_dim: the rank of the item-item term, trained as the low-rank ELSA
            autoencoder (:mod:`kgrec.models.lowrank`; default 191, so the final vectors have
            ``dim + 191 + P ≤ 256`` dimensions whatever the catalogue size, ``P ≤ 1`` the
            channels' item priors); ``None`` fits it in
            closed form as EASE with side information (an [I, I] matrix, vectors of
            ``dim + I`` dimensions).
        item_item_reg: EASE's λ (default 300).
        side_weight: weight of KG/text similarity in its Gram matrix (default 0.1).
        id_dropout: probability of dropping an ID embedding in a training step (default 0.1).
        cold_reg: the content regression's knob for items without training interactions
            (:class:`~kgrec.models.cold_start.ContentRegression`; default 1; 0 keeps the
            GNN's content-only vectors).
        popularity_target: PDA's ranking-time popularity exponent ``γ̃``; ``None`` (default)
            ranks by the deconfounded score.
    """

    needs_text = True
    fit_buffers = ("blend", "item_scale", "ii_in", "ii_item", "ii_proj", "ii_recency", "prior_weight", "cold_scale")

    def __init__(self, ctx: ModelContext, dim: int = 64, layers: int = 2, reg: float = 1e-5, init_std: float = 0.1,
                 use_kg: bool = True, use_social: bool = True, use_text: bool = True, use_time: bool = True,
                 channels: list[str] | None = None, use_sensitive: bool = False, max_paths: int = 8,
                 time_decay: float = 0.9, item_item: bool = True, item_item_dim: int | None = 191,
                 item_item_reg: float = 300.0, side_weight: float = 0.1,
                 id_dropout: float = 0.1, cold_reg: float = 1.0, popularity_target: float | None = None) -> None:
        super().__init__(ctx)
        self.layers, self.reg = layers, reg
        names = [c.name for c in REGISTRY]
        unknown = sorted(set(channels or ()) - set(names))
        if unknown:
            raise SchemaError(f"kgrec has no channel '{unknown[0]}' (channels: {', '.join(names)})",
                              field="model.params.channels")
        off = {"kg": not use_kg, "social": not use_social, "text": not use_text, "time": not use_time}
        settings = ChannelSettings(dim, init_std, id_dropout, use_sensitive, max_paths, time_decay)
        built = {}
        for cls in REGISTRY:
            wanted = cls.name == "ids" or (channels is None or cls.name in channels) and not off.get(cls.name)
            channel = cls.build(ctx, settings) if wanted else None
            if channel is not None:
                built[cls.name] = channel
        self.channels = nn.ModuleDict(built)
        self.ids, self.kg, self.social = built["ids"], built.get("kg"), built.get("social")
        self.train_sp = sp.csr_matrix(ctx.train)
        self.train_sp.sort_indices()
        self.adj_sp = ctx.view.bipartite_adjacency()
        self.adj = to_torch_csr(self.adj_sp)
        self.item_item, self.item_item_reg, self.side_weight = item_item, item_item_reg, side_weight
        self.item_item_dim = None if item_item_dim is None else min(int(item_item_dim), ctx.num_items)
        self.popularity_target = popularity_target
        self.register_buffer("blend", torch.tensor(1.0))
        self.register_buffer("item_scale", torch.ones(ctx.num_items, 1))
        content = [block for ch in built.values() for block in ch.item_content()]
        priors = [p for ch in built.values() if (p := ch.item_prior()) is not None]
        self.prior_masks = [name for _, name in priors]
        self.register_buffer("item_prior", torch.from_numpy(np.stack([p for p, _ in priors], 1).astype(np.float32))
                             if priors else torch.zeros(ctx.num_items, 0), persistent=False)
        self.register_buffer("prior_weight", torch.zeros(len(priors)))
        if item_item:
            self._setup_item_item(ctx, content)
        # cold items: final vectors regressed from content on the warm items' final vectors
        warm = ctx.item_counts > 0
        self.content_regression = ContentRegression.fit(content, warm, cold_reg)
        cold_map = sp.csr_matrix(self.content_regression.cold_map, dtype=np.float32)
        self.cold_op = SparseOperator(cold_map) if cold_map.shape[0] else None
        self.register_buffer("cold_items", torch.from_numpy(np.flatnonzero(~warm)), persistent=False)
        self.register_buffer("warm_items", torch.from_numpy(np.flatnonzero(warm)), persistent=False)
        self.register_buffer("cold_scale", torch.tensor(1.0))

    def _setup_item_item(self, ctx: ModelContext, content: list) -> None:
        self.ii_side = content  # EASE's side information
        history = sp.csr_matrix(ctx.train, dtype=np.float32)
        if self.social is not None:  # cold users borrow their friends' histories
            history = sp.csr_matrix(history + self.social.borrowed_history(ctx.train))
        history.sort_indices()
        self.ii_history = history  # [U, I] sparse: the item-item term's input rows
        weights = [w for ch in self.channels.values() if (w := ch.history_weights()) is not None]
        recency = sp.csr_matrix(sum(weights[1:], weights[0]), dtype=np.float32) if weights else None
        self.ii_recency_sp = recency
        if self.item_item_dim is None:  # EASE needs the dense rows anyway ([I, I] weights)
            self.register_buffer("ii_user", torch.from_numpy(history.toarray()), persistent=False)
            if recency is not None:
                self.register_buffer("ii_user_recency", torch.from_numpy(recency.toarray()), persistent=False)
        else:  # low rank: X A by a sparse product, memory O(nnz + I·d)
            self.ii_history_op = SparseOperator(history)
            self.ii_recency_op = SparseOperator(recency) if recency is not None else None
        self.register_buffer("ii_in", torch.ones(ctx.num_items))
        self.register_buffer("ii_recency", torch.tensor(0.0))  # κ
        width = ctx.num_items if self.item_item_dim is None else self.item_item_dim
        self.register_buffer("ii_item", torch.zeros(ctx.num_items, width))
        # low rank: the user side is x_u A (A = ii_proj, unit rows), the item side A_i
        self.register_buffer("ii_proj", torch.zeros(ctx.num_items if self.item_item_dim else 0, width))

    def egos(self, masks: EdgeMasks | None = None) -> tuple[Tensor, Tensor]:
        """The ego representations ``(h_u [U, d], h_i [I, d])``: every channel's terms."""
        dim = self.ids.user_emb.embedding_dim
        hu, hi = torch.zeros(self.num_users, dim), torch.zeros(self.num_items, dim)
        for channel in self.channels.values():
            hu = channel.user(hu, masks)
            hi = channel.item(hi, masks)
        return hu, hi

    def gnn(self, masks: EdgeMasks | None = None) -> tuple[Tensor, Tensor]:
        """The propagated representations ``z_u``, ``z_i`` (ID dropout in training mode; the
        edges of one score scaled by ``masks`` when explaining)."""
        x = torch.cat(self.egos(masks))
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
        if self.cold_op is not None:
            items = items.index_copy(0, self.cold_items, self.cold_scale * self.cold_op(items[self.warm_items]))
        if len(self.prior_masks):
            users = torch.cat([users, self.prior_weight.expand(self.num_users, -1)], 1)
            items = torch.cat([items, self._priors(masks)], 1)
        return users, items * self.item_scale

    def _priors(self, masks: EdgeMasks | None) -> Tensor:
        """The item prior columns [I, P], the explained item's scaled by their channels' masks."""
        prior = self.item_prior
        for k, name in enumerate(self.prior_masks):
            if masks is not None and masks.scalar(name) is not None:
                column = scale_row(prior[:, k: k + 1], masks.item, masks.scalar(name))
                prior = torch.cat([prior[:, :k], column, prior[:, k + 1:]], 1)
        return prior

    def pair_score(self, user: int, item: int, masks: EdgeMasks | None = None) -> Tensor:
        """``embed(masks)[0][user] · embed(masks)[1][item]`` without building every vector
        (cold items, whose vectors come from all warm items, take the full path)."""
        if self.cold_op is not None and bool((self.cold_items == item).any()):
            users, items = self.embed(masks)
            return (users[user] * items[item]).sum()
        users, items = self.gnn(masks=masks)
        score = (users[user] * items[item]).sum()
        if self.item_item:
            score = self.blend * score + (self._ii_user(self._history_row(user, masks)) * self.ii_item[item]).sum()
        if len(self.prior_masks):
            score = score + (self.prior_weight * self._priors(masks)[item]).sum()
        return score * self.item_scale[item, 0]

    def _ii_user(self, history: Tensor) -> Tensor:
        """The user side of the item-item term from history rows [..., I]: the rows
        themselves (EASE), or their projection ``x_u A`` (low rank)."""
        return history if self.item_item_dim is None else history @ self.ii_proj

    def _all_ii_users(self) -> Tensor:
        """Every user's side of the item-item term: ``(X + κR) diag(w)`` (EASE) or that times ``A``."""
        kappa = float(self.ii_recency)
        if self.item_item_dim is None:
            x = self.ii_user if not kappa else self.ii_user + kappa * self.ii_user_recency
            return x * self.ii_in
        out = self.ii_history_op(self.ii_in.unsqueeze(1) * self.ii_proj)
        if kappa:
            out = out + kappa * self.ii_recency_op(self.ii_in.unsqueeze(1) * self.ii_proj)
        return out

    def _history_rows(self, rows: np.ndarray) -> Tensor:
        """Dense rows [len(rows), I] of the item-item term's (unweighted) input ``x + κ r``."""
        if self.item_item_dim is None:
            idx = torch.from_numpy(rows)
            x = self.ii_user[idx]
            return x + float(self.ii_recency) * self.ii_user_recency[idx] if float(self.ii_recency) else x
        x = self.ii_history[rows]
        if float(self.ii_recency):
            x = x + float(self.ii_recency) * self.ii_recency_sp[rows]
        return torch.from_numpy(x.toarray())

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
        edges = {"history": True, "friends": self.social is not None, "kg": self.kg is not None}
        return tuple(c for c in EDGE_CHANNELS if edges[c]) + tuple(s.name for s in self.scalar_channels())

    def scalar_channels(self) -> tuple[ScalarChannel, ...]:
        return tuple(s for ch in self.channels.values() for s in ch.scalar_channels())

    @property
    def sensitive_inputs(self) -> frozenset[str]:
        attributes = self.channels["attributes"] if "attributes" in self.channels else None
        return attributes.sensitive_inputs if attributes is not None else frozenset()

    def kg_relations(self) -> list[KGRelation]:
        """The relation paths with their learned attention ``softmax(a)_r``."""
        if self.kg is None:
            return []
        weights = self.kg.attention().detach().tolist()
        return [KGRelation(p.name, p.target, w) for p, w in zip(self.kg.paths, weights)]

    def history_items(self, user: int) -> np.ndarray:
        return self.train_sp.indices[self.train_sp.indptr[user]: self.train_sp.indptr[user + 1]].astype(np.int64)

    def friend_row(self, user: int) -> tuple[Tensor, Tensor]:
        return self.social.row(user)

    def kg_row(self, k: int, item: int) -> tuple[Tensor, Tensor]:
        return self.kg.row(k, item)

    def loss(self, batch: Batch) -> Tensor:
        users, items = self.gnn()
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        pos = (u * p).sum(-1)
        neg = torch.einsum("bd,bkd->bk", u, n)
        ego = l2_reg(self.ids.user_emb(batch.users), self.ids.item_emb(batch.pos),
                     self.ids.item_emb(batch.neg.flatten()))
        return self.pair_loss(pos, neg, batch) + self.reg * ego

    @torch.no_grad()
    def after_fit(self, ctx: ModelContext, score: Callable[[Recommender], float]) -> None:
        """Fit the item-item term, choose its recency weight ``κ`` (with history weights) and the
        blend weight ``α`` of the GNN against it on validation, with the GNN scores scaled to
        the item-item scores' spread; then calibrate the scale of the cold items' regressed
        vectors by leave-one-out predictions of warm items (``rms``: the cold items' scores get
        the spread of the warm ones', so a cold item reaches a top-k about as often as a warm
        one; a least-squares scale shrinks them towards their expected score, which almost
        never reaches a top 20). Last, the PDA popularity target, if set, scales item ``i``'s
        vector by ``m_i^γ̃``."""
        self.eval()
        if self.item_item:
            self._fit_item_item(ctx, score)
            self._choose_recency(score)
            self._choose_blend(score)
        self._choose_priors(score)
        if self.cold_op is not None:
            users, items = self.embed()
            width = items.shape[1] - len(self.prior_masks)  # the regressed part, without the priors
            sample = torch.arange(0, self.num_users, max(1, self.num_users // 256))
            self.cold_scale.fill_(self.content_regression.calibration(
                users[sample, :width], items[self.warm_items, :width], method="rms"))
        if self.popularity_target is not None:
            self.item_scale.copy_(torch.from_numpy(popularity_share(ctx.item_counts) ** self.popularity_target)
                                  .float().unsqueeze(1))

    def _choose_priors(self, score: Callable[[Recommender], float]) -> None:
        """Each prior's weight on validation, in units of the current scores' spread over
        the prior's, from :data:`PRIOR_GRID` (0: the prior is ignored)."""
        for k in range(len(self.prior_masks)):
            users, items = self.embed()
            sample = torch.arange(0, self.num_users, max(1, self.num_users // 256))
            spread = (users[sample] @ items.T).std()
            unit = float(spread / self.item_prior[:, k].std().clamp_min(1e-12))
            choose(lambda w: self.prior_weight.__setitem__(k, w), [a * unit for a in PRIOR_GRID], score, self)

    def _choose_recency(self, score: Callable[[Recommender], float]) -> None:
        """``κ`` on validation, with the GNN switched off (blend 0), from :data:`RECENCY_GRID`."""
        if self.ii_recency_sp is None:
            return
        blend = float(self.blend)
        self.blend.fill_(0.0)
        choose(self.ii_recency.fill_, RECENCY_GRID, score, self)
        self.blend.fill_(blend)

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
            # at most ELSA_STEPS steps per epoch: each costs O(nnz_batch·d + I·d²)
            batch = max(256, -(-x.shape[0] // ELSA_STEPS))
            a, _ = fit_elsa(x, self.item_item_dim, lr=0.01, batch_size=batch, validate=validate,
                            seed=int(torch.initial_seed()) % (2**31))
        use(a)
        self.blend.fill_(blend)

    def _choose_blend(self, score: Callable[[Recommender], float]) -> None:
        users, items = self.gnn()
        sample = torch.arange(0, self.num_users, max(1, self.num_users // 256))
        gnn_std = (users[sample] @ items.T).std().clamp_min(1e-12)
        ii_std = (self._ii_user(self._history_rows(sample.numpy())) @ self.ii_item.T).std()
        choose(self.blend.fill_, [a * float(ii_std / gnn_std) for a in BLEND_GRID], score, self)
