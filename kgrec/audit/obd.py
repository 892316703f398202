"""The Open Bandit Dataset sample (Saito et al. 2021): locate it, load a log, check OPE on it.

The sample ships inside the PyPI sdist ``obp==0.5.7`` under ``obp/dataset/obd/``:
``{random,bts}/{all,men,women}/{campaign}.csv`` (10,000 rows each) plus ``item_context.csv``.
``random/`` was logged by a uniform-random policy, ``bts/`` by Bernoulli Thompson Sampling, on
the same campaigns (the full data set was collected with traffic split between the two
policies over the same week), so an off-policy estimate of the random policy from the BTS log
can be compared with the random log's observed click rate: the standard real-data test of
IPS/SNIPS/DR.

Propensities: ``propensity_score`` is the probability that the logging policy put this item
in this position (a per-position action distribution over the campaign's items, obp's
``action_dist[:, :, position]``); the random logs hold ``1/n_items`` (1/80, 1/34, 1/46), so the
uniform target's propensity of any logged (item, position) is ``1/n_items``.

The reverse check (BTS's value from the random log) is not implemented: it needs
``π_bts(a|x)`` for the random log's actions, and the BTS log only gives it for BTS's own
logged action at that time; BTS's posterior changed as it was updated in production, so
rebuilding its action distribution from a fixed prior would not be the policy that ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kgrec.audit.offpolicy import OPEEstimate, off_policy_value, wilson
from kgrec.errors import ChecksumError, DataError, FetchError, SchemaError
from kgrec.atomic import atomic_directory
from kgrec.graphs.sources import cache_root, sha256_file

ENV_VAR = "KGREC_OBD_DIR"
REQUIREMENT = "obp==0.5.7"
SDIST_SHA256 = "3060d67fedfcfadf1e7a6f2608987f74412b5eb74d2c567edeb147595c68f2a0"
POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
_PREFIX = "obp/dataset/obd/"
#: sha256 of every file, relative to the data directory (checked once against obp 0.5.7's sdist).
SHA256: dict[str, str] = {
    "bts/all/all.csv": "0ad874e4dbf6902f0845dd478ad8dde5ef6903583d3ffaace78411bdad064106",
    "bts/all/item_context.csv": "5d4359ba1cfa3ae88f0f1bae66bd633859fe6323817183632ee57b83539d9153",
    "bts/men/item_context.csv": "3b411ed6b0471316321a6b93f4f756bb25888eac6218cd71d0b603d41d85732d",
    "bts/men/men.csv": "db6d1f7ed2d591ba521533e45286d4c1fba7fe57a8ad2e80342210335f43c527",
    "bts/women/item_context.csv": "a56295bad066a558eb783055afd9279f5f4e209a4776eafc22151c53f0ac89d4",
    "bts/women/women.csv": "e5d1b49a39b608585a2f3014a3f54970430cd37a495c1b73fceb85cdf428a5b8",
    "random/all/all.csv": "7168295b6e0a9eabcf3392320a5dd434e542b68e705d5cd9491499af589812f1",
    "random/all/item_context.csv": "eba04cc23d5f130a93ff174c5392986882b94c3839433cb8143870eaa6221358",
    "random/men/item_context.csv": "6d855c2b7e917d0448d71bbe62c023147495882c0fdc8c41e86fef86abf9fe09",
    "random/men/men.csv": "ede6d08c6877f99cd3770f7d09e26c738e6aa6de4445ccccfb1356ba5d06b1eb",
    "random/women/item_context.csv": "b1ca4905f97703d196004f2ad4552c1e90c2afad8b50688d333b0d2dc0b33147",
    "random/women/women.csv": "e65f3bd3beb17664fa69cc129bf7bf852a775f8ffa630506e505fc905315bb34",
}
_COLUMNS = ("item_id", "position", "click", "propensity_score")


def _verify(directory: Path, origin: str) -> None:
    for rel, expected in SHA256.items():
        path = directory / rel
        if not path.is_file():
            raise DataError(f"file not found ({origin}); expected the layout {{random,bts}}/{{all,men,women}}/"
                            f"*.csv of {REQUIREMENT}'s obp/dataset/obd/", file=str(path), field="data_dir")
        if (digest := sha256_file(path)) != expected:
            raise ChecksumError(f"sha256 is {digest}, expected {expected} ({origin}); the file is corrupt or "
                                f"not the {REQUIREMENT} sample", file=str(path), field=f"sha256[{rel}]")


def _download(target: Path) -> None:
    """pip-download the sdist, check it, extract only the OBD files, verify, move into ``target``."""
    print(f"kgrec: fetching the Open Bandit Dataset sample (pip sdist {REQUIREMENT}) into {target} ...",
          file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp_name:
        tmp = Path(tmp_name)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--ignore-requires-python", "--quiet", "--disable-pip-version-check", REQUIREMENT, "-d", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        archives = sorted(tmp.glob("obp-*.tar.gz"))
        if proc.returncode != 0 or not archives:
            reason = (proc.stderr.strip().splitlines() or ["no archive downloaded"])[-1]
            raise FetchError(f"pip download {REQUIREMENT} failed: {reason}; set {ENV_VAR} to a directory with "
                             f"the files", field="download")
        archive = archives[0]
        if (digest := sha256_file(archive)) != SDIST_SHA256:
            raise ChecksumError(f"sha256 is {digest}, expected {SDIST_SHA256}", file=str(archive), field="download")
        try:
            with tarfile.open(archive, "r:gz") as tar, atomic_directory(target) as out:
                found: set[str] = set()
                for member in tar.getmembers():
                    inner = member.name.split("/", 1)[-1]  # drop the "obp-0.5.7/" root
                    rel = inner[len(_PREFIX):] if inner.startswith(_PREFIX) else None
                    if rel not in SHA256 or not member.isfile() or rel in found:
                        continue
                    dest = out / rel  # a path from our own table, never from the archive
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    assert src is not None
                    with src, open(dest, "wb") as fh:
                        fh.write(src.read())
                    found.add(rel)
                if missing := sorted(set(SHA256) - found):
                    raise FetchError(f"the sdist lacks {missing} under {_PREFIX}", file=str(archive),
                                     field="download")
                _verify(out, f"downloaded {REQUIREMENT}")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise FetchError(f"cannot read the sdist ({err})", file=str(archive), field="download") from None


def locate_obd(*, data_dir: str | Path | None = None, download_ok: bool | None = None) -> Path:
    """The directory holding ``{random,bts}/{all,men,women}/*.csv``, every file sha256-verified.

    Order: ``data_dir``; ``$KGREC_OBD_DIR``; the cache ``cache_root()/"obd"``; a download of
    the ``obp==0.5.7`` sdist (only the OBD CSVs are extracted; the sdist and each CSV are checked
    against :data:`SDIST_SHA256` / :data:`SHA256`; the cache directory appears atomically).
    ``download_ok`` defaults to ``KGREC_OFFLINE`` not being set. Raises ``DataError`` (missing
    directory or file), ``ChecksumError`` (wrong hash) or ``FetchError`` (no copy, no download).
    """
    origin = "data_dir"
    if data_dir is None and os.environ.get(ENV_VAR):
        data_dir, origin = os.environ[ENV_VAR], f"${ENV_VAR}"
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if not directory.is_dir():
            raise DataError(f"data directory does not exist ({origin})", file=str(directory), field="data_dir")
        _verify(directory, origin)
        return directory
    target = cache_root() / "obd"
    if target.is_dir() and all((target / rel).is_file() for rel in SHA256):
        _verify(target, "cache")
        return target
    if download_ok is None:
        download_ok = os.environ.get("KGREC_OFFLINE", "") not in ("1", "true", "yes")
    if not download_ok:
        raise FetchError(f"no cached copy of the Open Bandit Dataset sample and downloads are off "
                         f"(KGREC_OFFLINE); set {ENV_VAR} to a directory with the files", field="data_dir")
    _download(target)
    _verify(target, "cache")
    return target


@dataclass(frozen=True)
class BanditLog:
    """One OBD log: ``n`` rows of (item, position, click, propensity).

    ``item`` in ``[0, n_items)``; ``position`` 0-based (the file's 1..3 minus 1); ``click`` in
    {0, 1}; ``propensity`` = ``π_0(item | position)`` in ``(0, 1]``. All arrays shape ``(n,)``.
    """

    policy: str
    campaign: str
    n: int
    item: np.ndarray = field(repr=False)
    position: np.ndarray = field(repr=False)
    click: np.ndarray = field(repr=False)
    propensity: np.ndarray = field(repr=False)
    n_items: int
    n_positions: int
    path: Path

    @property
    def click_rate(self) -> float:
        return float(self.click.mean())


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def read_log(path: str | Path, *, n_items: int | None = None, policy: str = "", campaign: str = "") -> BanditLog:
    """Parse one OBD log CSV (no hash check). ``n_items`` defaults to the rows of the
    ``item_context.csv`` beside it. ``DataError`` with file, line (1 = header) and field for a
    missing column or a bad value."""
    import pandas as pd

    path = Path(path)
    if n_items is None:
        ctx = path.parent / "item_context.csv"
        try:
            n_items = len(pd.read_csv(ctx, usecols=["item_id"]))
        except FileNotFoundError:
            raise DataError("file not found (needed for the number of items)", file=str(ctx)) from None
        except ValueError as err:
            raise DataError(f"cannot read ({err})", file=str(ctx), field="item_id") from None
    try:
        header = pd.read_csv(path, nrows=0).columns
    except FileNotFoundError:
        raise DataError("file not found", file=str(path)) from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read a CSV header ({err})", file=str(path), line=1) from None
    for col in _COLUMNS:
        if col not in header:
            raise DataError(f"missing column (have {', '.join(map(str, header))})", file=str(path), line=1,
                            field=col)
    raw = pd.read_csv(path, usecols=list(_COLUMNS), dtype=str, keep_default_na=False)
    if raw.empty:
        raise DataError("no rows", file=str(path), line=2)
    values: dict[str, np.ndarray] = {}
    for col in _COLUMNS:
        num = pd.to_numeric(raw[col].str.strip(), errors="coerce").to_numpy(dtype=float)
        if col == "propensity_score":
            bad = ~(np.isfinite(num) & (num > 0) & (num <= 1))
            what = "a probability in (0, 1]"
        else:
            bad = ~np.isfinite(num) | (num != np.round(num))
            if col == "item_id":
                bad |= (num < 0) | (num >= n_items)
                what = f"an integer item id in [0, {n_items})"
            elif col == "position":
                bad |= num < 1
                what = "an integer position ≥ 1"
            else:
                bad |= (num != 0) & (num != 1)
                what = "0 or 1"
        if bad.any():
            i = _first_bad(bad)
            raise DataError(f"value {raw[col].iloc[i]!r} is not {what}", file=str(path), line=i + 2, field=col)
        values[col] = num
    position = values["position"].astype(np.int64) - 1
    return BanditLog(policy=policy, campaign=campaign, n=len(raw), item=values["item_id"].astype(np.int64),
                     position=position, click=values["click"].astype(np.int64),
                     propensity=values["propensity_score"], n_items=int(n_items),
                     n_positions=int(position.max()) + 1, path=path)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SchemaError(f"must be one of {', '.join(allowed)}, got {value!r}", field=name)


def load_log(*, policy: str = "bts", campaign: str = "all", data_dir: str | Path | None = None) -> BanditLog:
    """Locate the data (:func:`locate_obd`) and read ``{policy}/{campaign}/{campaign}.csv``."""
    _check_choice("policy", policy, POLICIES)
    _check_choice("campaign", campaign, CAMPAIGNS)
    root = locate_obd(data_dir=data_dir)
    return read_log(root / policy / campaign / f"{campaign}.csv", policy=policy, campaign=campaign)


def click_model(*, item: np.ndarray, position: np.ndarray, click: np.ndarray, n_items: int, n_positions: int,
                prior_strength: float = 100.0) -> np.ndarray:
    """Smoothed click rate per (item, position), shape ``(n_items, n_positions)``.

    ``q̂(a, p) = (clicks(a, p) + m·c̄_p) / (rows(a, p) + m)``: each cell shrunk towards its
    position's click rate ``c̄_p`` with ``m = prior_strength`` pseudo-rows (a Beta prior with mean
    ``c̄_p``). With click rates near 0.4% a cell needs ~250 rows to expect one click, so
    ``m = 100`` keeps the many thinly-logged cells near their position's rate. Cells never
    logged get ``c̄_p``. Fixed a priori, not tuned on the comparison.
    """
    shape = (n_items, n_positions)
    rows = np.zeros(shape)
    clicks = np.zeros(shape)
    np.add.at(rows, (item, position), 1.0)
    np.add.at(clicks, (item, position), click)
    pos_rows, pos_clicks = rows.sum(axis=0), clicks.sum(axis=0)
    overall = clicks.sum() / max(rows.sum(), 1.0)
    prior = np.where(pos_rows > 0, pos_clicks / np.maximum(pos_rows, 1.0), overall)
    return (clicks + prior_strength * prior) / (rows + prior_strength)


def cross_fitted(fold: np.ndarray, *, item: np.ndarray, position: np.ndarray, click: np.ndarray, n_items: int,
                 n_positions: int, target: Callable[[np.ndarray, np.ndarray], np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(q̂(a_i, p_i), q̂ of the target policy's choice for row i)``, each row's q̂ the
    :func:`click_model` table fit on the rows of the other folds (``fold`` int [n]);
    ``target(table, rows)`` reads the target policy's q̂ for the boolean mask ``rows``."""
    q_logged, q_target = np.empty(len(click)), np.empty(len(click))
    for k in np.unique(fold):
        rows, train = fold == k, fold != k
        table = click_model(item=item[train], position=position[train], click=click[train], n_items=n_items,
                            n_positions=n_positions)
        q_logged[rows] = table[item[rows], position[rows]]
        q_target[rows] = target(table, rows)
    return q_logged, q_target


def _cross_fitted_model(log: BanditLog, *, seed: int, folds: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(q̂(a_i, p_i), mean_a q̂(a, p_i))`` with q̂ fit on the other fold(s) for each row."""
    fold = np.random.default_rng(seed).permutation(log.n) % folds
    return cross_fitted(fold, item=log.item, position=log.position, click=log.click, n_items=log.n_items,
                        n_positions=log.n_positions,  # uniform target: Σ_a (1/n_items) q̂(a, p)
                        target=lambda table, rows: table.mean(axis=0)[log.position[rows]])


@dataclass(frozen=True)
class OBDCheck:
    """OPE estimates of ``target_policy`` from ``logging_policy``'s log, and its observed value.

    ``observed`` is the click rate of the target policy's own log, ``observed_ci`` its Wilson
    score interval (at the estimates' ``ci_level``); ``notes`` states the CI widths.
    """

    estimates: list[OPEEstimate]
    observed: float
    observed_ci: tuple[float, float]
    target_policy: str
    logging_policy: str
    n_logged: int
    n_observed: int
    notes: str

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["estimates"] = [e.to_dict() for e in self.estimates]
        out["observed_ci"] = list(self.observed_ci)
        return out


def _share(width: float, value: float) -> str:
    return f"{width / value:.0%}" if value > 0 else "n/a"


def uniform_from_bts(*, campaign: str = "all", data_dir: str | Path | None = None, clip: float | None = None,
                     seed: int = 0, ci_level: float = 0.95, n_boot: int = 1000) -> OBDCheck:
    """Estimate the uniform-random policy's click rate from the Bernoulli-TS log and compare.

    Target ``π_t(a | p) = 1/n_items`` for every item at every position, so
    ``w_i = (1/n_items) / propensity_i``; the random log's propensity column is checked to be
    exactly that. IPS/SNIPS/DR come from :func:`~kgrec.audit.offpolicy.off_policy_value` (bootstrap
    percentile CIs, ``n_boot`` resamples, ``seed``); DR's reward model is :func:`click_model`
    cross-fitted over 2 random folds (each row's ``q̂`` comes from the other half, so a row's
    own click never enters its own correction term). The observed value is the random log's
    click rate with a Wilson score interval (:meth:`scipy.stats.binomtest.proportion_ci`),
    which keeps good coverage for rates near 0 where the Wald interval does not.
    """
    _check_choice("campaign", campaign, CAMPAIGNS)
    if clip is not None and not clip > 0:
        raise SchemaError(f"must be positive, got {clip!r}", field="clip")
    root = locate_obd(data_dir=data_dir)
    bts = read_log(root / "bts" / campaign / f"{campaign}.csv", policy="bts", campaign=campaign)
    rnd = read_log(root / "random" / campaign / f"{campaign}.csv", policy="random", campaign=campaign)
    p_uniform = 1.0 / bts.n_items
    if rnd.n_items != bts.n_items or not np.allclose(rnd.propensity, p_uniform, rtol=1e-9, atol=0):
        raise DataError(f"the random log's propensities are not 1/{bts.n_items}", file=str(rnd.path),
                        field="propensity_score")
    estimates = off_policy_value(reward=bts.click.astype(float), logging_propensity=bts.propensity,
                                 target_propensity=np.full(bts.n, p_uniform),
                                 reward_model=_cross_fitted_model(bts, seed=seed), clip=clip,
                                 ci_level=ci_level, n_boot=n_boot, seed=seed)
    clicks = int(rnd.click.sum())
    observed, observed_ci = clicks / rnd.n, wilson(clicks, rnd.n, ci_level)
    obs_width = observed_ci[1] - observed_ci[0]
    weights = p_uniform / bts.propensity
    parts = [f"{e.name} {e.value:.4f} [{e.ci_low:.4f}, {e.ci_high:.4f}] width {e.ci_width:.4f} "
             f"({_share(e.ci_width, e.value)} of the value, {e.ci_width / obs_width:.1f}x the observed width; "
             f"{'overlaps' if e.ci_low <= observed_ci[1] and observed_ci[0] <= e.ci_high else 'misses'} it)"
             for e in estimates]
    ess = estimates[0].ess
    notes = (f"{campaign}: uniform policy (1/{bts.n_items} per position) estimated from {bts.n:,} BTS rows "
             f"({int(bts.click.sum())} clicks); observed {observed:.4f} [{observed_ci[0]:.4f}, {observed_ci[1]:.4f}] "
             f"width {obs_width:.4f} ({_share(obs_width, observed)} of the rate) from {rnd.n:,} random rows "
             f"({clicks} clicks). " + "; ".join(parts) +
             f". ESS {ess:,.1f} of {bts.n:,}; weights {weights.min():.3g}..{weights.max():.3g}"
             f"{'' if clip is None else f', {estimates[0].clipped} clipped at {clip:g}'}"
             f"{'' if ess >= 0.01 * bts.n else ': a handful of rows carry the estimate, so its bootstrap CI is unreliable (try clip)'}"
             f". With this few clicks every interval is wide: a difference smaller than about one CI width is "
             f"not detectable on this sample.")
    return OBDCheck(estimates=estimates, observed=observed, observed_ci=observed_ci, target_policy="random",
                    logging_policy="bts", n_logged=bts.n, n_observed=rnd.n, notes=notes)
