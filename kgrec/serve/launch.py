"""Start ``kgrec serve`` as a child process on loopback and wait until it answers: for
tests, benchmarks and scripts that drive a real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server child process and its base URL."""

    process: subprocess.Popen
    url: str
    stderr_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` (SIGKILL for a crash) and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.is_file() else ""


def start(run_dir: str | Path, args: Sequence[str] = (), *, work: str | Path, timeout: float = 180.0,
          env: dict[str, str] | None = None) -> Server:
    """``python -m kgrec serve RUN_DIR --host 127.0.0.1 --port P ARGS`` with its stderr in
    ``work/serve-P.stderr``; returns once ``GET /healthz`` answers 200 (raises
    ``RuntimeError`` with the server's stderr if it exits or ``timeout`` passes first)."""
    port = free_port()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    err_path = work / f"serve-{port}.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kgrec", "serve", str(run_dir), "--host", "127.0.0.1",
                                 "--port", str(port), *args], stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, **(env or {})})
    server = Server(proc, f"http://127.0.0.1:{port}", err_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kgrec serve exited with {proc.returncode}:\n{server.stderr()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"kgrec serve did not answer within {timeout:.0f} s:\n{server.stderr()[-3000:]}")


def call(url: str, body: object | bytes | None = None, *, method: str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, dict]:
    """One HTTP request with a JSON (or raw bytes) body; returns (status, parsed JSON body)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else {}
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}
