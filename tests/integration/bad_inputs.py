"""Bad inputs for the ``kgrec`` CLI: one corrupted copy of the tiny data set (or schema) per case.

Not a test module (no ``test_`` prefix): ``tests/integration/test_bad_inputs.py`` runs the
cases under pytest and ``benchmarks/bad_input_table.py`` prints them as a Markdown table.

This module gathers the suite: the machinery is in ``bad_inputs_core.py`` (the
:class:`Workspace` copy with line-exact editors, :class:`Case`, :class:`Prepared`,
:func:`run_case`), and the cases, registered in checklist order, in ``bad_inputs_data.py``
(1-7), ``bad_inputs_schema.py`` (8-12) and ``bad_inputs_bounds.py`` (13-16). Each case has a
``make`` function that receives a :class:`Workspace` (a fresh copy of
``tests/fixtures/tiny.yaml`` and ``tests/fixtures/tiny/`` in a temporary directory), corrupts
the copy and returns a :class:`Prepared`: the CLI arguments and what the message must name
(file, ``:LINE``, field, the number of rows dropped, other substrings). Line numbers are
computed from the edit that was made, never typed in by hand. The fixtures themselves are
never written.

A case is either an *error* (its exit code is non-zero and stderr is one ``kgrec: ...`` line)
or a *warning* (``warning=True``: the data stays usable, exit 0, a ``kgrec: warning:`` line
with the count of rows dropped; ``--strict`` turns it into exit 8).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the case modules import bad_inputs_core

# in checklist order: the import order is the order of CASES (and of the benchmark's table)
import bad_inputs_data  # noqa: E402,F401,I001  (registers cases 1-7)
import bad_inputs_schema  # noqa: E402,F401  (registers cases 8-12)
import bad_inputs_bounds  # noqa: E402,F401  (registers cases 13-16)
from bad_inputs_core import (CASES, ERROR_CLASS, EXIT_CHECKSUM, EXIT_DATA, EXIT_FETCH, EXIT_INTERNAL,  # noqa: E402
                             EXIT_OK, EXIT_SCHEMA, EXIT_STRICT, FIXTURE_DATA, FIXTURE_SCHEMA, KGREC_ENV,
                             PROGRESS_PREFIX, Case, Prepared, Result, Workspace, case, cli_env, get, matches, run_case)

__all__ = ["CASES", "ERROR_CLASS", "EXIT_CHECKSUM", "EXIT_DATA", "EXIT_FETCH", "EXIT_INTERNAL", "EXIT_OK",
           "EXIT_SCHEMA", "EXIT_STRICT", "FIXTURE_DATA", "FIXTURE_SCHEMA", "KGREC_ENV", "PROGRESS_PREFIX", "Case",
           "Prepared", "Result", "Workspace", "case", "cli_env", "get", "matches", "run_case"]
