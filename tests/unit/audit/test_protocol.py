"""The explanation protocol (kgrec.models.base.Explainable): who declares it, what kgrec
declares, and that the audit reads a model through it alone."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kgrec.audit.explain import integrated_gradients, masked_score
from kgrec.audit.explain_check import run_explanations
from kgrec.audit.plan import ExplanationPlan
from kgrec.models.base import MODELS, Explainable, KGRelation, ModelContext, create_model
from kgrec.models.masks import EDGE_CHANNELS, EdgeMasks, ScalarChannel

AUDIT = Path(__file__).resolve().parents[3] / "kgrec" / "audit"


def names(kind: str, idx: int) -> str:
    return f"{kind}#{idx}"


# ----------------------------------------------------------------------------- who declares it
def test_kgrec_declares_the_protocol_and_the_baselines_do_not():
    import kgrec.models  # noqa: F401  (registers the built-in models)

    explainable = sorted(name for name, cls in MODELS.items() if issubclass(cls, Explainable))
    assert explainable == ["kgrec"]


class Toy(Explainable):
    """A linear score over declared inputs only: ``Σ a_h m_h + Σ b_e m_e + c m_text + d``;
    it has none of kgrec's attributes, so explanations can read nothing but the protocol."""

    history = np.array([0, 2, 5])
    a = torch.tensor([0.5, -1.0, 2.0])
    b = torch.tensor([0.25, 0.75])
    c, d = 1.5, 0.1

    @property
    def mask_channels(self):
        return ("history", "kg", "item_text")

    def scalar_channels(self):
        return (ScalarChannel("item_text", "item text", "the item's text"),)

    @property
    def sensitive_inputs(self):
        return frozenset()

    def kg_relations(self):
        return [KGRelation("has_genre", "entity", 1.0)]

    def history_items(self, user):
        return self.history

    def friend_row(self, user):  # pragma: no cover - "friends" is not declared
        raise AssertionError("friend_row read although 'friends' is not a mask channel")

    def kg_row(self, k, item):
        assert k == 0
        return torch.tensor([3, 4]), torch.tensor([0.5, 0.5])

    def pair_score(self, user, item, masks=None):
        m = masks or EdgeMasks(user, item)
        hist = m.history if m.history is not None else torch.ones(3)
        kg = m.kg[0] if m.kg and m.kg[0] is not None else torch.ones(2)
        text = m.scalar("item_text") if m.scalar("item_text") is not None else torch.tensor(1.0)
        assert m.friends is None and set(m.scalars) <= {"item_text"}
        return (self.a * hist).sum() + (self.b * kg).sum() + self.c * text + self.d


def test_explanations_need_nothing_but_the_protocol():
    ms = masked_score(Toy(), 0, 9, names)
    assert ms.labels == [("history", "item#0"), ("history", "item#2"), ("history", "item#5"),
                         ("kg", "has_genre → entity#3"), ("kg", "has_genre → entity#4"), ("item_text", "item text")]
    assert ms.history_columns.tolist() == [0, 1, 2]
    attr, full, base, delta, _ = integrated_gradients(ms, n_steps=8)
    np.testing.assert_allclose(attr, [0.5, -1.0, 2.0, 0.25, 0.75, 1.5], atol=1e-6)  # linear: exact
    assert full == pytest.approx(1.5 + 1.0 + 1.5 + 0.1) and base == pytest.approx(0.1) and abs(delta) < 1e-6


def test_a_model_without_the_protocol_is_not_explained(ctx):
    model = create_model("mostpop", ctx)
    assert not isinstance(model, Explainable)
    run = SimpleNamespace(model=model, config=SimpleNamespace(model=SimpleNamespace(name="mostpop")))
    audit = SimpleNamespace(run=run, plan=SimpleNamespace(explanations=ExplanationPlan(), seeds=[0]), timings={})
    res = run_explanations(audit, progress=False)
    assert not res.supported and "Explainable" in res.note and res.explanations == []


# ----------------------------------------------------------------------------- what kgrec declares
@pytest.fixture(scope="module")
def ctx(small_world) -> ModelContext:
    return small_world


@pytest.mark.parametrize(("params", "missing"), [
    ({}, set()),
    ({"use_kg": False}, {"kg"}),
    ({"use_social": False}, {"friends"}),
    ({"use_text": False}, {"item_text"}),
    ({"use_time": False}, {"user_time", "item_time"}),
    ({"channels": ["kg"]}, {"friends", "item_text", "user_attr", "user_time", "item_time"}),
])
def test_kgrec_declares_the_channels_it_has(ctx, params, missing):
    torch.manual_seed(0)
    model = create_model("kgrec", ctx, {"dim": 8, **params})
    channels = model.mask_channels
    edges = [c for c in channels if c in EDGE_CHANNELS]
    assert edges == [c for c in EDGE_CHANNELS if c in channels] and list(channels[: len(edges)]) == edges
    assert [c for c in channels if c not in EDGE_CHANNELS] == [s.name for s in model.scalar_channels()]
    assert {"history", "friends", "kg", "item_text", "user_attr", "user_time", "item_time"} - missing == set(channels)
    assert "user_text" not in channels  # the context has no user text
    relations = model.kg_relations()
    assert bool(relations) == ("kg" in channels)
    if relations:
        assert sum(r.weight for r in relations) == pytest.approx(1.0)
        assert len({r.name for r in relations}) == len(relations)
        cols, vals = model.kg_row(0, 0)
        assert cols.dtype == torch.int64 and vals.dtype == torch.float32


def test_kgrec_declares_sensitive_inputs_only_when_given_them(ctx):
    assert create_model("kgrec", ctx, {"dim": 8}).sensitive_inputs == frozenset()
    assert create_model("kgrec", ctx, {"dim": 8, "use_sensitive": True}).sensitive_inputs == {"group"}


def test_kgrec_pair_score_with_all_one_masks_is_its_score(ctx):
    torch.manual_seed(0)
    model = create_model("kgrec", ctx, {"dim": 8}).eval()
    ms = masked_score(model, 3, 7, names)
    with torch.no_grad():
        want = float(model.score(torch.tensor([3]), torch.tensor([7]))[0])
        assert float(ms.forward(torch.ones(1, len(ms.labels)))[0]) == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert {k for k, _ in ms.labels} == {"history", "friend", "kg", "item_text", "user_attr", "user_time", "item_time"}


# ----------------------------------------------------------------------------- the audit reads the protocol
#: what audit code may read of a recommender: the Recommender contract, torch's module API
#: and the Explainable protocol
ALLOWED = {"embed", "score", "full_scores", "num_users", "num_items", "state_dict", "load_state_dict", "eval",
           "mask_channels", "scalar_channels", "sensitive_inputs", "kg_relations", "history_items", "friend_row", "kg_row",
           "pair_score"}
#: modules whose ``model`` is DoWhy's CausalModel, not a recommender
DOWHY = {"causal"}


def model_reads(source: str) -> list[str]:
    """Attributes read of a recommender (a name ``model``, or ``<x>.model`` other than a
    config's) and of ``hasattr``/``getattr`` probes on one, outside :data:`ALLOWED`."""

    def is_model(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id == "model"
        return (isinstance(node, ast.Attribute) and node.attr == "model"
                and not (isinstance(node.value, ast.Attribute) and node.value.attr == "config"))

    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and is_model(node.value) and node.attr not in ALLOWED:
            bad.append(f"line {node.lineno}: .{node.attr}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                and node.args and is_model(node.args[0])):
            bad.append(f"line {node.lineno}: {node.func.id}")
    return bad


def test_the_guard_flags_private_undeclared_and_probed_attributes():
    src = ("def f(run, model):\n    a = model._sensitive_inputs\n    b = run.model.paths\n"
           "    c = hasattr(ctx.run.model, 'user_attr')\n    d = getattr(model, 'paths', None)\n"
           "    e = run.config.model.params\n    return model.history_items(0), run.model.full_scores(x)\n")
    assert model_reads(src) == ["line 2: ._sensitive_inputs", "line 3: .paths", "line 4: hasattr",
                                "line 5: getattr"]


@pytest.mark.parametrize("path", sorted(p for p in AUDIT.rglob("*.py") if p.parent.name not in DOWHY),
                         ids=lambda p: str(p.relative_to(AUDIT)))
def test_audit_code_reads_models_only_through_the_protocols(path):
    assert model_reads(path.read_text()) == []
