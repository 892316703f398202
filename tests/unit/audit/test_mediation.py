"""Mediation analysis (kgrec.audit.causal.mediation) on planted linear SEMs, its input checks, and
the mediation section on a planted synthetic world (kgrec.audit.mediation_check)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kgrec.audit.causal.mediation import _dowhy_point, _effects, mediation_effects
from kgrec.errors import DataError, SchemaError

REPO = Path(__file__).resolve().parents[3]
DELTA, A, B = 0.2, np.array([0.8, -0.5]), np.array([0.4, 0.3])   # NDE; T -> M_j; M_j -> Y
NIE = float(A @ B)                                                 # 0.17


def sem(n: int = 3000, seed: int = 0, a: np.ndarray = A, delta: float = DELTA) -> pd.DataFrame:
    """T binary and confounded by W; two mediators with correlated errors (a shared U, not a cause of Y);
    Y linear in T, M and W. NDE = delta, NIE = a . B, exactly."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(w - 0.4)))).astype(np.int64)
    u = 0.5 * rng.normal(size=n)
    m1 = a[0] * t + 0.6 * w + u + 0.5 * rng.normal(size=n)
    m2 = a[1] * t + 0.4 * w + 0.5 * u + 0.5 * rng.normal(size=n)
    y = delta * t + B[0] * m1 + B[1] * m2 + 0.7 * w + 0.5 * rng.normal(size=n)
    return pd.DataFrame({"t": t, "m1": m1, "m2": m2, "w": w, "y": y})


def run(df: pd.DataFrame, **kw):
    args = dict(treatment="t", mediators=["m1", "m2"], outcome="y", confounders=["w"], n_boot=200, n_simulations=5,
                seed=0)
    return mediation_effects(df, **{**args, **kw})


@pytest.fixture(scope="module")
def planted():
    return run(sem())


DRAWS = 10   # independent SEM draws; a 95% interval covers in >= 8 of 10 with probability 0.99


@pytest.fixture(scope="module")
def draws():
    kw = {"n_boot": 200, "n_simulations": 2}
    return ([run(sem(n=2000, seed=s), seed=s, **kw) for s in range(DRAWS)],
            [run(sem(n=2000, seed=s, a=np.zeros(2)), seed=s, **kw) for s in range(DRAWS)])


def unbiased(what: str, values: list[float], true: float) -> None:
    """The mean of independent estimates is within 3 standard errors (and 0.05) of the truth."""
    v = np.asarray(values)
    assert abs(v.mean() - true) <= min(3 * v.std(ddof=1) / np.sqrt(len(v)), 0.05), (what, v.mean(), true)


def test_recovers_planted_direct_and_indirect_effects(draws):
    planted = draws[0]
    truths = {"natural_direct_effect": DELTA, "natural_indirect_effect": NIE, "total_effect": DELTA + NIE}
    for key, true in truths.items():
        assert sum(getattr(e, key).covers(true) for e in planted) >= 8, key
        unbiased(key, [getattr(e, key).estimate for e in planted], true)
    for j, name in enumerate(["m1", "m2"]):
        assert sum(e.indirect_by_mediator[name].covers(A[j] * B[j]) for e in planted) >= 8
        unbiased(f"a_{name}", [e.first_stage[name] for e in planted], A[j])
        unbiased(f"b_{name}", [e.second_stage[name] for e in planted], B[j])


def test_zero_mediation_gives_zero_indirect_effect(draws):
    none = draws[1]
    assert sum(e.natural_indirect_effect.covers(0.0) for e in none) >= 8
    unbiased("nie", [e.natural_indirect_effect.estimate for e in none], 0.0)
    assert sum(e.natural_direct_effect.covers(DELTA) for e in none) >= 8
    assert max(abs(e.share_mediated.estimate) for e in none) < 0.3


def test_one_estimate(planted):
    e = planted
    assert e.share_mediated.estimate == pytest.approx(e.natural_indirect_effect.estimate / e.total_effect.estimate)
    assert e.share_mediated.ci_low <= e.share_mediated.estimate <= e.share_mediated.ci_high
    assert e.passed() and [r.name for r in e.refutations["natural_indirect_effect"]] == [
        "placebo_treatment_refuter", "random_common_cause", "data_subset_refuter"]
    assert e.n == 3000 and 0 < e.n_treated < 3000 and e.n_boot == 200


def test_decomposition_is_dowhys_and_adds_up(planted):
    """DoWhy's NIEs, NDE and total match the closed-form refit; TE = NDE + NIE; NDE is the
    coefficient of T in Y ~ 1 + T + M + W; the identified sets are the model's."""
    e, df = planted, sem()
    assert e.dowhy_agreement < 1e-10
    assert e.total_effect.estimate == pytest.approx(e.natural_direct_effect.estimate
                                                    + e.natural_indirect_effect.estimate, abs=1e-12)
    x = np.column_stack([np.ones(len(df)), df[["t", "m1", "m2", "w"]].to_numpy(float)])
    assert e.natural_direct_effect.estimate == pytest.approx(np.linalg.lstsq(x, df["y"], rcond=None)[0][1], abs=1e-10)
    assert e.adjustment_sets == {"first_stage:m1": ["w"], "second_stage:m1": ["m2", "t", "w"], "total": ["w"],
                                 "first_stage:m2": ["w"], "second_stage:m2": ["m1", "t", "w"]}
    assert set(e.identified_estimands) == {"nie:m1", "nie:m2", "nde:m1", "total"}


def test_bootstrap_replicate_is_dowhys_estimate_on_the_resample():
    """A bootstrap replicate (closed form) equals DoWhy's estimators refitted on the same resampled rows."""
    df = sem(n=600, seed=3)
    idx = np.random.default_rng(1).integers(0, len(df), len(df))
    boot = df.iloc[idx].reset_index(drop=True)
    dw = _dowhy_point(boot, "t", ["m1", "m2"], "y", ["w"])
    got = _effects(boot["t"].to_numpy(float), boot[["m1", "m2"]].to_numpy(), boot["y"].to_numpy(),
                   boot[["w"]].to_numpy())
    np.testing.assert_allclose(got, [dw["total"], dw["nde"], dw["nie"]["m1"], dw["nie"]["m2"]], atol=1e-10)


def test_ignoring_the_confounder_breaks_recovery():
    """The check can fail: without W in the adjustment the planted NDE and NIE are not recovered."""
    e = run(sem(), confounders=[])
    assert not e.natural_direct_effect.covers(DELTA) and not e.natural_indirect_effect.covers(NIE)


def test_placebo_refutation_fails_a_wrong_interval():
    """The refutation rules are the causal section's: a placebo effect larger than the CI half-width fails."""
    from kgrec.audit.causal.refutation import judge_refutation

    ok, detail = judge_refutation("placebo_treatment_refuter", estimate=0.2, new_effect=0.05, ci_low=0.18,
                                  ci_high=0.22)
    assert not ok and "outside" in detail


def test_deterministic_for_a_seed(planted):
    again = run(sem())
    assert again.to_dict() | {"seconds": 0} == planted.to_dict() | {"seconds": 0}
    other = run(sem(), seed=1)
    assert other.natural_direct_effect.ci_low != planted.natural_direct_effect.ci_low


def test_to_dict_is_plain(planted):
    import json

    d = planted.to_dict()
    json.dumps(d)
    assert d["passed"] is True and d["natural_indirect_effect"]["estimate"] == planted.natural_indirect_effect.estimate
    assert d["refutations"]["natural_direct_effect"][0]["name"] == "placebo_treatment_refuter"


@pytest.mark.parametrize("change, error, field", [
    (lambda d: d.drop(columns="m2"), DataError, "m2"),
    (lambda d: d.drop(columns="y"), DataError, "y"),
    (lambda d: d.assign(t=1), DataError, "t"),
    (lambda d: d.assign(t=d["t"] * 2), DataError, "t"),
    (lambda d: d.assign(m1=3.0), DataError, "m1"),
    (lambda d: d.assign(w=np.where(d.index == 5, np.nan, d["w"])), DataError, "w"),
    (lambda d: d.assign(m1="x"), DataError, "m1"),
])
def test_bad_data_names_the_column(change, error, field):
    with pytest.raises(error) as info:
        run(change(sem(n=200)))
    assert info.value.field == field


@pytest.mark.parametrize("kw, field", [
    ({"mediators": []}, "mediators"), ({"mediators": ["m1", "y"]}, "mediators"),
    ({"confounders": ["t"]}, "confounders"),
    ({"n_boot": 5}, "n_boot"), ({"n_simulations": 1}, "n_simulations"), ({"ci_level": 1.0}, "ci_level"),
    ({"subset_fraction": 1.0}, "subset_fraction"),
])
def test_bad_arguments_name_the_field(kw, field):
    with pytest.raises(SchemaError) as info:
        run(sem(n=200), **kw)
    assert info.value.field == field


def test_dowhy_refuters_do_not_reach_its_mediation_estimator():
    """Why the refutations are run here: DoWhy 0.14's refute_estimate raises on a mediation estimand.
    When a DoWhy upgrade makes this pass, its refuters may be usable directly (see the module docstring)."""
    from dowhy import CausalModel
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator
    from dowhy.causal_identifier import EstimandType

    from kgrec.audit.causal.mediation import mediation_graph

    df = sem(n=300)
    model = CausalModel(data=df, treatment="t", outcome="y",
                        graph=mediation_graph(treatment="t", mediator="m1", outcome="y", other_mediators=["m2"],
                                              confounders=["w"]))
    estimand = model.identify_effect(estimand_type=EstimandType.NONPARAMETRIC_NIE, method_name="minimal-adjustment")
    est = model.estimate_effect(estimand, method_name="mediation.two_stage_regression", effect_modifiers=[],
                                method_params={"first_stage_model": LinearRegressionEstimator,
                                               "second_stage_model": LinearRegressionEstimator})
    with pytest.raises(KeyError):
        model.refute_estimate(estimand, est, method_name="placebo_treatment_refuter", placebo_type="permute",
                              num_simulations=2)


# --- the check and section on a planted synthetic world ---------------------------------------------------------

WORLD = dict(n_users=3000, n_items=600, n_interactions=45000, activity_on_sensitive=-0.5, mediation_direct=-0.03)


@pytest.fixture(scope="module")
def world_ctx(tmp_path_factory):
    """An AuditContext on a planted world without a trained model: the test users are every user with an
    interaction, their 'NDCG' a planted outcome plus noise (the check only reads per-user values)."""
    from types import SimpleNamespace

    from kgrec.audit.context import AuditContext
    from kgrec.audit.plan import load_plan
    from kgrec.graphs import load_dataset
    from kgrec.graphs.synthetic import generate_world

    out = tmp_path_factory.mktemp("planted") / "w"
    truth = generate_world(out, seed=0, **WORLD)
    ds = load_dataset(REPO / "graphs" / "synthetic.yaml", data_dir=out)
    inter = ds.interactions
    train = sp.csr_matrix((np.ones(len(inter.src)), (inter.src, inter.dst)), shape=(ds.num_users, ds.num_items))
    users = np.flatnonzero(np.diff(train.indptr) > 0)
    ndcg = np.random.default_rng(0).uniform(0, 0.6, len(users))
    run_ = SimpleNamespace(dataset=ds, ctx=SimpleNamespace(train=train))
    plan = load_plan(REPO / "audit" / "synthetic.yaml")
    ctx = AuditContext(run_, plan, users, np.zeros((len(users), plan.k), np.int64), sp.csr_matrix((len(users), 1)),
                       {f"ndcg@{plan.k}": ndcg}, {})
    return ctx, truth


def test_run_mediation_recovers_the_planted_effect_and_renders(world_ctx):
    from kgrec.audit.mediation_check import mediation_section, run_mediation

    ctx, truth = world_ctx
    res = run_mediation(ctx)
    assert ctx.timings["mediation"] > 0
    assert [a.attribute for a in res.attributes] == ["group", "age"] and all(a.estimate for a in res.attributes)
    by = {r["planted"]: r for r in res.truth}
    assert set(by) == {"natural_direct_effect", "natural_indirect_effect", "total_effect"}
    assert by["natural_direct_effect"]["true"] == -0.03
    assert by["natural_indirect_effect"]["true"] == truth["mediation"]["natural_indirect_effect"]
    assert all(r["recovered"] for r in res.truth), res.truth
    sec = mediation_section(ctx, res)
    assert sec.key == "mediation" and not sec.gates
    captions = [t.caption for t in sec.tables]
    assert any(c.startswith("Planted effect recovered") for c in captions)
    assert any("runs through activity and history composition" in p for p in sec.paragraphs)
    assert sec.data["truth"] == res.truth


def test_planted_check_fails_when_the_mediators_differ(world_ctx, tmp_path):
    """The planted mediators are recomputed from the loaded interactions; a data set that lost
    interactions is caught, not silently compared."""
    import shutil

    from kgrec.audit.mediation_check import planted_frame

    ctx, truth = world_ctx
    src = Path(ctx.run.dataset.location.directory)
    shutil.copytree(src, tmp_path / "w")
    lines = (tmp_path / "w" / "interactions.tsv").read_text().splitlines(keepends=True)
    (tmp_path / "w" / "interactions.tsv").write_text("".join(lines[:1] + lines[11:]))
    from kgrec.graphs import load_dataset

    ds = load_dataset(REPO / "graphs" / "synthetic.yaml", data_dir=tmp_path / "w")
    with pytest.raises(DataError) as info:
        planted_frame(ds, truth, sensitive=["group", "age"])
    assert info.value.field in ("activity", "history_popularity")


def test_lowest_group_ignores_small_groups():
    from kgrec.audit.mediation_check import lowest_group

    labels = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 5 + [None] * 3, dtype=object)
    values = np.r_[np.full(40, 0.3), np.full(40, 0.2), np.full(5, 0.0), np.full(3, -1.0)]
    group, groups = lowest_group(labels, values, 30)
    assert group == "b" and groups["c"] == {"n": 5, "mean": 0.0} and set(groups) == {"a", "b", "c"}
    assert lowest_group(labels, values, 100)[0] == "c"   # none is that large: all groups count
    with pytest.raises(DataError):
        lowest_group(np.array(["a", None], dtype=object), np.zeros(2), 1)


def test_benchmark_one_small_seed(tmp_path):
    spec = importlib.util.spec_from_file_location("mediation_synthetic", REPO / "benchmarks" / "mediation_synthetic.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.check_seed(0, out_dir=tmp_path / "w", users=3000, items=600, interactions=45000, direct=-0.03,
                           activity_shift=-0.5)
    text = bench.table(res)
    assert "| natural_direct_effect | -0.03000 |" in text and text.count("| yes |") >= 2
    assert "CI covers the truth 1/1" in bench.summary([res])
