"""Off-policy evaluation: a target policy's value estimated from logged bandit feedback.

Logged data: rows ``i = 1..n`` with context ``x_i``, the logged action ``a_i`` drawn by the
logging policy ``π_0``, its propensity ``π_0(a_i|x_i)`` and the observed reward ``r_i``.
The value of a target policy ``π_t`` is ``V(π_t) = E_x Σ_a π_t(a|x) E[r | x, a]``.

Importance weights ``w_i = π_t(a_i|x_i) / π_0(a_i|x_i)``, clipped from above at ``clip`` when
it is given (``w_i ← min(w_i, clip)``; this trades variance for a downward bias when rewards are
non-negative). The estimators (Horvitz-Thompson / Dudík et al. 2011 / Swaminathan & Joachims 2015):

* IPS   ``V̂ = (1/n) Σ_i w_i r_i`` (unbiased without clipping when ``π_0 > 0`` wherever ``π_t > 0``);
* SNIPS ``V̂ = Σ_i w_i r_i / Σ_i w_i`` (self-normalised: biased, consistent, bounded by the rewards);
* DR    ``V̂ = (1/n) Σ_i [ q̂_π(x_i) + w_i (r_i − q̂(x_i, a_i)) ]`` with a reward model ``q̂`` given as
  the pair ``(q̂(x_i, a_i), q̂_π(x_i) = Σ_a π_t(a|x_i) q̂(x_i, a))``; unbiased if either the
  weights or the model are right, and lower-variance than IPS when ``q̂`` is good.

Effective sample size ``ESS = (Σ w_i)² / Σ w_i²`` (Kish): ``n`` when all weights are equal,
small when a few rows carry the estimate.

Confidence intervals: a nonparametric bootstrap over rows (``n_boot`` resamples of the ``n``
rows with replacement, the same resampling scheme for every estimator), percentile intervals,
computed with :func:`scipy.stats.bootstrap`. Why not a normal approximation for IPS/DR: with
rare rewards (click rates ~0.5%) and heavy-tailed weights the per-row terms are mostly 0 with a
few large values, so the sampling distribution of the mean is right-skewed; a symmetric
``mean ± z·se`` interval then undercovers on the right and can cross below 0, while the
percentile interval follows the skew and stays inside the range of attainable values. SNIPS is
a ratio, which needs the bootstrap (or the delta method) anyway; using one method for all three
keeps their widths comparable. The percentile bootstrap still undercovers when the ESS is
tiny: report the ESS next to the interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ESTIMATORS = ("ips", "snips", "dr")


class _DefaultEstimators(tuple):
    """The default ``estimators``: tells "not given" (DR dropped without a model) from explicit."""


_DEFAULT_ESTIMATORS = _DefaultEstimators(ESTIMATORS)


@dataclass(frozen=True)
class OPEEstimate:
    """One estimator's value of the target policy, with its bootstrap CI.

    ``ess`` is ``(Σw)²/Σw²`` of the (clipped) weights; ``clipped`` counts rows whose raw weight
    exceeded ``clip`` (0 when ``clip`` is None).
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    ci_level: float
    ess: float
    n: int
    clip: float | None
    clipped: int

    @property
    def ci_width(self) -> float:
        return self.ci_high - self.ci_low

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out["ci_width"] = self.ci_width
        return out


def _vector(name: str, value: object, n: int | None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a 1-D array of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} rows, reward has {n}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name}: must be finite (row {bad} is {arr[bad]})")
    return arr


def _check_propensity(name: str, p: np.ndarray, *, allow_zero: bool) -> None:
    low_ok = p >= 0 if allow_zero else p > 0
    bad = np.flatnonzero(~(low_ok & (p <= 1)))
    if bad.size:
        rng = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name}: must lie in {rng} ({bad.size} row(s) do not; row {int(bad[0])} is "
                         f"{p[bad[0]]})")


def importance_weights(*, logging_propensity: np.ndarray, target_propensity: np.ndarray,
                       clip: float | None = None) -> tuple[np.ndarray, int]:
    """``(w, clipped)``: ``w_i = min(π_t/π_0, clip)`` and the number of rows clipped. No validation."""
    w = np.asarray(target_propensity, dtype=float) / np.asarray(logging_propensity, dtype=float)
    if clip is None:
        return w, 0
    clipped = int(np.count_nonzero(w > clip))
    return np.minimum(w, clip), clipped


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's ``(Σw)²/Σw²`` (0 when every weight is 0)."""
    sq = float(np.dot(w, w))
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def _mean(t: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(t, axis=axis)


def _ratio(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    s_num, s_den = np.sum(num, axis=axis), np.sum(den, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s_den > 0, s_num / np.where(s_den > 0, s_den, 1.0), 0.0)


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (:meth:`scipy.stats.binomtest.proportion_ci`):
    the logging policy's observed click rate, which stays well covered near 0 where Wald does not."""
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _percentile_ci(data: tuple[np.ndarray, ...], statistic, *, ci_level: float, n_boot: int,
                   seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    res = bootstrap(data, statistic, n_resamples=n_boot, batch=min(n_boot, 200), vectorized=True,
                    paired=len(data) > 1, confidence_level=ci_level, method="percentile",
                    rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def off_policy_value(*, reward: np.ndarray, logging_propensity: np.ndarray, target_propensity: np.ndarray,
                     reward_model: tuple[np.ndarray, np.ndarray] | None = None, clip: float | None = None,
                     ci_level: float = 0.95, n_boot: int = 1000, seed: int = 0,
                     estimators: Sequence[str] = _DEFAULT_ESTIMATORS,
                     groups: np.ndarray | None = None) -> list[OPEEstimate]:
    """Estimate ``V(π_t)`` by IPS, SNIPS and/or DR (see the module docstring for the math and CIs).

    Arguments (all shape ``(n,)``, ``n ≥ 2``, finite):

    * ``reward``: ``r_i``, the logged reward of the logged action;
    * ``logging_propensity``: ``π_0(a_i|x_i)`` in ``(0, 1]``;
    * ``target_propensity``: ``π_t(a_i|x_i)`` in ``[0, 1]`` (0 is allowed: the target never
      takes that action there, weight 0);
    * ``reward_model``: ``(q̂(x_i, a_i), Σ_a π_t(a|x_i) q̂(x_i, a))`` for DR; fit it on other
      rows (cross-fitting) or DR's variance/bias claims do not hold;
    * ``clip``: upper bound on the weights (``> 0``), or None for none;
    * ``ci_level``, ``n_boot``, ``seed``: the percentile bootstrap (same seed ⇒ same resamples
      for every estimator);
    * ``estimators``: any of ``"ips"``, ``"snips"``, ``"dr"``, in the order wanted. With the
      default, ``"dr"`` is left out when ``reward_model`` is None; asking for ``"dr"``
      explicitly without a reward model is an error.
    * ``groups``: optional cluster label per row (e.g. the request a slot belongs to). Rows of
      one group share a user and a list, so they are not independent: the bootstrap then
      resamples whole groups (each estimate is a ratio of group sums), which widens the CIs to
      what the correlation asks for. The estimates themselves do not change.

    Returns one :class:`OPEEstimate` per estimator, in the order asked. Raises ``ValueError``
    naming the argument for bad input.
    """
    r = _vector("reward", reward, None)
    n = r.shape[0]
    if n < 2:
        raise ValueError(f"reward: need at least 2 rows, got {n}")
    p0 = _vector("logging_propensity", logging_propensity, n)
    pt = _vector("target_propensity", target_propensity, n)
    _check_propensity("logging_propensity", p0, allow_zero=False)
    _check_propensity("target_propensity", pt, allow_zero=True)
    if clip is not None and not (np.isfinite(clip) and clip > 0):
        raise ValueError(f"clip: must be a positive number or None, got {clip!r}")
    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level: must lie in (0, 1), got {ci_level!r}")
    if int(n_boot) != n_boot or n_boot < 10:
        raise ValueError(f"n_boot: must be an integer ≥ 10, got {n_boot!r}")
    names = list(estimators)
    unknown = [e for e in names if e not in ESTIMATORS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"estimators: must be distinct names from {ESTIMATORS}, got {names}")
    if reward_model is None and "dr" in names:
        if isinstance(estimators, _DefaultEstimators):
            names.remove("dr")
        else:
            raise ValueError("reward_model: estimator 'dr' needs reward_model=(q_logged, q_target)")
    if reward_model is not None:
        if not isinstance(reward_model, (tuple, list)) or len(reward_model) != 2:
            raise ValueError("reward_model: must be a pair (q_logged, q_target) of arrays")
        q_logged = _vector("reward_model[0]", reward_model[0], n)
        q_target = _vector("reward_model[1]", reward_model[1], n)

    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups: must have shape ({n},), got {g.shape}")
        codes = np.unique(g, return_inverse=True)[1].ravel()
        if codes.max() < 1:
            raise ValueError("groups: need at least 2 groups to resample")

    def resampled(num: np.ndarray, den: np.ndarray | None) -> tuple[tuple[np.ndarray, ...], Any]:
        """The bootstrap's data and statistic for sum(num) / sum(den) (den None: a mean)."""
        if groups is None:
            return ((num,), _mean) if den is None else ((num, den), _ratio)
        total = np.bincount(codes, weights=num)
        return (total, np.bincount(codes).astype(float) if den is None else np.bincount(codes, weights=den)), _ratio

    w, clipped = importance_weights(logging_propensity=p0, target_propensity=pt, clip=clip)
    ess = effective_sample_size(w)
    wr = w * r
    out: list[OPEEstimate] = []
    for name in names:
        if name == "ips":
            value, (data, stat) = float(wr.mean()), resampled(wr, None)
        elif name == "snips":
            if not w.sum() > 0:
                raise ValueError("target_propensity: is 0 on every logged row, so SNIPS is undefined")
            value, (data, stat) = float(_ratio(wr, w)), resampled(wr, w)
        else:
            terms = q_target + w * (r - q_logged)
            value, (data, stat) = float(terms.mean()), resampled(terms, None)
        low, high = _percentile_ci(data, stat, ci_level=ci_level, n_boot=int(n_boot), seed=seed)
        out.append(OPEEstimate(name=name, value=value, ci_low=low, ci_high=high, ci_level=ci_level, ess=ess,
                               n=n, clip=clip, clipped=clipped))
    return out
