r"""The synthetic world's planted per-user outcome with a known direct effect (mediation truth).

A recommender's per-user NDCG has no closed-form truth, so the audit's mediation analysis
(:mod:`kgrec.audit.causal.mediation`) cannot be validated on a model's NDCG. Instead the world
plants a *semi-synthetic* outcome with the structure the analysis assumes, built on the world's
own, realised mediators. With ``s_u`` the sensitive attribute (1 for group "B"), ``m_ju`` the
mediators of :func:`kgrec.metrics.mediators.history_mediators` computed on all the world's
interactions (``activity`` = log(1 + n_u), ``history_popularity`` = mean log(1 + c_i) over the
user's items) and only users with at least one interaction::

    y_u = c + delta s_u + sum_j gamma_j m_ju + eps_u,    eps_u ~ N(0, sigma^2)   ("outcome" stream)

with ``delta`` = ``mediation_direct``, ``sigma`` = ``mediation_noise``, ``c`` = :data:`INTERCEPT`
and ``gamma`` = :data:`SLOPES` (an NDCG-like scale: more history and a more mainstream history
raise the outcome). The mediators depend on ``s`` through the world's sampling: group membership
shifts theta towards the target genre (history composition), and ``activity_on_sensitive`` (beta)
shifts group B's log exposure budget (activity).

Truth (``truth.json`` ``mediation``), the estimands of the linear model without interaction:

* ``natural_direct_effect`` = delta, exactly (the structural coefficient of s);
* ``natural_indirect_effect`` = sum_j gamma_j gap_j, with gap_j = mean(m_j | s=1) - mean(m_j | s=0)
  over the users with an outcome: the planted slopes times the realised group gaps of the
  mediators (s is randomised in the world, independent of every other latent, so the gap is the
  realised effect of s on each mediator in this population; ``natural_indirect_effect_by_mediator``
  holds each term);
* ``total_effect`` = NDE + NIE; ``share_mediated`` = NIE / total (None when the total is 0).

An estimator is then judged on the noise it cannot see (eps), not on the world's sampling of the
mediators: the CIs of the audit's bootstrap include the mediators' sampling variation too, so for
the indirect effect they are conservative against this in-sample truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrec.metrics.mediators import MEDIATORS, history_mediators

FILE = "user_outcome.tsv"
COLUMNS = ("user_id", *MEDIATORS, "outcome")
INTERCEPT = 0.05
SLOPES = {"activity": 0.04, "history_popularity": 0.03}


def planted_outcome(rng: np.random.Generator, s: np.ndarray, users: np.ndarray, items: np.ndarray, *,
                    n_items: int, direct: float, noise: float) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                         np.ndarray, dict[str, Any]]:
    """(user indices with an outcome, their mediators, their outcome y, the truth block) for the
    world's sensitive attribute ``s`` [U] and its interactions (``users[k]``, ``items[k]``).
    Draws U normals from ``rng`` (one per user, in index order, whether active or not)."""
    n_users = len(s)
    eps = rng.standard_normal(n_users) * noise
    x = sp.csr_matrix((np.ones(len(users)), (users, items)), shape=(n_users, n_items))
    med = history_mediators(x)
    keep = np.flatnonzero(np.diff(x.indptr) > 0)
    med = {k: v[keep] for k, v in med.items()}
    sk = s[keep]
    y = INTERCEPT + direct * sk + sum(SLOPES[k] * med[k] for k in MEDIATORS) + eps[keep]
    both = (sk == 1).any() and (sk == 0).any()
    gaps = {k: float(med[k][sk == 1].mean() - med[k][sk == 0].mean()) if both else None for k in MEDIATORS}
    by = {k: None if gaps[k] is None else SLOPES[k] * gaps[k] for k in MEDIATORS}
    nie = None if not both else float(sum(by.values()))
    total = None if nie is None else direct + nie
    truth = {
        "treatment": "group", "treated": "B", "file": FILE, "outcome": "outcome", "mediators": list(MEDIATORS),
        "mediator_definition": "kgrec.metrics.mediators.history_mediators on all interactions (interactions.tsv)",
        "intercept": INTERCEPT, "slopes": dict(SLOPES), "noise_sd": noise, "users": len(keep),
        "treated_users": int(sk.sum()), "mediator_gap": gaps,
        "natural_direct_effect": direct, "natural_indirect_effect": nie,
        "natural_indirect_effect_by_mediator": by, "total_effect": total,
        "share_mediated": None if not total else nie / total,
        "observed_outcome_gap": float(y[sk == 1].mean() - y[sk == 0].mean()) if both else None,
        "semi_synthetic": True,
    }
    return keep, med, y, truth
