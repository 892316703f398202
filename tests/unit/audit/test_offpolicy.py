"""IPS / SNIPS / DR on a context-free bandit with known click probabilities (planted truth)."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.audit.offpolicy import OPEEstimate, off_policy_value

MU = np.array([0.10, 0.20, 0.30, 0.40, 0.50])  # click probability of each arm
PI_0 = np.array([0.40, 0.30, 0.15, 0.10, 0.05])  # logging policy: favours the bad arms
PI_T = np.array([0.05, 0.10, 0.15, 0.30, 0.40])  # target policy: favours the good arms
TRUE_VALUE = float(PI_T @ MU)  # 0.355
ON_POLICY_VALUE = float(PI_0 @ MU)


def simulate(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    action = rng.choice(len(MU), size=n, p=PI_0)
    reward = (rng.random(n) < MU[action]).astype(float)
    return {"action": action, "reward": reward, "logging_propensity": PI_0[action],
            "target_propensity": PI_T[action]}


def perfect_model(action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return MU[action], np.full(action.shape, TRUE_VALUE)


def estimate(log: dict[str, np.ndarray], **kw) -> dict[str, OPEEstimate]:
    args = {k: log[k] for k in ("reward", "logging_propensity", "target_propensity")}
    return {e.name: e for e in off_policy_value(**args, **kw)}


def test_values_match_a_row_by_row_reference() -> None:
    log = simulate(400, np.random.default_rng(1))
    q_logged, q_target = MU[log["action"]] * 0.9, np.full(400, 0.3)  # an imperfect model
    est = estimate(log, reward_model=(q_logged, q_target), n_boot=50)
    ips = snips_num = snips_den = dr = sq = 0.0
    for i in range(400):
        w = log["target_propensity"][i] / log["logging_propensity"][i]
        ips += w * log["reward"][i] / 400
        snips_num, snips_den, sq = snips_num + w * log["reward"][i], snips_den + w, sq + w * w
        dr += (q_target[i] + w * (log["reward"][i] - q_logged[i])) / 400
    assert est["ips"].value == pytest.approx(ips, rel=1e-12)
    assert est["snips"].value == pytest.approx(snips_num / snips_den, rel=1e-12)
    assert est["dr"].value == pytest.approx(dr, rel=1e-12)
    assert est["ips"].ess == pytest.approx(snips_den**2 / sq, rel=1e-12)
    for e in est.values():
        assert e.ci_low <= e.value <= e.ci_high and e.n == 400 and e.clipped == 0 and e.clip is None


def test_bootstrap_intervals_cover_the_true_value_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(2)
    reps, n = 120, 800
    hits = {"ips": 0, "snips": 0, "dr": 0}
    values: dict[str, list[float]] = {k: [] for k in hits}
    widths: dict[str, list[float]] = {k: [] for k in hits}
    for rep in range(reps):
        log = simulate(n, rng)
        for name, e in estimate(log, reward_model=perfect_model(log["action"]), n_boot=200, seed=rep).items():
            hits[name] += e.ci_low <= TRUE_VALUE <= e.ci_high
            values[name].append(e.value)
            widths[name].append(e.ci_high - e.ci_low)
    for name, hit in hits.items():
        coverage = hit / reps
        assert 0.88 <= coverage <= 0.99, (name, coverage)
        # unbiased (IPS, DR) or nearly (SNIPS): the mean over replications is near the truth
        assert abs(np.mean(values[name]) - TRUE_VALUE) < 3 * np.std(values[name]) / np.sqrt(reps) + 1e-3
        # the bootstrap width matches the width implied by the estimator's spread across replications
        ratio = np.mean(widths[name]) / (2 * 1.96 * np.std(values[name], ddof=1))
        assert 0.8 <= ratio <= 1.25, (name, ratio)


def test_snips_on_policy_is_the_sample_mean_and_ess_is_n() -> None:
    log = simulate(1000, np.random.default_rng(3))
    log["target_propensity"] = log["logging_propensity"]
    est = estimate(log, n_boot=50)
    assert est["snips"].value == pytest.approx(log["reward"].mean(), rel=1e-13, abs=0)
    assert est["ips"].value == pytest.approx(log["reward"].mean(), rel=1e-13, abs=0)
    assert est["snips"].ess == pytest.approx(1000, rel=1e-12)
    assert log["reward"].mean() == pytest.approx(ON_POLICY_VALUE, abs=0.05)


def test_ess_of_equal_weights_is_n_and_of_one_weight_is_one() -> None:
    log = simulate(500, np.random.default_rng(4))
    log["target_propensity"] = 0.5 * log["logging_propensity"]  # every weight 0.5
    assert estimate(log, n_boot=50)["ips"].ess == pytest.approx(500, rel=1e-12)
    log["target_propensity"] = np.where(np.arange(500) == 7, 0.5, 0.0)
    assert estimate(log, n_boot=50, estimators=("ips",))["ips"].ess == pytest.approx(1.0)


def test_clipping_counts_rows_and_caps_weights() -> None:
    log = simulate(2000, np.random.default_rng(5))
    raw = log["target_propensity"] / log["logging_propensity"]  # 0.125 .. 8
    est = estimate(log, clip=2.0, n_boot=50)
    assert est["ips"].clipped == int((raw > 2.0).sum()) > 0 and est["ips"].clip == 2.0
    assert est["snips"].clipped == est["ips"].clipped
    assert est["ips"].value == pytest.approx(float(np.mean(np.minimum(raw, 2.0) * log["reward"])), rel=1e-12)
    assert est["ips"].value < estimate(log, n_boot=50)["ips"].value  # clipping biases IPS down here
    assert estimate(log, clip=100.0, n_boot=50)["ips"].clipped == 0


def test_dr_with_a_perfect_reward_model_has_lower_variance_than_ips() -> None:
    rng = np.random.default_rng(6)
    ips, dr, ips_w, dr_w = [], [], [], []
    for rep in range(60):
        log = simulate(500, rng)
        est = estimate(log, reward_model=perfect_model(log["action"]), n_boot=100, seed=rep)
        ips.append(est["ips"].value)
        dr.append(est["dr"].value)
        ips_w.append(est["ips"].ci_high - est["ips"].ci_low)
        dr_w.append(est["dr"].ci_high - est["dr"].ci_low)
    assert np.var(dr) < 0.8 * np.var(ips)
    assert np.mean(dr_w) < 0.9 * np.mean(ips_w)


def test_same_seed_same_interval_and_to_dict() -> None:
    log = simulate(300, np.random.default_rng(7))
    a, b = estimate(log, n_boot=100, seed=3), estimate(log, n_boot=100, seed=3)
    assert a["snips"] == b["snips"]
    d = a["ips"].to_dict()
    assert d["name"] == "ips" and d["ci_width"] == pytest.approx(d["ci_high"] - d["ci_low"])
    assert set(d) >= {"value", "ci_low", "ci_high", "ci_level", "ess", "n", "clip", "clipped"}


def test_default_estimators_leave_out_dr_without_a_model() -> None:
    log = simulate(100, np.random.default_rng(8))
    assert list(estimate(log, n_boot=20)) == ["ips", "snips"]
    assert list(estimate(log, n_boot=20, estimators=("dr", "ips"),
                         reward_model=perfect_model(log["action"]))) == ["dr", "ips"]


@pytest.mark.parametrize(("change", "match"), [
    ({"reward": np.ones(99)}, "logging_propensity: has 100 rows"),
    ({"reward": np.full(100, np.nan)}, "reward: must be finite"),
    ({"reward": np.ones((100, 1))}, "reward: must be 1-D"),
    ({"reward": np.ones(1), "logging_propensity": np.ones(1), "target_propensity": np.ones(1)}, "at least 2"),
    ({"logging_propensity": np.zeros(100)}, r"logging_propensity: must lie in \(0, 1\]"),
    ({"logging_propensity": np.full(100, 1.5)}, "logging_propensity: must lie in"),
    ({"target_propensity": np.full(100, -0.1)}, r"target_propensity: must lie in \[0, 1\]"),
    ({"target_propensity": np.zeros(100), "estimators": ("snips",)}, "SNIPS is undefined"),
    ({"clip": 0.0}, "clip: must be a positive"),
    ({"ci_level": 1.0}, "ci_level"),
    ({"n_boot": 5}, "n_boot"),
    ({"estimators": ("ips", "switch")}, "estimators"),
    ({"estimators": ("dr",)}, "reward_model: estimator 'dr' needs"),
    ({"reward_model": (np.zeros(100),)}, "reward_model: must be a pair"),
    ({"reward_model": (np.zeros(100), np.zeros(50))}, r"reward_model\[1\]: has 50 rows"),
])
def test_bad_input_names_the_argument(change: dict, match: str) -> None:
    log = simulate(100, np.random.default_rng(9))
    args = {"reward": log["reward"], "logging_propensity": log["logging_propensity"],
            "target_propensity": log["target_propensity"], "n_boot": 20, **change}
    with pytest.raises(ValueError, match=match):
        off_policy_value(**args)


def test_grouped_bootstrap_covers_when_rows_of_a_request_are_correlated() -> None:
    """Slots of one request share a user: here a click multiplier of 0 or 2 per group of 20
    rows (the truth is unchanged, E[m] = 1). Resampling rows ignores that and is too narrow;
    resampling groups covers at about the nominal rate and gives the same point estimates."""
    rng = np.random.default_rng(3)
    reps, groups, size = 120, 40, 20
    hits = {"rows": 0, "groups": 0}
    for rep in range(reps):
        n = groups * size
        action = rng.choice(len(MU), size=n, p=PI_0)
        mult = np.repeat(rng.choice([0.0, 2.0], size=groups), size)
        reward = (rng.random(n) < MU[action] * mult).astype(float)
        args = {"reward": reward, "logging_propensity": PI_0[action], "target_propensity": PI_T[action],
                "n_boot": 200, "seed": rep, "estimators": ["ips"]}
        [by_row] = off_policy_value(**args)
        [by_group] = off_policy_value(**args, groups=np.repeat(np.arange(groups), size))
        assert by_group.value == by_row.value
        hits["rows"] += by_row.ci_low <= TRUE_VALUE <= by_row.ci_high
        hits["groups"] += by_group.ci_low <= TRUE_VALUE <= by_group.ci_high
    assert 0.88 <= hits["groups"] / reps <= 0.99, hits
    assert hits["rows"] / reps < 0.85, hits  # the row bootstrap undercovers
