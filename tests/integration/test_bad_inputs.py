"""Bad inputs through the real CLI: one clear line, the right exit code, never a traceback.

The cases live in ``bad_inputs.py`` (shared with ``benchmarks/bad_input_table.py``). Each one
corrupts a fresh copy of the tiny fixture in ``tmp_path`` and runs ``python -m kgrec`` in a
subprocess with a private ``KGREC_CACHE_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bad_inputs as bi  # noqa: E402
from bad_inputs import CASES, Case, Result, run_case  # noqa: E402


def _param(c: Case):
    return pytest.param(c, id=c.id)


ERRORS = [c for c in CASES if not c.warning]
WARNINGS = [c for c in CASES if c.warning]
DEBUG_CASES = ["missing-data-file", "unknown-node-type", "checksum-mismatch", "fetch-offline", "extra-field"]


def _explain(r: Result) -> str:
    return f"\n$ {r.command()}\nexit {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"


def _assert_names_everything(line: str, r: Result) -> None:
    missing = [e.pattern if hasattr(e, "pattern") else e for e in r.prepared.expectations()
               if not bi.matches(line, e)]
    assert not missing, f"message lacks {missing}: {line!r}" + _explain(r)


# --------------------------------------------------------------------------- checks
def test_clean_copy_is_valid(tmp_path: Path) -> None:
    """The uncorrupted copy validates cleanly, so each case's failure is the corruption's doing."""
    clean = Case("clean", "-", "unmodified copy", lambda ws: bi.Prepared(ws.validate()), bi.EXIT_OK)
    r = run_case(clean, tmp_path)
    assert r.returncode == 0 and r.stderr == "", _explain(r)
    assert "0 warning(s)" in r.stdout, _explain(r)


def test_cases_cover_the_checklist() -> None:
    groups = {c.group.split()[0] for c in CASES}
    assert groups >= {str(i) for i in range(1, 17)}
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in ERRORS])
def test_error_is_one_clear_line(case: Case, tmp_path: Path) -> None:
    r = run_case(case, tmp_path)
    assert "Traceback" not in r.stderr, _explain(r)
    assert r.returncode == case.exit_code, _explain(r)
    # one error line; the only other line allowed is download progress ("kgrec: fetching ...")
    lines = [ln for ln in r.stderr_lines if not ln.startswith(bi.PROGRESS_PREFIX)]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}" + _explain(r)
    assert r.stderr_lines[-1] == lines[0], "the error is not the last line" + _explain(r)
    assert lines[0].startswith("kgrec: ") and not lines[0].startswith("kgrec: warning:"), _explain(r)
    _assert_names_everything(lines[0], r)
    if case.max_seconds is not None:
        assert r.seconds < case.max_seconds, f"took {r.seconds:.1f} s" + _explain(r)


@pytest.mark.parametrize("case", [_param(c) for c in WARNINGS])
def test_warning_keeps_data_and_counts_rows(case: Case, tmp_path: Path) -> None:
    r = run_case(case, tmp_path)
    assert "Traceback" not in r.stderr, _explain(r)
    assert r.returncode == 0, _explain(r)
    lines = r.stderr_lines
    assert lines and all(ln.startswith("kgrec: warning: ") for ln in lines), _explain(r)
    hits = [ln for ln in lines if all(bi.matches(ln, e) for e in r.prepared.expectations())]
    assert hits, f"no warning line names {r.prepared.expectations()}" + _explain(r)
    # the command still reports the (usable) data: `validate` says ok, `info` prints its table
    assert "ok (" in r.stdout or "warnings: " in r.stdout, _explain(r)


@pytest.mark.parametrize("case", [_param(c) for c in WARNINGS])
def test_strict_turns_warning_into_exit_8(case: Case, tmp_path: Path) -> None:
    r = run_case(case, tmp_path, after=("--strict",))
    assert "Traceback" not in r.stderr, _explain(r)
    assert r.returncode == bi.EXIT_STRICT, _explain(r)
    lines = r.stderr_lines
    # the warnings are still listed, then exactly one error line, last
    assert all(ln.startswith("kgrec: warning: ") for ln in lines[:-1]), _explain(r)
    assert lines[-1].startswith("kgrec: strict mode: "), _explain(r)
    location = r.prepared.expectations()[:2]  # FILE:LINE and field 'FIELD' of the first warning
    assert all(bi.matches(lines[-1], e) for e in location), _explain(r)


@pytest.mark.parametrize("case_id", DEBUG_CASES)
def test_debug_shows_traceback(case_id: str, tmp_path: Path) -> None:
    case = bi.get(case_id)
    r = run_case(case, tmp_path, before=("--debug",))
    assert r.returncode == bi.EXIT_INTERNAL, _explain(r)  # the exception propagates out of python
    assert "Traceback (most recent call last)" in r.stderr, _explain(r)
    assert f"kgrec.errors.{bi.ERROR_CLASS[case.exit_code]}" in r.stderr_lines[-1], _explain(r)


@pytest.mark.parametrize("case_id", ["file-dotdot-path", "file-symlink-escape"])
def test_outside_paths_allowed_explicitly(case_id: str, tmp_path: Path) -> None:
    """KGREC_ALLOW_OUTSIDE_PATHS=1 lets a data file lie outside the data directory."""
    r = run_case(bi.get(case_id), tmp_path, env={"KGREC_ALLOW_OUTSIDE_PATHS": "1"})
    assert r.returncode == 0 and r.stderr == "", _explain(r)
    assert "0 warning(s)" in r.stdout, _explain(r)


def test_fixtures_untouched(tmp_path: Path) -> None:
    """Running a case never writes the shared fixtures (workspaces copy them)."""
    before = {p: p.read_bytes() for p in [bi.FIXTURE_SCHEMA, *sorted(bi.FIXTURE_DATA.iterdir())]}
    for case_id in ("empty-file", "yaml-key-typo-edge"):
        bi.get(case_id).make(bi.Workspace(tmp_path / case_id))
    assert {p: p.read_bytes() for p in before} == before
