r"""Logging policies: which ranked list is shown, and with what probability.

Off-policy evaluation from the served logs (:mod:`kgrec.audit.offpolicy`) needs, for every
shown item, the probability that the logging policy would put that item at that position,
its *marginal propensity* ``π₀(a at k | x)``. Both policies here have it in closed form, so
the log holds exact propensities, not estimates.

Given the model's candidates ``c_1, …, c_M`` (its top ``M`` for the request, best first,
seen items excluded) and the list length ``K ≤ M``:

* ``deterministic``: show ``c_1..c_K``; every propensity is 1. Off-policy estimates then
  need another source of randomness (a target policy that differs from this one has no
  support), which the audit says.
* ``epsilon`` (ε-greedy over lists): with probability ``1 − ε`` show ``c_1..c_K``; with
  probability ``ε`` show a uniformly random ordered ``K``-subset of the ``M`` candidates.
  Under the uniform part every candidate is at each position with probability ``1/M``, so

  .. math::
      π₀(c_j \text{ at } k) = (1 − ε)\,[j = k] + ε / M,

  which is ``> 0`` for every candidate and position (``ε > 0``). ``M`` (``candidates``)
  sets the support: a target policy is evaluated without bias only on items inside the
  logging policy's top ``M``.

Every random draw takes the caller's :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kgrec.serve.checks import is_int

POLICIES = ("epsilon", "deterministic")


@dataclass(frozen=True)
class PolicyConfig:
    """``name`` (:data:`POLICIES`, default ``epsilon``), ``epsilon`` (default 0.1, in (0, 1]
    for ``epsilon``) and ``candidates`` ``M`` (default 50; raised to ``K`` when a request asks
    for more)."""

    name: str = "epsilon"
    epsilon: float = 0.1
    candidates: int = 50

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.name!r}")
        if self.name == "epsilon" and not 0.0 < float(self.epsilon) <= 1.0:
            raise ValueError(f"epsilon must be in (0, 1], got {self.epsilon!r}")
        if not is_int(self.candidates, 1):
            raise ValueError(f"candidates must be an integer >= 1, got {self.candidates!r}")

    def params(self) -> dict[str, object]:
        """The parameters as logged with every request."""
        return asdict(self) if self.name == "epsilon" else {"name": self.name}

    def pool(self, k: int) -> int:
        """How many candidates to retrieve for a list of ``k``: ``max(k, M)`` (``k``
        for the deterministic policy)."""
        return k if self.name == "deterministic" else max(k, self.candidates)


@dataclass(frozen=True)
class Slate:
    """A shown list: ``order`` [K] positions into the candidates, ``pscore`` [K] the
    marginal propensity of each shown candidate at its position, ``explored`` whether the
    random branch drew it."""

    order: np.ndarray
    pscore: np.ndarray
    explored: bool


def draw(config: PolicyConfig, n_candidates: int, k: int, rng: np.random.Generator) -> Slate:
    """The list of ``min(k, n_candidates)`` of ``n_candidates`` ranked candidates shown by
    the policy (see the module docstring for the propensities)."""
    k = min(k, n_candidates)
    top = np.arange(k)
    if config.name == "deterministic" or k == 0:
        return Slate(top, np.ones(k), False)
    eps, m = float(config.epsilon), n_candidates
    explored = bool(rng.random() < eps)
    order = rng.permutation(m)[:k] if explored else top
    pscore = eps / m + (1.0 - eps) * (order == top)
    return Slate(order, pscore, explored)


def marginal(config: PolicyConfig, n_candidates: int, k: int) -> np.ndarray:
    """``P[j, p]``: the probability that candidate ``j`` is shown at position ``p``,
    [n_candidates, min(k, n_candidates)] (columns sum to 1)."""
    k = min(k, n_candidates)
    p = np.zeros((n_candidates, k))
    p[np.arange(k), np.arange(k)] = 1.0
    if config.name == "deterministic":
        return p
    eps = float(config.epsilon)
    return (1.0 - eps) * p + eps / n_candidates
