"""The Open Bandit Dataset sample: locating, verifying, loading, and the uniform-from-BTS check.

Uses the real files (cache, ``$KGREC_OBD_DIR`` or a pip download of the ``obp==0.5.7`` sdist);
skips only when they cannot be located and cannot be downloaded.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from kgrec.audit.obd import (
    CAMPAIGNS,
    SHA256,
    load_log,
    locate_obd,
    read_log,
    uniform_from_bts,
)
from kgrec.errors import ChecksumError, DataError, FetchError, SchemaError

# clicks in each 10,000-row file (counted once with pandas, independently of kgrec)
CLICKS = {("random", "all"): 38, ("random", "men"): 46, ("random", "women"): 46,
          ("bts", "all"): 42, ("bts", "men"): 69, ("bts", "women"): 46}
N_ITEMS = {"all": 80, "men": 34, "women": 46}


@pytest.fixture(scope="module")
def obd_dir() -> Path:
    try:
        return locate_obd()
    except FetchError as err:
        pytest.skip(f"OBD sample not located and not downloadable: {err}")


@pytest.mark.parametrize(("policy", "campaign"), sorted(CLICKS))
def test_logs_load_with_their_row_counts_and_click_rates(obd_dir: Path, policy: str, campaign: str) -> None:
    log = load_log(policy=policy, campaign=campaign, data_dir=obd_dir)
    assert (log.policy, log.campaign, log.n, log.n_items, log.n_positions) == \
        (policy, campaign, 10_000, N_ITEMS[campaign], 3)
    assert log.item.shape == log.position.shape == log.click.shape == log.propensity.shape == (10_000,)
    assert int(log.click.sum()) == CLICKS[policy, campaign]
    assert log.click_rate == pytest.approx(CLICKS[policy, campaign] / 10_000)
    assert set(np.unique(log.position)) == {0, 1, 2} and 0 <= log.item.min() and log.item.max() < log.n_items
    if policy == "random":
        np.testing.assert_allclose(log.propensity, 1 / N_ITEMS[campaign], rtol=1e-12)
    else:
        assert 0 < log.propensity.min() < 1 / N_ITEMS[campaign] < log.propensity.max() <= 1


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_uniform_from_bts_all(obd_dir: Path) -> None:
    check = uniform_from_bts(campaign="all", data_dir=obd_dir, seed=0)
    assert (check.target_policy, check.logging_policy, check.n_logged, check.n_observed) == \
        ("random", "bts", 10_000, 10_000)
    assert check.observed == pytest.approx(38 / 10_000)
    assert check.observed_ci == pytest.approx(_wilson(38, 10_000), rel=1e-9)
    assert [e.name for e in check.estimates] == ["ips", "snips", "dr"]
    bts = load_log(policy="bts", campaign="all", data_dir=obd_dir)
    w = (1 / 80) / bts.propensity
    reference = {"ips": float(np.mean(w * bts.click)), "snips": float(np.sum(w * bts.click) / np.sum(w))}
    for e in check.estimates:
        assert all(math.isfinite(v) for v in (e.value, e.ci_low, e.ci_high))
        assert e.ci_low <= e.value <= e.ci_high and e.ci_high - e.ci_low > 0
        assert e.ess == pytest.approx(w.sum() ** 2 / (w * w).sum()) and e.clipped == 0
        if e.name in reference:
            assert e.value == pytest.approx(reference[e.name], rel=1e-12)
        assert f"{e.name} {e.value:.4f}" in check.notes and "width" in check.notes
    d = check.to_dict()
    assert d["observed_ci"] == list(check.observed_ci) and len(d["estimates"]) == 3


@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_uniform_from_bts_with_clipping_has_finite_intervals(obd_dir: Path, campaign: str) -> None:
    check = uniform_from_bts(campaign=campaign, data_dir=obd_dir, clip=100.0, n_boot=300)
    bts = load_log(policy="bts", campaign=campaign, data_dir=obd_dir)
    clipped = int(((1 / N_ITEMS[campaign]) / bts.propensity > 100.0).sum())
    for e in check.estimates:
        assert math.isfinite(e.ci_low) and math.isfinite(e.ci_high) and e.ci_low <= e.value <= e.ci_high
        assert e.clipped == clipped > 0 and e.clip == 100.0
    low, high = check.observed_ci
    assert 0 < low < check.observed < high < 1


def test_env_var_and_checksums(obd_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "obd"
    shutil.copytree(obd_dir, copy)
    monkeypatch.setenv("KGREC_OBD_DIR", str(copy))
    assert locate_obd() == copy and load_log(policy="random", campaign="men").path.parent == copy / "random" / "men"
    with open(copy / "bts" / "men" / "men.csv", "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(ChecksumError, match="sha256") as err:
        locate_obd()
    assert err.value.field == "sha256[bts/men/men.csv]"
    shutil.copy(obd_dir / "bts" / "men" / "men.csv", copy / "bts" / "men" / "men.csv")
    (copy / "random" / "all" / "item_context.csv").unlink()
    with pytest.raises(DataError, match="file not found"):
        locate_obd(data_dir=copy)
    with pytest.raises(DataError, match="does not exist"):
        locate_obd(data_dir=tmp_path / "nowhere")


def test_download_into_an_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KGREC_OBD_DIR", raising=False)
    monkeypatch.delenv("KGREC_OFFLINE", raising=False)
    try:
        root = locate_obd()
    except FetchError as err:
        pytest.skip(f"cannot download {err}")
    assert root == tmp_path / "obd"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.csv")) == sorted(SHA256)
    assert [p.name for p in tmp_path.iterdir()] == ["obd"]  # no temporary directories left behind
    monkeypatch.setenv("KGREC_OFFLINE", "1")
    assert locate_obd() == root  # served by the cache with downloads forbidden


def test_offline_without_a_copy_is_a_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("KGREC_OFFLINE", "1")
    monkeypatch.delenv("KGREC_OBD_DIR", raising=False)
    with pytest.raises(FetchError, match="KGREC_OBD_DIR"):
        locate_obd()
    with pytest.raises(SchemaError, match="policy"):
        load_log(policy="linucb")


HEADER = ",timestamp,item_id,position,click,propensity_score,user_feature_0\n"


@pytest.mark.parametrize(("rows", "line", "field", "match"), [
    ("0,t,3,1,0,0.0125,a\n1,t,4,2,x,0.0125,a\n", 3, "click", "'x' is not 0 or 1"),
    ("0,t,3,1,0,0.0125,a\n1,t,4,2,2,0.0125,a\n", 3, "click", "not 0 or 1"),
    ("0,t,80,1,0,0.0125,a\n", 2, "item_id", r"\[0, 80\)"),
    ("0,t,3,0,0,0.0125,a\n", 2, "position", "position ≥ 1"),
    ("0,t,3,1,0,0.0125,a\n1,t,3,1,0,,a\n", 3, "propensity_score", r"\(0, 1\]"),
    ("0,t,3,1,0,0,a\n", 2, "propensity_score", "probability"),
    ("0,t,3.5,1,0,0.5,a\n", 2, "item_id", "integer"),
])
def test_read_log_names_file_line_and_field(tmp_path: Path, rows: str, line: int, field: str, match: str) -> None:
    path = tmp_path / "all.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(DataError, match=match) as err:
        read_log(path, n_items=80)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)


def test_read_log_missing_column_and_item_context(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    path.write_text(",timestamp,item_id,position,propensity_score\n0,t,3,1,0.0125\n")
    with pytest.raises(DataError, match="missing column") as err:
        read_log(path, n_items=80)
    assert (err.value.line, err.value.field) == (1, "click")
    with pytest.raises(DataError, match="item_context.csv"):
        read_log(path)
    (tmp_path / "item_context.csv").write_text(",item_id\n0,0\n1,1\n")
    path.write_text(HEADER + "0,t,1,3,1,0.5,a\n")
    log = read_log(path, policy="random", campaign="all")
    assert (log.n, log.n_items, log.n_positions, int(log.position[0]), int(log.click[0])) == (1, 2, 3, 2, 1)
