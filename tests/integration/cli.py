"""The CLI as the integration tests run it: ``python -m kgrec ARGS`` in a child process,
from the repository root, with extra environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def kgrec(*args: str, env: dict[str, str] | None = None, timeout: float | None = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgrec", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, cwd=REPO, timeout=timeout)


def trimmed_plan(tmp_path: Path, **thresholds: dict) -> Path:
    """The synthetic world's audit plan with fewer bootstrap draws, refutation simulations,
    explained pairs and re-ranking strengths (for speed), and ``thresholds`` overridden."""
    import yaml

    raw = yaml.safe_load((REPO / "audit" / "synthetic.yaml").read_text())
    raw.update(n_boot=50, refutation_simulations=5)
    raw["explanations"].update(sample=5)
    raw["mitigation"] = {"strengths": [0.0, 0.5, 1.0], "pool": 50, "n_boot": 20}
    raw["thresholds"].update(thresholds)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
