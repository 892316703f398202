"""The data CLI end to end, on real data (MovieLens-100k via the RecBole wheel, HetRec Last.fm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kgrec.cli import main
from cli import kgrec  # noqa: E402  (tests/integration/cli.py)


def test_help_is_fast_and_lists_exit_codes() -> None:
    best = min(_timed(kgrec, "--help") for _ in range(3))
    proc = kgrec("--help")
    assert proc.returncode == 0 and "exit codes" in proc.stdout
    assert best < 0.5, f"kgrec --help took {best:.2f}s"


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def test_cli_module_imports_no_heavy_libraries() -> None:
    code = ("import sys, kgrec.cli; heavy = [m for m in ('torch', 'torch_geometric', 'transformers', 'dowhy', "
            "'captum', 'fairlearn', 'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version() -> None:
    from kgrec import __version__

    proc = kgrec("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"kgrec {__version__}"


def test_info_movielens_counts(movielens, capsys) -> None:
    assert main(["data", "info", "movielens-100k", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == {"user": 943, "item": 1682, "entity": 34628}
    assert info["interactions"] == 100_000
    assert info["relation_groups"]["kg"] == {"relations": 24, "edges": 91_631}
    assert info["linked_items"] == 1598
    assert (info["kg_triples"], info["kg_relation_types"]) == (91_631, 24)
    assert info["sparsity"] == pytest.approx(1 - 100_000 / (943 * 1682))
    assert info["sensitive"] == {"user": ["gender", "age"]}


def test_info_movielens_table(movielens) -> None:
    proc = kgrec("data", "info", "movielens-100k")
    assert proc.returncode == 0, proc.stderr
    for text in ("943", "1,682", "34,628", "100,000", "91,631", "linked items 1,598 / 1,682", "sparsity 93.6953%",
                 "knowledge graph 91,631 triples over 24 relation types"):
        assert text in proc.stdout
    # the two unparsable release years are reported, not silently lost
    assert "ml-100k.item:268: field 'release_year': set to missing 2 row(s)" in proc.stderr


def test_info_lastfm_via_env_var(lastfm) -> None:
    proc = kgrec("data", "info", "lastfm-2k", "--json",
                 env={"KGREC_LASTFM_2K_DIR": str(lastfm.location.directory)})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["nodes"]["user"] == 1892 and info["nodes"]["artist"] == 17632 and info["nodes"]["tag"] == 11946
    assert info["edges"]["(user, listened, artist)"] == 92_834
    assert info["edges"]["(user, friend, user)"] == 25_434
    assert "dropped 1,538 row(s)" in proc.stderr  # tag rows naming artists absent from artists.dat


def test_lastfm_text_is_name_plus_top_tags(lastfm) -> None:
    text = lastfm.nodes["artist"].text
    idx = lastfm.nodes["artist"].index()
    assert text[idx["1"]].startswith("MALICE MIZER. Tags: j-rock, visual kei")
    assert "�" not in "".join(lastfm.nodes["tag"].features["tagValue"])  # tags.dat read as Latin-1


def test_validate_and_list(movielens, fixtures_dir) -> None:
    proc = kgrec("data", "validate", "movielens-100k")
    assert proc.returncode == 0 and "52 edge types incl. reverse" in proc.stdout
    listing = kgrec("data", "list")
    assert listing.returncode == 0 and "movielens-100k" in listing.stdout
    schema_only = kgrec("data", "validate", str(fixtures_dir / "tiny.yaml"), "--schema-only")
    assert schema_only.returncode == 0 and "schema" in schema_only.stdout


def test_strict_fails_on_dropped_rows(movielens) -> None:
    proc = kgrec("data", "info", "movielens-100k", "--strict")
    assert proc.returncode == 8
    assert "ml-100k.item:268" in proc.stderr


def test_fetch_reports_verified_hashes(movielens) -> None:
    proc = kgrec("data", "fetch", "movielens-100k")
    assert proc.returncode == 0
    assert "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff" in proc.stdout


def test_info_synthetic_generates_into_cache_with_truth(tmp_path) -> None:
    env = {"KGREC_CACHE_DIR": str(tmp_path), "KGREC_OFFLINE": "1"}
    proc = kgrec("data", "info", "synthetic", "--json", "--param", "n_users=300", "--param", "n_items=120",
                 "--param", "n_interactions=3000", env=env)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["nodes"]["user"] == 300 and info["nodes"]["item"] == 120 and info["interactions"] == 3000
    assert info["warnings"] == [] and info["sensitive"] == {"user": ["group"]}
    [world] = [p for p in (tmp_path / "synthetic").iterdir() if not p.name.startswith(".")]
    truth = json.loads((world / "truth.json").read_text())
    assert truth["counts"]["interactions"] == 3000 and "sensitive_effect_on_genre_share" in truth
    bad = kgrec("data", "info", "synthetic", "--param", "n_users=5", env=env)
    assert bad.returncode == 3 and "n_users" in bad.stderr and "Traceback" not in bad.stderr
    typo = kgrec("data", "info", "synthetic", "--param", "n_user=500", env=env)
    assert typo.returncode == 3 and "unknown synthetic parameter 'n_user'" in typo.stderr


def test_allow_outside_paths_option(tiny_copy, tmp_path) -> None:
    """A data file that leads out of the data directory is refused (exit 3) unless the
    option allows it."""
    schema, data = tiny_copy
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data / "kg.tsv").rename(elsewhere / "kg.tsv")
    (data / "kg.tsv").symlink_to(elsewhere / "kg.tsv")
    env = {k: v for k, v in os.environ.items() if k != "KGREC_ALLOW_OUTSIDE_PATHS"}
    refused = subprocess.run([sys.executable, "-m", "kgrec", "data", "validate", str(schema), "--data-dir", str(data)],
                             capture_output=True, text=True, env=env, check=False)
    assert refused.returncode == 3 and "--allow-outside-paths" in refused.stderr, refused.stderr
    allowed = subprocess.run([sys.executable, "-m", "kgrec", "data", "validate", str(schema), "--data-dir", str(data),
                              "--allow-outside-paths"], capture_output=True, text=True, env=env, check=False)
    assert allowed.returncode == 0, allowed.stderr
