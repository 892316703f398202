"""What the CLI says about each run-directory hardening case (prints a Markdown table).

    .venv/bin/python benchmarks/run_dir_cases.py

Runs every case of ``tests/integration/run_dir_cases.py`` (locks, pickle payloads, corrupt
runs, --resume conflicts, stop reasons, load warnings, --threads, a closed pipe) through
``python -m kgrec`` in a temporary directory, after training one small synthetic run, and
prints the command, the exit code, the wall time of the command and its message. Not a
test: nothing here is asserted (``tests/integration/test_run_dir_hardening.py`` is).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.run_dir_cases import CASES, train_small  # noqa: E402


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kgrec-rundir-") as root:
        root_path = Path(root)
        env = {"KGREC_CACHE_DIR": str(root_path / "cache")}
        finished = root_path / "finished" / "lgcn"
        train_small(finished, env)
        print("| case | command | exit (expected) | seconds | message |")
        print("|---|---|---|---|---|")
        for i, case in enumerate(CASES):
            tmp = root_path / f"case{i}"
            tmp.mkdir()
            out = case.run(tmp, env, finished)
            lines = out.error_lines() or [ln for ln in out.stderr.splitlines() if ln.strip()][-1:]
            message = lines[0] if lines else "(nothing on stderr)"
            if case.exit_code == 0 and case.needles:
                message = next((ln for ln in out.stderr.splitlines() if case.needles[0] in ln), message)
            if out.facts:
                message += f" — {out.facts}" if len(str(out.facts)) < 160 else ""
            command = " ".join(out.command).replace(root, "$TMP")
            code = f"{out.returncode} ({case.exit_code})"
            print(f"| {cell(case.id)} | `{cell(command)}` | {code} | {out.seconds:.2f} | "
                  f"{cell(message.replace(root, '$TMP'))} |", flush=True)
    print(f"\n{len(CASES)} cases in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
