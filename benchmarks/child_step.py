"""One child process of a benchmark, timed as a whole: exit status, wall seconds and its own
peak RSS (``os.wait4``), killed with its process group past a timeout (used by
``benchmarks/scale.py``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Step:
    """One child process: its exit status, wall seconds, peak RSS (bytes) and logs."""

    rc: int | None = None
    seconds: float = float("nan")
    rss: float = float("nan")
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def error(self) -> str:
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit {self.rc}"


def run_step(cmd: list[str], env: dict[str, str], logdir: Path, name: str, timeout: float) -> Step:
    """Run ``cmd`` in its own process group, wait with ``os.wait4`` (that child's own rusage), and
    kill the group past ``timeout`` seconds. stdout/stderr go to ``logdir/name.{out,log}``."""
    out_path, err_path = logdir / f"{name}.out", logdir / f"{name}.log"
    step = Step()
    if timeout <= 0:
        step.timed_out, step.seconds, step.stderr = True, 0.0, "no time left in this world's --timeout"
        return step
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        killed_at = None
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                now = time.perf_counter()
                if killed_at is None and now - t0 > timeout:
                    step.timed_out, killed_at = True, now
                    _signal_group(proc.pid, signal.SIGTERM)
                elif killed_at is not None and now - killed_at > 15:
                    _signal_group(proc.pid, signal.SIGKILL)
                time.sleep(0.2)
        except BaseException:   # Ctrl-C: the child is in its own session, so it would not see the signal
            _signal_group(proc.pid, signal.SIGKILL)
            os.waitpid(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        step.seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    step.rc = proc.returncode
    step.rss = usage.ru_maxrss * 1024.0          # kilobytes on Linux
    step.stdout = out_path.read_text(errors="replace")
    step.stderr = err_path.read_text(errors="replace")
    if step.timed_out:
        _signal_group(proc.pid, signal.SIGKILL)  # anything of that run still alive in its group
    return step


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
