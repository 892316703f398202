"""Explanations: edge masks reproduce the score, IG completeness, faithfulness, KG paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.audit.explain import faithfulness, integrated_gradients, kg_graph, masked_score, path_sentences


def names(kind: str, idx: int) -> str:
    return f"{kind}#{idx}"


def test_all_ones_masks_reproduce_the_trained_score_and_zeros_change_it(trained):
    _, ctx, model = trained
    user, item = 3, 7
    ms = masked_score(model, user, item, names)
    with torch.no_grad():
        users, items = model.embed()
        full = float(users[user] @ items[item])
        masked = ms.forward(torch.ones(2, len(ms.labels)))
        zero = ms.forward(torch.zeros(1, len(ms.labels)))
    assert masked.tolist() == pytest.approx([full, full], rel=1e-5, abs=1e-6)
    assert abs(float(zero[0]) - full) > 1e-4
    kinds = {k for k, _ in ms.labels}
    assert {"history", "friend", "kg", "item_text"} <= kinds


def test_integrated_gradients_completeness_within_one_percent(trained):
    _, _, model = trained
    for user, item in ((0, 1), (5, 40)):
        ms = masked_score(model, user, item, names)
        attr, full, base, delta, steps = integrated_gradients(ms, n_steps=16, max_delta=0.01)
        assert abs(attr.sum() - (full - base)) <= 0.01 * abs(full - base) + 1e-6
        assert abs(delta) <= 0.01 * abs(full - base) + 1e-6
        assert steps >= 16


def test_removing_one_history_edge_matches_its_mask(trained):
    _, ctx, model = trained
    user, item = 2, 11
    ms = masked_score(model, user, item, names)
    m = torch.ones(1, len(ms.labels))
    col = int(ms.history_columns[0])
    m[0, col] = 0.0
    with torch.no_grad():
        dropped = float(ms.forward(m)[0])
        full = float(ms.forward(torch.ones(1, len(ms.labels)))[0])
    assert dropped != pytest.approx(full, abs=1e-7)


def test_faithfulness_compares_top_and_random_removals(trained):
    _, _, model = trained
    ms = masked_score(model, 1, 9, names)
    attr, *_ = integrated_gradients(ms, n_steps=16)
    top, rand = faithfulness(ms, attr, k=2, rng=np.random.default_rng(0))
    if len(ms.history_columns) > 2:
        assert top is not None and rand is not None


def test_kg_paths_read_as_sentences(trained):
    ds, ctx, model = trained
    g = kg_graph(ds)
    item_type = ds.schema.item_type
    found = []
    for user in range(20):
        hist = model.history_items(user)
        for item in range(ctx.num_items):
            found += path_sentences(g, hist, item, item_type, names, limit=1)
        if found:
            break
    assert found and found[0].startswith("You interacted with item#")
