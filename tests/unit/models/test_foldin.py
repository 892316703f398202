"""Fold-in (kgrec.models.foldin): a user from a history and a new item from its content,
checked against the models' own propagation and embed(), and for ranking quality (latency:
benchmarks/foldin_timing.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.data import SplitConfig, make_split
from kgrec.data.view import views
from kgrec.models import create_model
from kgrec.models.base import ModelContext
from kgrec.models.cold_start import ContentRegression, WarmContent, local_ridge_weights, nearest_warm
from kgrec.models.foldin import FoldIn, NotSupported
from kgrec.models.propagation import propagate, to_torch_csr
from kgrec.rundir.config import load_config
from kgrec.train.trainer import fit

SCHEMA = """name: clusters
description: Users and items in six clusters, with genres, makers and timestamps.
license: CC0, written for kgrec's tests.
source: {env: KGREC_CLUSTERS_DIR}
files: {users.tsv: {format: tsv}, items.tsv: {format: tsv}, clicks.tsv: {format: tsv}, genres.tsv: {format: tsv},
        makers.tsv: {format: tsv}, kg.tsv: {format: tsv}, entities.tsv: {format: tsv}}
nodes:
  user: {file: users.tsv, id: user_id}
  item: {file: items.tsv, id: item_id}
  entity: {file: entities.tsv, id: entity_id}
edges:
  clicked:
    {src: user, dst: item, role: interaction, file: clicks.tsv, columns: {src: user_id, dst: item_id, timestamp: ts}}
  has_genre: {src: item, dst: entity, role: link, file: genres.tsv, columns: {src: item_id, dst: entity_id}}
  made_by: {src: item, dst: entity, role: link, file: makers.tsv, columns: {src: item_id, dst: entity_id}}
  kg: {src: entity, dst: entity, role: kg, file: kg.tsv, columns: {src: head, relation: relation, dst: tail}}
"""


def _tsv(path: Path, header: list[str], rows: list[list]) -> None:
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))


def _clusters(root: Path, n_users: int = 300, n_items: int = 120, k: int = 6, seed: int = 0):
    """Users who mostly click items of their own cluster (85%), items linked to their
    cluster's genre and one of its three makers (maker works_in genre: two-hop paths)."""
    rng = np.random.default_rng(seed)
    data = root / "clusters"
    data.mkdir(parents=True)
    (root / "clusters.yaml").write_text(SCHEMA)
    cluster, maker = np.arange(n_items) % k, np.arange(n_items) % k * 3 + rng.integers(0, 3, n_items)
    _tsv(data / "users.tsv", ["user_id"], [[f"u{u}"] for u in range(n_users)])
    _tsv(data / "items.tsv", ["item_id"], [[f"i{i}"] for i in range(n_items)])
    _tsv(data / "entities.tsv", ["entity_id"], [[f"g{c}"] for c in range(k)] + [[f"m{j}"] for j in range(3 * k)])
    _tsv(data / "genres.tsv", ["item_id", "entity_id"], [[f"i{i}", f"g{cluster[i]}"] for i in range(n_items)])
    _tsv(data / "makers.tsv", ["item_id", "entity_id"], [[f"i{i}", f"m{maker[i]}"] for i in range(n_items)])
    _tsv(data / "kg.tsv", ["head", "relation", "tail"], [[f"m{j}", "works_in", f"g{j // 3}"] for j in range(3 * k)])
    rows, t = [], 1_700_000_000
    for u in range(n_users):
        n = int(rng.integers(8, 20))
        mine = rng.random(n) < 0.85
        picks = np.where(mine, rng.choice(np.flatnonzero(cluster == u % k), n), rng.integers(0, n_items, n))
        for i in dict.fromkeys(picks.tolist()):
            t += int(rng.integers(1, 5000))
            rows.append([f"u{u}", f"i{i}", t])
    _tsv(data / "clicks.tsv", ["user_id", "item_id", "ts"], rows)
    return root / "clusters.yaml", data, cluster


def _world(tmp_path_factory, kind: str):
    from kgrec.graphs import load_dataset

    root = tmp_path_factory.mktemp(kind)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGREC_CACHE_DIR", str(root / "cache"))
        if kind == "clusters":
            schema, data, cluster = _clusters(root)
            ds = load_dataset(schema, data_dir=data)
        else:  # the small_world fixture's world, with its held-out parts (8 items without training clicks)
            ds = load_dataset("synthetic", synthetic={"n_users": 100, "n_items": 40, "n_interactions": 300, "seed": 1})
            cluster = np.zeros(ds.num_items, np.int64)
    view, heldout = views(ds, make_split(ds, SplitConfig(seed=0)))
    rng = np.random.default_rng(1)
    text = (rng.normal(size=(6, 8))[cluster] + 0.5 * rng.normal(size=(view.num_items, 8))).astype(np.float32)
    return ModelContext(view, item_text=text), heldout


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return _world(tmp_path_factory, "clusters")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _world(tmp_path_factory, "small")


def _trained(setup, name: str, epochs: int = 20, **params):
    ctx, heldout = setup
    cfg = load_config(overrides={"train": {"epochs": epochs}, "model": {"name": name}})
    torch.manual_seed(0)
    model = create_model(name, ctx, params)
    fit(model, ctx, heldout, cfg, progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def kgrec(world):
    return _trained(world, "kgrec", dim=16)


@pytest.fixture(scope="module")
def small_kgrec(small):
    return _trained(small, "kgrec", epochs=3)


def _histories(ctx: ModelContext) -> list[np.ndarray]:
    """Each user's training items, oldest first (ties: the earlier row first, as the time channel)."""
    inter = ctx.dataset.interactions
    users, items, ts = inter.src.astype(np.int64), inter.dst.astype(np.int64), np.asarray(inter.timestamp, float)
    order = np.lexsort((-np.arange(len(ts)), -ts, users))
    return [items[order][users[order] == u][::-1] for u in range(ctx.num_users)]


def _appended(adj: sp.csr_matrix, degrees: np.ndarray, x: torch.Tensor, ego: np.ndarray, history: np.ndarray,
              layers: int) -> np.ndarray:
    """LightGCN's propagate over Â with one more node joined to ``history`` by the weights
    1/sqrt(|H| d_i) (the item degrees as trained; the items do not hear back from it)."""
    n, users = adj.shape[0], adj.shape[0] - len(degrees)
    items = np.unique(history)
    row = sp.csr_matrix((1.0 / np.sqrt(len(items) * degrees[items]), (np.zeros(len(items), int), users + items)),
                        shape=(1, n + 1))
    big = sp.vstack([sp.hstack([adj, sp.csr_matrix((n, 1))]), row]).tocsr()
    x = torch.cat([x, torch.from_numpy(np.asarray(ego, np.float32)).reshape(1, -1)])
    with torch.no_grad():
        return propagate(to_torch_csr(big), x, layers)[n].numpy()


def _ndcg(scores: np.ndarray, users: list[int], train: sp.csr_matrix, relevant: sp.csr_matrix) -> float:
    out = []
    for row, u in zip(scores, users):
        row = row.astype(np.float64).copy()
        row[train[u].indices] = -np.inf
        top, rel = np.argsort(-row, kind="stable")[:10], set(relevant[u].indices)
        out.append(sum(1 / np.log2(j + 2) for j, i in enumerate(top) if i in rel)
                   / sum(1 / np.log2(j + 2) for j in range(min(len(rel), 10))))
    return float(np.mean(out))


def _links(ctx: ModelContext, item: int) -> dict[str, list[int]]:
    ds = ctx.dataset
    return {et[1]: ds.edges[et].dst[ds.edges[et].src == item].astype(np.int64).tolist() for et in ds.edge_types()
            if et[0] == ds.schema.item_type and ds.origin[et].role in ("kg", "link")}


def test_a_warm_user_with_its_trained_ego_gets_its_embed_row(world, kgrec):
    fold = FoldIn.for_model(kgrec, world[0].dataset)
    with torch.no_grad():
        users, _ = kgrec.embed()
        ego = kgrec.egos()[0].numpy()
    assert fold.dim == users.shape[1] == 16 + kgrec.ii_item.shape[1] + len(kgrec.prior_weight)
    for u, history in enumerate(_histories(world[0])):
        np.testing.assert_allclose(fold.user_vector(history, ego=ego[u]), users[u].numpy(), rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("which", ["low-rank", "ease"])
def test_fold_in_is_the_appended_node_and_the_exact_item_item_and_prior_parts(world, kgrec, small, which):
    setup, model = (world, kgrec) if which == "low-rank" else (small, _trained(small, "kgrec", 2, item_item_dim=None))
    ctx = setup[0]
    fold = FoldIn.for_model(model, ctx.dataset)
    with torch.no_grad():
        users, _ = model.embed()
        x = torch.cat(model.egos())
        time_term = model.channels["time"].user(torch.zeros(model.num_users, model.ids.user_emb.embedding_dim))
    d, blend = model.ids.user_emb.embedding_dim, float(model.blend)
    checked = 0
    for u, history in enumerate(_histories(ctx)):
        if not len(history):
            continue
        v = fold.user_vector(history)
        np.testing.assert_allclose(v[d:], users[u, d:].numpy(), rtol=1e-5, atol=1e-6)  # item-item and priors
        np.testing.assert_allclose(fold.ego(history), time_term[u].numpy(), rtol=1e-5, atol=1e-7)
        z = _appended(model.adj_sp, ctx.item_counts, x, time_term[u].numpy(), history, model.layers)
        np.testing.assert_allclose(v[:d], blend * z, rtol=1e-4, atol=1e-6)
        checked += 1
    assert checked > 50 and float(model.ii_in.min()) > 0
    empty = fold.user_vector(np.zeros(0, np.int64))
    np.testing.assert_array_equal(empty, np.r_[np.zeros(fold.dim - len(model.prior_weight)), model.prior_weight])


def test_entry_weights_and_repeats(world, kgrec):
    fold = FoldIn.for_model(kgrec, world[0].dataset)
    history = _histories(world[0])[7]
    np.testing.assert_array_equal(fold.user_vector(history, np.ones(len(history))), fold.user_vector(history))
    d, end = 16, fold.dim - len(kgrec.prior_weight)
    doubled = fold.user_vector(history, np.full(len(history), 2.0))  # x and r are linear in the weights
    plain = fold.user_vector(history)
    np.testing.assert_allclose(doubled[d:end], 2 * plain[d:end], rtol=1e-5, atol=1e-6)
    again = np.r_[history, history[0]]  # a repeat: x stays binary, the recency weights follow the entries
    shift = fold.ego(again) - fold.ego(history)
    assert np.abs(shift).max() > 1e-3
    np.testing.assert_allclose(fold.user_vector(again)[:d] - plain[:d], float(kgrec.blend) * shift / (kgrec.layers + 1),
                               atol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        fold.user_vector(np.array([world[0].num_items]))
    with pytest.raises(ValueError, match="weights"):
        fold.user_vector(history, -np.ones(len(history)))
    with pytest.raises(ValueError, match="item indices"):
        fold.user_vector(np.array([0.5]))


def test_fold_in_users_rank_their_validation_items_nearly_as_well(world, kgrec):
    ctx, heldout = world
    users = [u for u in range(ctx.num_users) if heldout.valid[u].nnz]
    histories = _histories(ctx)
    popular = _ndcg(np.tile(ctx.item_counts.astype(float), (len(users), 1)), users, ctx.train, heldout.valid)
    blend = float(kgrec.blend)
    with torch.no_grad():
        trained, items = (t.numpy() for t in kgrec.embed())
        zu, zi = (t.numpy() for t in kgrec.gnn())
    try:  # the GNN part alone, whatever the blend chosen on validation
        kgrec.blend.fill_(1.0)
        gnn_only = FoldIn.for_model(kgrec)
        gnn = np.stack([gnn_only.user_vector(histories[u])[:16] for u in users])
    finally:
        kgrec.blend.fill_(blend)
    fold = FoldIn.for_model(kgrec, ctx.dataset)
    full = np.stack([fold.user_vector(histories[u]) for u in users])
    for ours, theirs in ((full @ items.T, trained[users] @ items.T), (gnn @ zi.T, zu[users] @ zi.T)):
        ours, theirs = (_ndcg(s, users, ctx.train, heldout.valid) for s in (ours, theirs))
        assert ours >= 0.8 * theirs and ours > 2 * popular, (ours, theirs, popular)


def test_new_item_with_a_cold_items_content_gets_its_vector(small, small_kgrec):
    ctx, model = small[0], small_kgrec
    cold = model.cold_items.numpy()
    assert len(cold) >= 4 and model.cold_op is not None and any("/" in p.name for p in model.kg.paths)
    fold = FoldIn.for_model(model, ctx.dataset)
    with torch.no_grad():
        items = model.embed()[1].numpy()
    for c in cold:
        np.testing.assert_allclose(fold.item_vector(ctx.item_text[c], _links(ctx, c)), items[c], rtol=1e-4, atol=1e-6)
    # a new item with a warm item's content: the regression of that content, itself its nearest neighbour
    blocks = [b.toarray() if sp.issparse(b) else b for ch in model.channels.values() for b in ch.item_content()]
    warm = model.warm_items.numpy()
    unit = [b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in blocks]
    j = int(warm[np.argmax(ctx.item_counts[warm])])
    pos, kern = nearest_warm(unit, np.array([j]), warm, 50)
    weights = local_ridge_weights(unit, warm[pos], kern, 1.0)
    with torch.no_grad():
        y = torch.cat([model.gnn()[1], model.ii_item], 1)[torch.from_numpy(warm)].numpy()
    expected = float(model.cold_scale) * weights[0] @ y[pos[0]]
    v = fold.item_vector(ctx.item_text[j], _links(ctx, j))
    np.testing.assert_allclose(v[: len(expected)], expected, rtol=1e-4, atol=1e-6)
    assert warm[pos[0, 0]] == j and weights[0, 0] == weights[0].max()
    cosine = v @ items[j] / np.linalg.norm(v) / np.linalg.norm(items[j])
    assert cosine > 0.5, cosine


def test_new_item_kg_rows_follow_from_one_hop_links(small, small_kgrec):
    ctx, kg = small[0], small_kgrec.kg
    with_hops, without = FoldIn.for_model(small_kgrec, ctx.dataset), FoldIn.for_model(small_kgrec)
    for i in range(ctx.num_items):
        rows = kg.new_item_rows(with_hops.new_item(links=_links(ctx, i)))
        plain = kg.new_item_rows(without.new_item(links={k: v for k, v in _links(ctx, i).items()
                                                        if k in [p.name for p in kg.paths]}))
        for path, (cols, vals), (cols0, _) in zip(kg.paths, rows, plain):
            row = path.matrix[i]
            np.testing.assert_array_equal(cols, row.indices)  # the path rows are sorted, values aligned
            np.testing.assert_allclose(vals, row.data, rtol=1e-12)
            assert ("/" in path.name and not len(cols0)) or np.array_equal(cols0, cols)
    two_hop = next(p for p in kg.paths if "/" in p.name)  # its targets given directly: 1/n each
    assert with_hops.link_relations()[two_hop.name] == (two_hop.target, two_hop.matrix.shape[1])
    given = kg.new_item_rows(with_hops.new_item(links={two_hop.name: [3, 1, 3], "has_topic": [0]}))
    np.testing.assert_array_equal(given[kg.paths.index(two_hop)][0], [1, 3])
    np.testing.assert_allclose(given[kg.paths.index(two_hop)][1], [0.5, 0.5])
    # only two-hop paths kept (as on MovieLens-100k): their first hop's links need the data set
    torch.manual_seed(0)
    model = create_model("kgrec", ctx, {"max_paths": 2})
    assert all("/" in p.name for p in model.kg.paths) and "has_topic" not in [p.name for p in model.kg.paths]
    with pytest.raises(ValueError, match="needs for_model"):
        FoldIn.for_model(model).item_vector(links={"has_topic": [0]})
    fold = FoldIn.for_model(model, ctx.dataset)
    assert fold.link_relations()["has_topic"][0] == "entity"
    for i in range(ctx.num_items):
        rows = model.kg.new_item_rows(fold.new_item(links={"has_topic": _links(ctx, i)["has_topic"]}))
        for path, (cols, vals) in zip(model.kg.paths, rows):
            np.testing.assert_array_equal(cols, path.matrix[i].indices)
            np.testing.assert_allclose(vals, path.matrix[i].data, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown link relation"):
        with_hops.item_vector(links={"nope": [0]})
    with pytest.raises(ValueError, match="out of range"):
        with_hops.item_vector(links={"has_genre": [10**6]})
    with pytest.raises(ValueError, match="text must be"):
        with_hops.item_vector(text=np.ones(3))


def test_without_the_regression_a_new_item_is_the_gnn_item_without_edges(small):
    ctx = small[0]
    torch.manual_seed(0)
    model = create_model("kgrec", ctx, {"cold_reg": 0.0}).eval()  # untrained: random weights everywhere
    with torch.no_grad():
        model.blend.fill_(0.7)
        items = model.embed()[1].numpy()
    fold = FoldIn.for_model(model, ctx.dataset)
    d = model.ids.user_emb.embedding_dim
    for c in np.flatnonzero(ctx.item_counts == 0):
        v = fold.item_vector(ctx.item_text[c], _links(ctx, c))
        np.testing.assert_allclose(v[:d], items[c, :d], rtol=1e-5, atol=1e-6)  # text gate, KG paths, time bucket
        assert not v[d:].any()  # an item-item row never fitted


def test_a_model_without_cold_items_calibrates_new_items_as_after_fit(small_kgrec, monkeypatch):
    expected = float(small_kgrec.cold_scale)
    monkeypatch.setattr(small_kgrec, "cold_op", None)
    fold = FoldIn.for_model(small_kgrec)
    assert fold.cold_scale == pytest.approx(expected, rel=1e-5) and expected != 1.0


def test_warm_content_regression_is_the_cold_map() -> None:
    rng = np.random.default_rng(0)
    content = [rng.normal(size=(60, 6)), sp.random(60, 15, density=0.3, random_state=0, format="csr")]
    warm = np.ones(60, bool)
    warm[[2, 9, 31, 44]] = False
    index = WarmContent(content, warm)
    for k in (5, 100):
        reg = ContentRegression.fit(content, warm, reg=0.5, k=k)
        assert (reg.reg, reg.k) == (0.5, k)
        cold = np.flatnonzero(~warm)
        pos, w = index.regression([content[0][cold], content[1][cold]], k, 0.5)
        rows = sp.csr_matrix((w.ravel(), pos.ravel(), np.arange(0, w.size + 1, w.shape[1])), shape=reg.cold_map.shape)
        np.testing.assert_allclose(rows.toarray(), reg.cold_map.toarray(), atol=1e-12)
    loo = index.leave_one_out(5, 0.5, sample=10)
    fitted = ContentRegression.fit(content, warm, reg=0.5, sample=10, k=5)
    np.testing.assert_array_equal(loo.loo_rows, fitted.loo_rows)
    np.testing.assert_allclose(loo.loo_map.toarray(), fitted.loo_map.toarray(), atol=1e-12)


def test_baselines_fold_in_as_their_embed(world):
    ctx = world[0]
    histories = _histories(ctx)
    for name in ("elsa", "ease", "itemknn", "text", "mostpop", "lightgcn"):
        model = _trained(world, name, epochs=3)
        fold = FoldIn.for_model(model)
        with torch.no_grad():
            users, items = (t.numpy() for t in model.embed())
        for u in (0, 5, 77):
            ego = model.emb.weight[u].detach().numpy() if name == "lightgcn" else None
            v = fold.user_vector(histories[u], ego=ego) if ego is not None else fold.user_vector(histories[u])
            np.testing.assert_allclose(v, users[u], rtol=1e-4, atol=1e-6, err_msg=name)
        if name == "lightgcn":  # zero ego: the appended node of LightGCN's own propagation
            with torch.no_grad():
                z = _appended(ctx.view.bipartite_adjacency(), ctx.item_counts, model.emb.weight,
                              np.zeros(model.emb.embedding_dim), histories[5], model.layers)
            np.testing.assert_allclose(fold.user_vector(histories[5]), z, rtol=1e-4, atol=1e-7)
        if name in ("elsa", "ease", "itemknn", "lightgcn"):
            with pytest.raises(NotSupported, match=name):
                fold.item_vector(text=ctx.item_text[0])
    assert FoldIn.for_model(model := _trained(world, "text", 1)).item_vector(ctx.item_text[3]) == pytest.approx(
        model.embed()[1][3].numpy())
    with pytest.raises(NotSupported, match="'bprmf'.*per user"):
        FoldIn.for_model(_trained(world, "bprmf", epochs=1))
