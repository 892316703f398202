"""What the CLI says about each bad input (prints a Markdown table).

    .venv/bin/python benchmarks/bad_input_table.py

Runs every case of ``tests/integration/bad_inputs.py`` through ``python -m kgrec`` on a
corrupted copy of the tiny fixture in a temporary directory (``$TMP`` in the table), and
prints the command, the exit code and the first line of stderr (followed by `` … `` and the
last line when a failing run printed more: warnings, progress or a traceback come first).
Warning cases also get a ``--strict`` row. An exit code that differs from the expected one
is flagged; cases marked as known bugs in ``bad_inputs.py`` say so. Must run in < 60 s
(about 25 s: one ~0.4 s subprocess per row). Not a test: nothing here is asserted.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.bad_inputs import CASES, EXIT_STRICT, Result, run_case  # noqa: E402


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
    return f"| {cell(name)} | `{cell(r.command())}` | {code} | {cell(message)} |"


def main() -> int:
    start = time.perf_counter()
    print("| case | command | exit code | message (stderr first line) |")
    print("|---|---|---|---|")
    for c in CASES:
        runs = [(c.id, (), c.exit_code)] + ([(f"{c.id} --strict", ("--strict",), EXIT_STRICT)] if c.warning else [])
        for name, after, expected in runs:
            with tempfile.TemporaryDirectory(prefix="kgrec-bad-") as tmp:
                r = run_case(c, Path(tmp), after=after)
            print(row(name, r, expected), flush=True)
    print(f"\n{len(CASES)} cases in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
