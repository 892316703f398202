"""Samplers of the synthetic world's latent structure (see :mod:`kgrec.graphs.synthetic`).

Every function here is vectorised numpy over users, items and interactions and draws from
the ``np.random.Generator`` it is given, so a world is a pure function of its seed. Latent
vectors are float32; index arrays are int64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

AFFINITY_SCALE = 1.5     # std of theta.phi/sqrt(d) for theta ~ N(0, I)
GENRE_WEIGHT = 0.8       # share of an item's latent vector on its genre direction ...
ITEM_NOISE = 0.6         # ... and on creator/item noise (0.8**2 + 0.6**2 = 1)
CREATOR_SHARE = 0.6      # of that noise, the creator's part (creators cluster in latent space)
POPULARITY_NOISE = 1.0   # sigma of the non-quality part of log exposure propensity
CRITIC_NOISE = 0.3       # critic_score = quality + N(0, CRITIC_NOISE^2)
TARGET_CTR = 0.25        # click intercept b0 is set so the mean exposure clicks at this rate
SENSITIVE_RATE = 0.4     # P(s_u = 1), users in group "B"
WITHIN_BUCKET = 0.85     # share of social ties wired inside a homophily bucket
KG_MISSING = 0.05        # share of items without any KG link
GENRE_KEEP = 0.85        # probability an item has its creator's genre
PROVIDER_KEEP = 0.8      # probability an item has its creator's provider

GENRES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("drama", ("drama", "saga", "chronicle")), ("comedy", ("comedy", "farce", "romp")),
    ("thriller", ("thriller", "chase", "conspiracy")), ("scifi", ("space opera", "odyssey", "voyage")),
    ("romance", ("romance", "love story", "affair")), ("horror", ("nightmare", "haunting", "terror")),
    ("documentary", ("documentary", "portrait", "record")), ("animation", ("cartoon", "fable", "adventure")),
    ("fantasy", ("legend", "quest", "myth")), ("crime", ("heist", "caper", "crime story")),
    ("mystery", ("mystery", "riddle", "whodunit")), ("western", ("western", "frontier tale", "showdown")),
    ("musical", ("musical", "song cycle", "revue")), ("war", ("war epic", "battle", "campaign")),
    ("history", ("history", "epic", "biography")), ("family", ("family tale", "homecoming", "reunion")),
)
GENERIC_NOUNS = ("story", "tale", "film")
ADJECTIVES = ("dark", "bright", "quiet", "loud", "cold", "warm", "strange", "gentle", "wild", "calm", "bitter",
              "sweet", "lost", "hidden", "broken", "golden", "silent", "burning", "endless", "distant", "secret",
              "fallen", "savage", "tender", "electric", "ancient", "modern", "frozen", "restless", "hollow",
              "crimson", "shining")
NOUNS = ("rebels", "stars", "kings", "ghosts", "rivers", "machines", "lovers", "wolves", "cities", "storms",
         "children", "soldiers", "dreams", "shadows", "islands", "spies", "angels", "thieves", "mountains",
         "oceans", "robots", "witches", "sisters", "strangers", "empires", "gardens", "engines", "saints",
         "hunters", "mirrors", "dragons", "echoes")


def genre_names(n: int) -> list[str]:
    return [GENRES[k][0] if k < len(GENRES) else f"g{k}" for k in range(n)]


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def dot_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` without BLAS (np.einsum's own loops), so results never depend on the thread count."""
    return np.einsum("ik,jk->ij", a, b)


def categorical(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws of indices with probability proportional to ``weights``."""
    cdf = np.cumsum(weights, dtype=np.float64)
    idx = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    return np.minimum(idx, len(weights) - 1)


def first_unique(keys: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct key, in their original order."""
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return first


@dataclass
class Items:
    phi: np.ndarray          # (n_items, d) float32 latent vectors
    quality: np.ndarray      # (n_items,) q_i
    genre: np.ndarray        # (n_items,) genre index
    creator: np.ndarray      # (n_items,) creator index
    provider: np.ndarray     # (n_items,) provider index
    log_pi: np.ndarray       # (n_items,) log exposure propensity, normalised (logsumexp = 0)
    critic: np.ndarray       # (n_items,) observed critic score
    creator_genre: np.ndarray


def genre_directions(rng: np.random.Generator, n_genres: int, dim: int) -> np.ndarray:
    """Unit genre directions, orthonormal when ``n_genres <= dim``."""
    g = rng.standard_normal((dim, n_genres))
    if n_genres <= dim:
        q, r = np.linalg.qr(g)
        return (q * np.sign(np.diag(r))).T.copy()
    return unit_rows(g.T)


def sample_items(rng: np.random.Generator, n_items: int, n_creators: int, n_providers: int,
                 genre_dirs: np.ndarray, quality_on_popularity: float) -> Items:
    n_genres, dim = genre_dirs.shape
    genre_w = rng.dirichlet(np.full(n_genres, 3.0))
    creator_genre = categorical(rng, genre_w, n_creators)
    creator_offset = rng.standard_normal((n_creators, dim))
    provider_w = 1.0 / np.arange(1, n_providers + 1) ** 0.8
    creator_provider = categorical(rng, provider_w, n_creators)
    creator = categorical(rng, rng.lognormal(0.0, 0.8, n_creators), n_items)
    genre = np.where(rng.random(n_items) < GENRE_KEEP, creator_genre[creator], rng.integers(0, n_genres, n_items))
    provider = np.where(rng.random(n_items) < PROVIDER_KEEP, creator_provider[creator],
                        categorical(rng, provider_w, n_items))
    noise = CREATOR_SHARE * creator_offset[creator] + np.sqrt(1 - CREATOR_SHARE ** 2) * rng.standard_normal(
        (n_items, dim))
    phi = AFFINITY_SCALE * (GENRE_WEIGHT * np.sqrt(dim) * genre_dirs[genre] + ITEM_NOISE * noise)
    quality = rng.standard_normal(n_items)
    log_w = quality_on_popularity * quality + POPULARITY_NOISE * rng.standard_normal(n_items)
    log_pi = log_w - (log_w.max() + np.log(np.exp(log_w - log_w.max()).sum()))
    critic = np.round(quality + CRITIC_NOISE * rng.standard_normal(n_items), 4) + 0.0
    return Items(phi.astype(np.float32), quality, genre, creator, provider, log_pi, critic, creator_genre)


def item_titles(rng: np.random.Generator, items: Items, genre_dirs: np.ndarray) -> np.ndarray:
    """Titles like "Dark space opera of rebels and stars": the adjective names the strongest
    latent coordinate of phi_i (and its sign), the noun phrase the genre, and the two nouns the
    strongest coordinates of the item's own (creator + item) deviation from its genre."""
    dim = genre_dirs.shape[1]
    phi = items.phi.astype(np.float64)
    resid = phi - AFFINITY_SCALE * GENRE_WEIGHT * np.sqrt(dim) * genre_dirs[items.genre]
    top = np.argmax(np.abs(phi), axis=1)
    adj_idx = (2 * top + (phi[np.arange(len(phi)), top] < 0)) % len(ADJECTIVES)
    order = np.argsort(-np.abs(resid), axis=1, kind="stable")[:, :2]
    sign = np.take_along_axis(resid, order, axis=1) < 0
    noun_idx = (2 * order + sign) % len(NOUNS)
    names = genre_names(genre_dirs.shape[0])
    choice = rng.integers(0, 3, len(phi))
    nouns_by_genre = np.array([GENRES[g][1] if g < len(GENRES) else GENERIC_NOUNS for g in range(len(names))],
                              dtype=object)
    genre_word = nouns_by_genre[items.genre, choice]
    adj = np.array([a.capitalize() for a in ADJECTIVES], dtype=object)[adj_idx]
    nouns = np.array(NOUNS, dtype=object)
    return adj + " " + genre_word + " of " + nouns[noun_idx[:, 0]] + " and " + nouns[noun_idx[:, 1]]


def item_topics(rng: np.random.Generator, phi: np.ndarray, n_topics: int, chunk: int = 65536):
    """Topic directions and each item's 1-3 topics (the best-aligned, with Gumbel noise)."""
    n, dim = phi.shape
    t_dirs = unit_rows(rng.standard_normal((n_topics, dim))).astype(np.float32)
    n_per = rng.integers(1, 4, n)
    top3 = np.empty((n, 3), dtype=np.int64)
    unit_phi = unit_rows(phi).astype(np.float32)
    for s in range(0, n, chunk):
        score = 4.0 * dot_t(unit_phi[s:s + chunk], t_dirs)
        score += rng.gumbel(size=score.shape).astype(np.float32)
        part = np.argpartition(-score, 2, axis=1)[:, :3]
        ordr = np.argsort(-np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
        top3[s:s + chunk] = np.take_along_axis(part, ordr, axis=1)
    rows = np.repeat(np.arange(n), n_per)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    return t_dirs, rows, top3[rows, slot]


def sample_social(rng: np.random.Generator, theta: np.ndarray, avg_friends: float,
                  max_rounds: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Undirected homophilous ties as ``(a, b)`` with ``a < b``, unique, in random order.

    Users fall into buckets by their nearest of B random latent directions (cones of theta);
    a tie's initiator is drawn by a lognormal sociability, its partner uniformly from the
    initiator's bucket with probability WITHIN_BUCKET, else uniformly from all users.
    Exactly round(N * avg_friends / 2) ties unless the buckets saturate.
    """
    n, dim = theta.shape
    target = int(round(n * avg_friends / 2))
    if target == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    n_buckets = int(np.clip(n // 100, 2, 64))
    protos = unit_rows(rng.standard_normal((n_buckets, dim))).astype(np.float32)
    bucket = np.argmax(dot_t(theta, protos), axis=1)
    order = np.argsort(bucket, kind="stable")
    counts = np.bincount(bucket, minlength=n_buckets)
    starts = np.cumsum(counts) - counts
    sociability = rng.lognormal(0.0, 0.7, n)
    keys = np.empty(0, np.int64)
    for _ in range(max_rounds):
        m = int((target - len(keys)) * 1.3) + 16
        u = categorical(rng, sociability, m)
        b = bucket[u]
        inside = order[starts[b] + (rng.random(m) * counts[b]).astype(np.int64)]
        v = np.where(rng.random(m) < WITHIN_BUCKET, inside, rng.integers(0, n, m))
        ok = u != v
        lo, hi = np.minimum(u, v)[ok], np.maximum(u, v)[ok]
        keys = np.concatenate([keys, lo * n + hi])
        keys = keys[first_unique(keys)]
        if len(keys) >= target:
            break
    keys = keys[:target]
    return keys // n, keys % n


def social_influence(theta: np.ndarray, src: np.ndarray, dst: np.ndarray, alpha: float) -> np.ndarray:
    """theta'_u = (1 - alpha) theta_u + alpha mean_{v in N(u)} theta_v; friendless users keep theta_u.
    ``src``/``dst`` are directed pairs."""
    n = theta.shape[0]
    out = theta.copy()
    if len(src) == 0 or alpha == 0:
        return out
    deg = np.bincount(src, minlength=n)
    has = np.flatnonzero(deg)
    sums = np.column_stack([np.bincount(src, weights=theta[dst, j], minlength=n) for j in range(theta.shape[1])])
    out[has] = ((1 - alpha) * theta[has] + alpha * sums[has] / deg[has, None]).astype(theta.dtype)
    return out


def click_logits(theta: np.ndarray, u: np.ndarray, phi: np.ndarray, i: np.ndarray, offset: np.ndarray,
                 chunk: int = 1 << 18) -> np.ndarray:
    """theta_u . phi_i / sqrt(d) + offset_i for the exposure pairs (u[k], i[k]), gathered in chunks."""
    out = np.empty(len(u), dtype=np.float32)
    scale = np.float32(1.0 / np.sqrt(theta.shape[1]))
    for s in range(0, len(out), chunk):
        uu, ii = u[s:s + chunk], i[s:s + chunk]
        out[s:s + chunk] = np.einsum("ij,ij->i", theta[uu], phi[ii]) * scale + offset[ii]
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def calibrate_intercept(rng: np.random.Generator, theta: np.ndarray, items: Items, activity: np.ndarray,
                        quality_on_click: float, ctr: float = TARGET_CTR, n: int = 1 << 16) -> float:
    """b0 with mean sigmoid(logit + b0) = ctr over exposures (u ~ activity, i ~ pi), by bisection."""
    u = categorical(rng, activity, n)
    i = categorical(rng, np.exp(items.log_pi), n)
    base = click_logits(theta, u, items.phi, i, (quality_on_click * items.quality).astype(np.float32))
    base = base.astype(np.float64)
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sigmoid(base + mid).mean() < ctr else (lo, mid)
    return 0.5 * (lo + hi)


def cap_activity(weights: np.ndarray, cap: float) -> np.ndarray:
    """Normalise ``weights`` to sum 1 with no entry above ``cap`` (water-filling)."""
    w = weights / weights.sum()
    for _ in range(50):
        over = w > cap
        if not over.any():
            break
        free = 1.0 - cap * over.sum()
        w = np.where(over, cap, w * free / w[~over].sum())
    return w


def sample_clicks(rng: np.random.Generator, theta: np.ndarray, items: Items, activity: np.ndarray,
                  quality_on_click: float, b0: float, n_interactions: int, max_rounds: int = 200,
                  max_batch: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, int]:
    """Expose (u ~ activity, i ~ pi) in batches, click with sigmoid(logit), keep first unique
    clicked pairs until ``n_interactions``. Returns users, items (generation order), exposures."""
    offset = (quality_on_click * items.quality + b0).astype(np.float32)

    def click_probability(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return sigmoid(click_logits(theta, u, items.phi, i, offset))

    return sample_unique_clicks(rng, activity, np.exp(items.log_pi), click_probability, n_interactions,
                                max_rounds, max_batch)


def sample_unique_clicks(rng: np.random.Generator, activity: np.ndarray, pi: np.ndarray,
                         click_probability: Callable[[np.ndarray, np.ndarray], np.ndarray], n_interactions: int,
                         max_rounds: int = 200, max_batch: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`sample_clicks` for any P(click | u, i exposed) = ``click_probability(u, i)`` (aligned
    index arrays): per batch, users ~ activity, then items ~ pi, then one uniform per exposure
    (click iff uniform < probability), all from ``rng`` in that order."""
    n_items = len(pi)
    keys = np.empty(0, np.int64)      # the kept (first unique) clicked pairs, in generation order ...
    seen = np.empty(0, np.int64)      # ... and the same keys sorted, to test each batch against
    exposures, yield_rate = 0, TARGET_CTR
    for _ in range(max_rounds):
        need = n_interactions - len(keys)
        m = int(min(max_batch, max(4096, need / max(yield_rate, 1e-3) * 1.15)))
        u = categorical(rng, activity, m)
        i = categorical(rng, pi, m)
        click = rng.random(m) < click_probability(u, i)
        # the batch's first occurrences that are not kept yet: the same pairs, in the same order, as
        # de-duplicating the concatenation of all batches, at the cost of the batch, not of all kept keys
        vals, first = np.unique(u[click] * n_items + i[click], return_index=True)   # vals sorted
        if len(seen):
            at = np.searchsorted(seen, vals)
            fresh = seen[np.minimum(at, len(seen) - 1)] != vals
            vals, first, at = vals[fresh], first[fresh], at[fresh]
        else:
            at = np.zeros(len(vals), np.int64)
        order = np.argsort(first, kind="stable")
        new, first = vals[order], first[order]
        before = len(keys)
        if before + len(new) >= n_interactions:   # count exposures up to the one giving the last kept click
            take = n_interactions - before
            exposures += int(np.flatnonzero(click)[first[take - 1]]) + 1
            keys = np.concatenate([keys, new[:take]])
            return keys // n_items, keys % n_items, exposures
        keys = np.concatenate([keys, new])
        seen = np.insert(seen, at, vals)      # vals are sorted and absent from seen: a linear merge
        exposures += m
        yield_rate = max(len(new) / m, 1e-4)
    raise ValueError(f"could not sample {n_interactions} unique (user, item) clicks after {exposures} exposures; "
                     f"the world is too dense: lower n_interactions or raise n_users/n_items")
