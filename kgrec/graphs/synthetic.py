r"""A synthetic recommender world with a known causal structure, written as TSV files.

:func:`generate_world` samples users, items, a knowledge graph, a homophilous friend graph
and implicit clicks from the structural equations below (all vectorised numpy, one
``np.random.Generator`` stream per component derived from ``seed``; the same seed gives
byte-identical files), and writes the planted effects to ``truth.json``. The latents are
not written: :func:`click_model` (same parameters) regenerates them, from the same function
and streams (:mod:`kgrec.graphs.synthetic_click`), as the world's true P(click | exposure),
e.g. to compute a recommender's true click rate for off-policy evaluation.

Structural equations (d = ``dim``, G = ``n_genres``, :math:`\sigma` the logistic function;
constants live in :mod:`kgrec.graphs.synthetic_world`)::

    genres      e_1..e_G        unit directions in R^d (orthonormal when G <= d)
    creators    g_k ~ Cat(Dir(3)),  eta_k ~ N(0, I_d),  provider_k ~ Zipf(0.8)
    items       k_i ~ Cat(LogNormal(0, 0.8)) creator;  g_i = g_{k_i} w.p. 0.85 else uniform
                phi_i = 1.5 (0.8 sqrt(d) e_{g_i} + 0.6 (0.6 eta_{k_i} + 0.8 eps_i)),  eps_i ~ N(0, I)
                q_i ~ N(0, 1)                                             (quality, unobserved)
                critic_i = q_i + N(0, 0.3^2)                               (observed confounder)
                pi_i = exp(b_pop q_i + 1.0 nu_i) / sum_j exp(...),  nu_i ~ N(0, 1)  (exposure propensity)
    users       s_u ~ Bernoulli(0.4)   (group "B" if s_u = 1, else "A");  age_u independent of all
                theta_u = z_u + shift s_u e_{g*},  z_u ~ N(0, I_d),  g* = target genre
    friends     N(u) from homophilous ties (buckets = nearest of B random directions of theta)
                theta'_u = (1 - alpha) theta_u + alpha mean_{v in N(u)} theta_v   (theta_u if N(u) empty)
    exposure    E_u exposures per user, E_u / sum E = a_u ~ LogNormal(beta s_u, 1) (capped, normalised;
                beta = activity_on_sensitive, 0 by default); each exposure shows item i ~ pi
    click       P(click | u, i exposed) = sigma(theta'_u . phi_i / sqrt(d) + b_click q_i + b0),
                b0 set so the mean exposure clicks with probability 0.25
    data        exposures are drawn in batches; clicked (u, i) pairs are kept on first occurrence
                until exactly n_interactions unique pairs; timestamps uniform over 2023.

Hence the expected clicks of item i are E[c_i] = pi_i S_i with S_i = sum_u E_u P(click|u,i):
log pi and S_i both rise with q_i, so regressing log clicks on log pi without quality
overstates the (structural, = 1) popularity elasticity. Group membership shifts theta (and,
through the friend graph, the friends' theta') towards the target genre.

``truth.json`` (keys sorted) holds ``params`` and ``seed``, ``counts`` of everything written,
and the planted effects, all computed from the model (not from the sampled clicks) unless
named "observed"/"naive":

* ``sensitive_effect_on_genre_share``: mean over up to 5,000 uniformly sampled users
  (``sensitive_effect_sample_users``; min(5000, 5e7 / n_items) but at least 500) of
  share_u(s=1) - share_u(s=0), where share_u(s) = sum_{i in g*} p(i|u) and
  p(i|u) ∝ pi_i sigma(theta'_u(s) . phi_i / sqrt(d) + b_click q_i + b0). The intervention
  sets one user's s_u; the friends' theta are held at their factual values (so
  theta'_u(s) moves by (1 - alpha) shift e_{g*} per unit of s, or shift e_{g*} without friends).
* ``sensitive_effect_on_genre_share_global``: the same with everyone's s set at once and
  the social propagation recomputed (theta'_u moves by shift e_{g*}).
* ``popularity_elasticity``: d log E[c_i] / d log pi_i with quality (and every user's exposure
  budget) held fixed, by finite differences of the expected clicks under a perturbed,
  renormalised pi (1.0 up to rounding, by construction).
* ``naive_popularity_elasticity``: OLS slope of log observed clicks on log pi over the items
  with at least one click, without adjusting for quality (confounded; > 1 when b_pop b_click > 0).
  ``adjusted_popularity_elasticity`` is the coefficient of log pi when q is added to that
  regression; ``naive_popularity_elasticity_expected`` the naive slope on log E[c_i], all items.
  A regression with too few clicked items to fit is reported as null.

With ``mediation_direct`` set (a float; None, the default, plants nothing), the world also writes
a planted per-user outcome ``user_outcome.tsv`` (user_id, activity, history_popularity, outcome)
with a known direct effect of s and known slopes on the realised history mediators, and
``truth.json`` gets a ``mediation`` block (NDE, NIE, total; :mod:`kgrec.graphs.synthetic_outcome`).
That outcome is semi-synthetic: a recommender's NDCG has no known truth, so the mediation
analysis is validated on this planted outcome instead. Parameters at their defaults
(``activity_on_sensitive`` = 0, ``mediation_direct`` = None, ``mediation_noise`` = 0.05) are
left out of ``truth.json`` ``params``, so every world generated before they existed stays
byte-identical.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgrec.graphs import synthetic_click as sc
from kgrec.graphs import synthetic_outcome as so
from kgrec.graphs import synthetic_world as sw
from kgrec.graphs.synthetic_click import ClickModel

__all__ = ["generate_world", "click_model", "world_params", "ClickModel", "FILES", "TIME_START", "MAX_DENSITY"]

FILES = {
    "users.tsv": ("user_id", "group", "age"),
    "items.tsv": ("item_id", "title", "genre", "provider", "critic_score"),
    "item_kg.tsv": ("item_id", "relation", "entity_id"),
    "kg.tsv": ("head_id", "relation", "tail_id"),
    "social.tsv": ("user_id", "friend_id"),
    "interactions.tsv": ("user_id", "item_id", "rating", "timestamp"),
}
TIME_START = 1672531200          # 2023-01-01T00:00:00Z; timestamps lie in [TIME_START, TIME_START + 365 days)
MAX_DENSITY = 0.1                # n_interactions <= MAX_DENSITY * n_users * n_items
SENSITIVE_RATE = sw.SENSITIVE_RATE
EFFECT_SAMPLE = 5000             # users sampled for the expected effects ...
EFFECT_CELLS = 50_000_000        # ... fewer (>= 500) when n_items > 10,000, to bound users x items work
OPTIONAL_DEFAULTS = {"activity_on_sensitive": 0.0, "mediation_direct": None, "mediation_noise": 0.05}


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def _float(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return float(value)


def _validate(p: dict[str, Any]) -> dict[str, Any]:
    v = dict(p)
    v["n_users"] = _int("n_users", p["n_users"], 100, 1_000_000)
    v["n_items"] = _int("n_items", p["n_items"], 20, 1_000_000)
    v["n_interactions"] = _int("n_interactions", p["n_interactions"], 1, 100_000_000)
    if v["n_interactions"] > MAX_DENSITY * v["n_users"] * v["n_items"]:
        raise ValueError(f"n_interactions={v['n_interactions']} is more than {MAX_DENSITY:g} of all "
                         f"n_users * n_items = {v['n_users'] * v['n_items']} pairs; lower it or add users/items")
    v["n_genres"] = _int("n_genres", p["n_genres"], 2, min(256, v["n_items"] // 2))
    default_creators = max(2, v["n_items"] // 8)
    v["n_creators"] = default_creators if p["n_creators"] is None else _int("n_creators", p["n_creators"], 1,
                                                                            v["n_items"])
    v["n_providers"] = _int("n_providers", p["n_providers"], 1, v["n_items"])
    v["dim"] = _int("dim", p["dim"], 2, 512)
    v["avg_friends"] = _float("avg_friends", p["avg_friends"], 0.0, min(200.0, (v["n_users"] - 1) / 4))
    if v["avg_friends"] * v["n_users"] < 2:
        raise ValueError(f"avg_friends={p['avg_friends']} gives no friend ties for {v['n_users']} users "
                         f"(social.tsv would be empty); use at least {2 / v['n_users']:.3g}")
    v["social_alpha"] = _float("social_alpha", p["social_alpha"], 0.0, 1.0)
    for name in ("sensitive_shift", "quality_on_popularity", "quality_on_click"):
        v[name] = _float(name, p[name], -10.0, 10.0)
    v["seed"] = _int("seed", p["seed"], 0, 2 ** 63 - 1)
    v["activity_on_sensitive"] = _float("activity_on_sensitive", p["activity_on_sensitive"], -5.0, 5.0)
    direct = p["mediation_direct"]
    v["mediation_direct"] = None if direct is None else _float("mediation_direct", direct, -1.0, 1.0)
    v["mediation_noise"] = _float("mediation_noise", p["mediation_noise"], 0.0, 1.0)
    return v


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def _write(path: Path, columns: tuple[str, ...], data: list[Any]) -> int:
    frame = pd.DataFrame(dict(zip(columns, data)), columns=list(columns))
    frame.to_csv(path, sep="\t", index=False, lineterminator="\n", encoding="utf-8")
    return len(frame)


def _ols(y: np.ndarray, *xs: np.ndarray) -> np.ndarray:
    """OLS coefficients of y on [1, *xs] (intercept first), from explicitly summed normal
    equations on centred data (no BLAS, so independent of the thread count)."""
    if len(y) < len(xs) + 2:
        return np.full(len(xs) + 1, np.nan)
    x = np.column_stack([v - v.mean() for v in xs])
    yc = y - y.mean()
    try:
        coef = np.linalg.solve((x[:, :, None] * x[:, None, :]).sum(axis=0), (x * yc[:, None]).sum(axis=0))
    except np.linalg.LinAlgError:
        return np.full(len(xs) + 1, np.nan)
    return np.concatenate([[y.mean() - sum(c * v.mean() for c, v in zip(coef, xs))], coef])


def _expected_effects(rng: np.random.Generator, theta_p: np.ndarray, h: np.ndarray, c_ind: np.ndarray,
                      s: np.ndarray, items: sw.Items, e_star: np.ndarray, target: np.ndarray, b0: float,
                      v: dict[str, Any], exposures_u: np.ndarray, chunk: int = 256) -> dict[str, Any]:
    """Model expectations over a uniform sample of users (see the module docstring).

    ``h`` is each user's factual coefficient on e_{g*} inside theta'; ``c_ind`` the coefficient
    of their own s_u. A scenario moves theta'_u by delta_u e_{g*}, i.e. the logits by delta_u proj_i.
    """
    n_users, dim = theta_p.shape
    m = min(EFFECT_SAMPLE, n_users, max(500, EFFECT_CELLS // len(items.quality)))
    users = np.sort(rng.choice(n_users, m, replace=False))
    shift = v["sensitive_shift"]
    pi = np.exp(items.log_pi)
    pi_target = pi * target
    proj = (sw.dot_t(items.phi.astype(np.float64), e_star[None])[:, 0] / math.sqrt(dim)).astype(np.float32)
    offset = (v["quality_on_click"] * items.quality + b0).astype(np.float32)
    deltas = {"ind1": c_ind * (1 - s), "ind0": -c_ind * s, "glob1": shift - h, "glob0": -h}
    shares = {k: np.empty(m) for k in deltas}
    s_i = np.zeros(len(pi))
    phi_s = items.phi / np.float32(math.sqrt(dim))
    for a in range(0, m, chunk):
        uu = users[a:a + chunk]
        base = sw.dot_t(theta_p[uu], phi_s) + offset
        # explicit sums, not BLAS matrix-vector products: truth.json must not depend on the thread count
        s_i += (sw.sigmoid(base).astype(np.float64) * (exposures_u[uu, None] * n_users / m)).sum(axis=0)
        for k, d in deltas.items():
            p = sw.sigmoid(base + d[uu, None].astype(np.float32) * proj).astype(np.float64)
            shares[k][a:a + chunk] = (p * pi_target).sum(axis=1) / (p * pi).sum(axis=1)

    def expected_clicks(log_pi: np.ndarray) -> np.ndarray:   # E[c_i] = pi_i S_i, exposure budgets fixed
        return np.exp(log_pi - np.logaddexp.reduce(log_pi)) * s_i

    step = 1e-3 * (items.log_pi - items.log_pi.mean()) / max(items.log_pi.std(), 1e-12)
    lo_pi, hi_pi = items.log_pi - step, items.log_pi + step
    d_log_e = np.log(expected_clicks(hi_pi)) - np.log(expected_clicks(lo_pi))
    d_log_pi = (hi_pi - np.logaddexp.reduce(hi_pi)) - (lo_pi - np.logaddexp.reduce(lo_pi))
    e_clicks = expected_clicks(items.log_pi)
    return {
        "sensitive_effect_on_genre_share": float(np.mean(shares["ind1"] - shares["ind0"])),
        "sensitive_effect_on_genre_share_global": float(np.mean(shares["glob1"] - shares["glob0"])),
        "sensitive_effect_sample_users": m,
        "expected_genre_share_s1": float(shares["ind1"].mean()),
        "expected_genre_share_s0": float(shares["ind0"].mean()),
        "popularity_elasticity": float(_ols(d_log_e, d_log_pi)[1]),
        "naive_popularity_elasticity_expected": float(_ols(np.log(e_clicks), items.log_pi)[1]),
    }


def _log(progress: bool, t0: float, msg: str) -> None:
    if progress:
        print(f"[kgrec.synthetic {time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def generate_world(out_dir: str | os.PathLike, *, n_users: int = 1000, n_items: int = 500,
                   n_interactions: int = 20000, n_genres: int = 8, n_creators: int | None = None,
                   n_providers: int = 10, dim: int = 16, avg_friends: float = 8.0,
                   social_alpha: float = 0.3, sensitive_shift: float = 0.8,
                   quality_on_popularity: float = 0.8, quality_on_click: float = 0.5,
                   seed: int = 0, activity_on_sensitive: float = 0.0, mediation_direct: float | None = None,
                   mediation_noise: float = 0.05, progress: bool = False) -> dict:
    """Sample a world (module docstring) into ``out_dir`` and return the ``truth.json`` dict.

    Raises ValueError for out-of-range parameters or a world too dense to sample.
    """
    v = _validate({k: val for k, val in locals().items() if k not in ("out_dir", "progress")})
    t0 = time.perf_counter()
    n_u, n_i = v["n_users"], v["n_items"]
    rng = sc.streams(v["seed"])
    r_title, r_topic, r_click, r_time, r_truth = (rng[k] for k in ("title", "topic", "click", "time", "truth"))
    files = dict(FILES)
    lat = sc.sample_latents(v, rng)
    genre_dirs, items, g_star, e_star, b0, activity = (lat.genre_dirs, lat.items, lat.g_star, lat.e_star, lat.b0,
                                                        lat.activity)
    s, age, theta, theta_p, lo, hi, src, dst = lat.s, lat.age, lat.theta, lat.theta_p, lat.lo, lat.hi, lat.src, lat.dst
    names = sw.genre_names(v["n_genres"])
    _log(progress, t0, f"items: {n_i}, target genre {names[g_star]}")
    deg = np.bincount(src, minlength=n_u)
    friend_s = np.bincount(src, weights=s[dst], minlength=n_u) / np.maximum(deg, 1)
    alpha, shift = v["social_alpha"], v["sensitive_shift"]
    h = np.where(deg > 0, shift * ((1 - alpha) * s + alpha * friend_s), shift * s)
    c_ind = np.where(deg > 0, (1 - alpha) * shift, shift)
    _log(progress, t0, f"users: {n_u}, friend ties: {len(lo)}")

    cu, ci, exposures = sw.sample_clicks(r_click, theta_p, items, activity, v["quality_on_click"], b0,
                                         v["n_interactions"])
    ts = TIME_START + r_time.integers(0, 365 * 86400, len(cu))
    order = np.lexsort((ts, cu))
    cu, ci, ts = cu[order], ci[order], ts[order]
    _log(progress, t0, f"interactions: {len(cu)} from {exposures} exposures")

    # knowledge graph
    n_topics = int(np.clip(n_i // 40, 8, 128))
    titles = sw.item_titles(r_title, items, genre_dirs)
    t_dirs, t_item, t_topic = sw.item_topics(r_topic, items.phi, n_topics)
    has_kg = r_topic.random(n_i) >= sw.KG_MISSING
    genre_ent = np.array([f"genre:{g}" for g in names], dtype=object)
    creator_ent, topic_ent = _ids("creator:", v["n_creators"]), _ids("topic:", n_topics)
    ar = np.arange(n_i)
    ik_item = np.concatenate([ar, ar, t_item])
    ik_rel = np.repeat(np.array(["has_genre", "made_by", "has_topic"], dtype=object), [n_i, n_i, len(t_item)])
    ik_ent = np.concatenate([genre_ent[items.genre], creator_ent[items.creator], topic_ent[t_topic]])
    keep = has_kg[ik_item]
    order = np.argsort(ik_item[keep], kind="stable")
    ik_item, ik_rel, ik_ent = ik_item[keep][order], ik_rel[keep][order], ik_ent[keep][order]
    cos = sw.dot_t(t_dirs, t_dirs)
    np.fill_diagonal(cos, -np.inf)
    near = np.argsort(-cos, axis=1, kind="stable")[:, :2]
    t_genre = np.argmax(sw.dot_t(t_dirs, genre_dirs.astype(np.float32)), axis=1)
    heads = np.concatenate([creator_ent, np.repeat(topic_ent, 2), topic_ent])
    rels = np.repeat(np.array(["works_in", "related_to", "associated_with"], dtype=object),
                     [v["n_creators"], 2 * n_topics, n_topics])
    tails = np.concatenate([genre_ent[items.creator_genre], topic_ent[near.ravel()], genre_ent[t_genre]])
    used = np.unique(ik_ent.astype(str))
    kg_keep = np.isin(heads.astype(str), used) & np.isin(tails.astype(str), used)
    heads, rels, tails = heads[kg_keep], rels[kg_keep], tails[kg_keep]

    # truth
    exposures_u = exposures * activity
    target = (items.genre == g_star).astype(np.float64)
    truth: dict[str, Any] = _expected_effects(r_truth, theta_p, h, c_ind, s, items, e_star, target, b0, v,
                                              exposures_u)
    clicks = np.bincount(ci, minlength=n_i)
    pos = clicks > 0
    naive = _ols(np.log(clicks[pos]), items.log_pi[pos])
    adjusted = _ols(np.log(clicks[pos]), items.log_pi[pos], items.quality[pos])
    user_clicks = np.bincount(cu, minlength=n_u)
    share = np.bincount(cu, weights=target[ci], minlength=n_u) / np.maximum(user_clicks, 1)
    active = user_clicks > 0
    tie_cos = np.einsum("ij,ij->i", *(sw.unit_rows(theta[x]) for x in (lo, hi)))
    ru, rv = r_truth.integers(0, n_u, (2, max(len(lo), 1000)))
    rand_cos = np.einsum("ij,ij->i", sw.unit_rows(theta[ru]), sw.unit_rows(theta[rv]))
    params = {k: x for k, x in v.items() if k not in OPTIONAL_DEFAULTS or x != OPTIONAL_DEFAULTS[k]}
    truth.update({
        "seed": v["seed"], "params": {**params, "n_topics": n_topics},
        "social_alpha": alpha, "sensitive_shift": shift, "quality_on_popularity": v["quality_on_popularity"],
        "quality_on_click": v["quality_on_click"], "target_genre": names[g_star],
        "target_genre_entity": f"genre:{names[g_star]}", "sensitive_attribute": "group",
        "sensitive_groups": {"A": 0, "B": 1}, "social_effect_held_fixed": True,
        "naive_popularity_elasticity": float(naive[1]), "adjusted_popularity_elasticity": float(adjusted[1]),
        "naive_popularity_items": int(pos.sum()),
        "observed_genre_share_gap": float(share[active & (s == 1)].mean() - share[active & (s == 0)].mean())
        if (active & (s == 1)).any() and (active & (s == 0)).any() else None,
        "social_homophily": float(tie_cos.mean() - rand_cos.mean()) if len(lo) else 0.0,
        "click_intercept": b0, "target_ctr": sw.TARGET_CTR, "exposures": int(exposures),
        "realised_ctr_unique": len(cu) / exposures, "popularity_noise": sw.POPULARITY_NOISE,
        "critic_noise": sw.CRITIC_NOISE, "sensitive_rate": SENSITIVE_RATE, "time_start": TIME_START,
    })
    if v["mediation_direct"] is not None:
        keep, med, y, truth["mediation"] = so.planted_outcome(rng["outcome"], s, cu, ci, n_items=n_i,
                                                              direct=v["mediation_direct"], noise=v["mediation_noise"])
        truth["mediation"]["activity_on_sensitive"] = v["activity_on_sensitive"]
        files[so.FILE] = so.COLUMNS
    truth["files"] = {k: list(c) for k, c in files.items()}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    uid, iid = _ids("u", n_u), _ids("i", n_i)
    counts = {
        "users": _write(out / "users.tsv", FILES["users.tsv"], [uid, np.where(s == 1, "B", "A"), age]),
        "items": _write(out / "items.tsv", FILES["items.tsv"],
                        [iid, titles, np.array(names, dtype=object)[items.genre],
                         _ids("p", v["n_providers"])[items.provider], items.critic]),
        "item_kg_triples": _write(out / "item_kg.tsv", FILES["item_kg.tsv"], [iid[ik_item], ik_rel, ik_ent]),
        "kg_triples": _write(out / "kg.tsv", FILES["kg.tsv"], [heads, rels, tails]),
        "social_pairs": _write(out / "social.tsv", FILES["social.tsv"], [uid[src], uid[dst]]),
        "interactions": _write(out / "interactions.tsv", FILES["interactions.tsv"],
                               [uid[cu], iid[ci], np.full(len(cu), "1.0", dtype=object), ts]),
    }
    if so.FILE in files:
        counts["outcome_users"] = _write(out / so.FILE, so.COLUMNS,
                                         [uid[keep], *(med[k] for k in so.COLUMNS[1:-1]), y])
    counts.update({"entities": len(used), "items_without_kg": int((~has_kg).sum()), "genres": v["n_genres"],
                   "creators": v["n_creators"], "topics": n_topics, "providers": v["n_providers"],
                   "friend_ties": len(lo), "users_with_interactions": int(active.sum())})
    truth["counts"] = counts
    truth = {k: None if isinstance(x, float) and not math.isfinite(x) else x for k, x in truth.items()}
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _log(progress, t0, f"wrote {out}")
    return truth


def world_params(params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """:func:`generate_world`'s validated parameters for ``params`` updated by ``kw``, its
    defaults filling the rest. ``params`` may be a truth.json's ``params`` (the derived
    ``n_topics`` is ignored). Raises ValueError for unknown or out-of-range parameters."""
    given = {k: x for k, x in {**(params or {}), **kw}.items() if k != "n_topics"}
    signature = inspect.signature(generate_world).parameters
    names = [k for k in signature if k not in ("out_dir", "progress")]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"unknown synthetic parameter {unknown[0]!r} (known: {', '.join(names)})")
    return _validate({k: given.get(k, signature[k].default) for k in names})


def click_model(params: dict[str, Any] | None = None, **kw: Any) -> ClickModel:
    """The true :class:`~kgrec.graphs.synthetic_click.ClickModel` of the world that
    :func:`generate_world` writes for the same parameters (:func:`world_params`): the same
    latents from the same streams, without sampling titles, KG, clicks or writing anything."""
    v = world_params(params, **kw)
    return sc.model_of(sc.sample_latents(v, sc.streams(v["seed"])), v["quality_on_click"])
