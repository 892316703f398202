"""What the CLI says about each bad input (prints a Markdown table).

    .venv/bin/python benchmarks/bad_input_table.py

Runs every case of ``tests/integration/bad_inputs.py`` through ``python -m kgrec`` on a
corrupted copy of the tiny fixture in a temporary directory (``$TMP`` in the table), and
prints the command, the exit code, the wall time of the subprocess and the first line of stderr (followed by `` … `` and the
last line when a failing run printed more: warnings, progress or a traceback come first).
Warning cases also get a ``--strict`` row. An exit code that differs from the expected one
is flagged; cases marked as known bugs in ``bad_inputs.py`` say so. Must run in < 60 s
(one ~0.5 s subprocess per row, about 100 rows, run a few at a time; rows print in case
order). Not a test: nothing here is asserted.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.bad_inputs import CASES, EXIT_STRICT, Case, Result, run_case  # noqa: E402

WORKERS = min(4, os.cpu_count() or 1)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def row(name: str, r: Result, expected: int) -> str:
    code = str(r.returncode)
    if r.returncode != expected:
        code += f" (expected {expected})"
    lines = [r.shown(ln) for ln in r.stderr_lines]
    message = lines[0] if lines else "(nothing on stderr)"
    if r.returncode != 0 and len(lines) > 1:  # the error (or the exception) comes last
        message += f" … {lines[-1]}"
    return f"| {cell(name)} | `{cell(r.command())}` | {code} | {r.seconds:.2f} | {cell(message)} |"


def _run(c: Case, after: tuple[str, ...]) -> Result:
    with tempfile.TemporaryDirectory(prefix="kgrec-bad-") as tmp:
        return run_case(c, Path(tmp), after=after)


def main() -> int:
    start = time.perf_counter()
    print("| case | command | exit code | seconds (whole process) | message (stderr first line) |")
    print("|---|---|---|---|---|")
    runs = [r for c in CASES for r in [(c, c.id, (), c.exit_code)]
            + ([(c, f"{c.id} --strict", ("--strict",), EXIT_STRICT)] if c.warning else [])]
    with ThreadPoolExecutor(WORKERS) as pool:  # each run is a subprocess; map keeps the order
        for (c, name, after, expected), r in zip(runs, pool.map(lambda run: _run(run[0], run[2]), runs)):
            print(row(name, r, expected), flush=True)
    print(f"\n{len(CASES)} cases, {len(runs)} rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
