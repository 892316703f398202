"""The synthetic world's latent state and its true click model (see :mod:`kgrec.graphs.synthetic`).

:func:`sample_latents` is the one place that draws a world's users, items, friend graph,
activity and click intercept; :func:`kgrec.graphs.synthetic.generate_world` writes its files
from it, and :func:`kgrec.graphs.synthetic.click_model` returns the :class:`ClickModel` of the
same latents without writing (or sampling) anything else. The world uses one
``np.random.Generator`` per component, spawned from ``seed`` in the order of :data:`STREAMS`;
the latents use only the ``items``, ``user``, ``social`` and ``act`` streams, so titles, the
knowledge graph, clicks, timestamps and the truth computations can be skipped without
changing them. New streams are appended at the end (``outcome``: the planted per-user outcome's
noise, :mod:`kgrec.graphs.synthetic_outcome`): ``SeedSequence.spawn`` numbers its children, so the
earlier streams, and every world that does not use the new ones, stay byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kgrec.graphs import synthetic_world as sw

__all__ = ["STREAMS", "streams", "Latents", "sample_latents", "ClickModel", "model_of"]

STREAMS = ("items", "title", "topic", "user", "social", "act", "click", "time", "truth", "outcome")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """The world's random streams by name: children of ``SeedSequence(seed)`` in :data:`STREAMS` order."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


@dataclass(frozen=True, eq=False)
class Latents:
    """Everything :func:`sample_latents` draws (``age`` too: it sits between s and theta in the user stream)."""
    genre_dirs: np.ndarray   # (G, d) unit genre directions
    items: sw.Items
    g_star: int              # target genre
    s: np.ndarray            # (U,) int64 sensitive attribute (group "B" = 1)
    age: np.ndarray          # (U,) int64
    theta: np.ndarray        # (U, d) float32 own latent vectors
    lo: np.ndarray           # undirected friend ties (lo < hi), in sampling order
    hi: np.ndarray
    src: np.ndarray          # the same ties in both directions, sorted by (src, dst)
    dst: np.ndarray
    theta_p: np.ndarray      # (U, d) float32 socially influenced latents: the ones clicks are sampled with
    activity: np.ndarray     # (U,) float64 request share a_u, sums to 1
    b0: float                # click intercept

    @property
    def e_star(self) -> np.ndarray:
        return self.genre_dirs[self.g_star]


def sample_latents(v: dict[str, Any], rng: dict[str, np.random.Generator]) -> Latents:
    """The latent world for validated parameters ``v``, drawn from (and advancing) the streams ``rng``."""
    n_u, n_i, dim = v["n_users"], v["n_items"], v["dim"]
    r_items, r_user = rng["items"], rng["user"]
    genre_dirs = sw.genre_directions(r_items, v["n_genres"], dim)
    items = sw.sample_items(r_items, n_i, v["n_creators"], v["n_providers"], genre_dirs, v["quality_on_popularity"])
    present = np.flatnonzero(np.bincount(items.genre, minlength=v["n_genres"]))
    g_star = int(present[r_items.integers(0, len(present))])

    s = (r_user.random(n_u) < sw.SENSITIVE_RATE).astype(np.int64)
    age = np.clip(np.rint(r_user.normal(36.0, 12.0, n_u)), 16, 70).astype(np.int64)
    theta = (r_user.standard_normal((n_u, dim)) + v["sensitive_shift"] * s[:, None] * genre_dirs[g_star]).astype(
        np.float32)
    lo, hi = sw.sample_social(rng["social"], theta, v["avg_friends"])
    pair_keys = np.sort(np.concatenate([lo * n_u + hi, hi * n_u + lo]))   # both directions, by (src, dst)
    src, dst = pair_keys // n_u, pair_keys % n_u
    theta_p = sw.social_influence(theta, src, dst, v["social_alpha"])

    cap = 0.3 * n_i / v["n_interactions"]
    weights = rng["act"].lognormal(0.0, 1.0, n_u)
    beta = v.get("activity_on_sensitive", 0.0)
    if beta:  # group B's log exposure budget shifted by beta (skipped at 0: those worlds stay byte-identical)
        weights = weights * np.exp(beta * s)
    activity = sw.cap_activity(weights, cap)
    b0 = sw.calibrate_intercept(rng["act"], theta_p, items, activity, v["quality_on_click"])
    return Latents(genre_dirs, items, g_star, s, age, theta, lo, hi, src, dst, theta_p, activity, b0)


@dataclass(frozen=True, eq=False)
class ClickModel:
    r"""The true click model of a synthetic world.

    The world's interactions were generated (:func:`kgrec.graphs.synthetic_world.sample_clicks`)
    as batches of *exposures*: a user u ~ ``activity`` and, independently, an item i ~ ``pi``
    (the popularity/exposure propensity, not a recommender); each exposure is clicked with
    :meth:`probability` (u, i), the first clicked occurrence of each (u, i) pair is kept, and
    sampling stops at exactly n_interactions kept pairs (so repeated clicks and non-clicks
    are not in the files). ``b0`` makes the mean over those exposures click at
    :data:`~kgrec.graphs.synthetic_world.TARGET_CTR` (0.25). A policy that shows user u item i
    therefore gets a click with :meth:`probability` (u, i); its true click rate under the
    world's request distribution is the mean of that over u ~ ``activity`` and its choices.
    :meth:`sample_interactions` replays the generator with these latents.

    ``bias`` is the per-item logit term the generator adds, ``offset + b0`` as rounded there
    (from float64 quality, once, to float32); it is computed from ``offset`` and ``b0`` when not
    given, which can differ from the generator's by one float32 ulp.
    """
    theta: np.ndarray      # (U, d) float32 theta'_u, the (socially influenced) latents clicks were sampled with
    phi: np.ndarray        # (I, d) float32 item latents
    offset: np.ndarray     # (I,) float32 quality_on_click * quality_i (the offset click_logits gets before b0)
    b0: float              # click intercept
    activity: np.ndarray   # (U,) float64, sums to 1: P(an exposure is user u's)
    pi: np.ndarray | None = None     # (I,) float64, sums to 1: P(an exposure shows item i)
    bias: np.ndarray | None = None   # (I,) float32 offset + b0 exactly as the generator rounds it

    def __post_init__(self) -> None:
        if self.bias is None:
            object.__setattr__(self, "bias", (self.offset.astype(np.float64) + self.b0).astype(np.float32))
        n_users, n_items = self.theta.shape[0], self.phi.shape[0]
        if self.theta.shape[1] != self.phi.shape[1] or self.activity.shape != (n_users,) or \
                self.bias.shape != (n_items,) or (self.pi is not None and self.pi.shape != (n_items,)):
            raise ValueError("ClickModel: theta (U, d), phi (I, d), offset/bias/pi (I,) and activity (U,) disagree")

    @property
    def n_users(self) -> int:
        return self.theta.shape[0]

    @property
    def n_items(self) -> int:
        return self.phi.shape[0]

    def logits(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """float32 theta_u . phi_i / sqrt(d) + offset_i + b0 for the aligned pairs (users[k], items[k])."""
        u, i = np.broadcast_arrays(np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64))
        return sw.click_logits(self.theta, u.ravel(), self.phi, i.ravel(), self.bias).reshape(u.shape)

    def probability(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(click | user u is exposed to item i) for aligned pairs, float32: bit-for-bit the
        probability the world's generator compared its uniform draw with (class docstring)."""
        return sw.sigmoid(self.logits(users, items))

    def probability_matrix(self, users: np.ndarray, items: np.ndarray | None = None,
                           cells: int = 1 << 22) -> np.ndarray:
        """float32 [len(users), n_items or len(items)] of :meth:`probability` for every pair, in
        chunks of about ``cells`` entries by matrix products (equal to :meth:`probability` up to
        float32 rounding of the dot products, ~1e-6)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        phi, bias = (self.phi, self.bias) if items is None else \
            (self.phi[np.asarray(items, dtype=np.int64).ravel()], self.bias[np.asarray(items, dtype=np.int64).ravel()])
        out = np.empty((len(users), len(phi)), dtype=np.float32)
        scale = np.float32(1.0 / np.sqrt(self.theta.shape[1]))
        rows = max(1, cells // max(len(phi), 1))
        for a in range(0, len(users), rows):
            block = self.theta[users[a:a + rows]] @ phi.T
            block *= scale
            block += bias
            out[a:a + rows] = sw.sigmoid(block)
        return out

    def sample_interactions(self, rng: np.random.Generator, n_interactions: int,
                            **kw: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Replay the generator: ``(users, items, exposures)`` of ``n_interactions`` unique clicked
        pairs in generation order. With the world's ``streams(seed)["click"]`` these are the pairs
        of its interactions.tsv and ``exposures`` its truth.json ``exposures``."""
        if self.pi is None:
            raise ValueError("ClickModel.sample_interactions needs the exposure propensity pi")
        return sw.sample_unique_clicks(rng, self.activity, self.pi, self.probability, n_interactions, **kw)


def model_of(latents: Latents, quality_on_click: float) -> ClickModel:
    """The :class:`ClickModel` of a world's latents (``quality_on_click`` is the world's b_click)."""
    items = latents.items
    return ClickModel(theta=latents.theta_p, phi=items.phi,
                      offset=(quality_on_click * items.quality).astype(np.float32), b0=latents.b0,
                      activity=latents.activity, pi=np.exp(items.log_pi),
                      bias=(quality_on_click * items.quality + latents.b0).astype(np.float32))
