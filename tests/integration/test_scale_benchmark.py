"""``benchmarks/scale.py`` end to end on its tiny world (300 users x 300 items x 5,000
interactions, 2 epochs): generation, ``kgrec train`` and the vector dimension, each in its own
process; the Markdown table has its columns and finite numbers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["world", "users", "items", "interactions", "model", "epochs", "s / epoch (median)",
           "growth of s / epoch", "s / validation", "s to best", "train s (wall)", "peak RSS GB (train)", "dim", "gen s",
           "peak RSS GB (gen)", "status"]
NUMERIC = ["users", "items", "interactions", "epochs", "s / epoch (median)", "s / validation", "s to best", "train s (wall)",
           "peak RSS GB (train)", "dim", "gen s", "peak RSS GB (gen)"]


def table(text: str, first: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    start = next(k for k, ln in enumerate(lines) if ln.startswith(f"| {first} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for ln in lines[start + 2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells)))
    return rows


def test_tiny_world_table(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    env = {**os.environ, "KGREC_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scale.py"), "--sizes", "tiny", "--epochs", "2",
                           "--out", str(out), "--json", str(tmp_path / "rows.json"), "--timeout", "300"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tiny: generat" in proc.stderr and "tiny: training kgrec" in proc.stderr   # progress on stderr
    assert "| world |" not in proc.stderr
    rows = table(proc.stdout, "world")
    assert len(rows) == 1 and list(rows[0]) == COLUMNS
    row = rows[0]
    assert row["world"] == "tiny" and row["model"] == "kgrec" and row["status"].startswith("ok"), row
    values = {k: float(row[k].replace(",", "")) for k in NUMERIC}
    assert all(math.isfinite(v) for v in values.values()), row
    assert (values["users"], values["items"], values["interactions"]) == (300, 300, 5000)
    assert 1 <= values["epochs"] <= 2
    assert values["s / epoch (median)"] > 0 and values["peak RSS GB (train)"] > 0 and values["peak RSS GB (gen)"] > 0
    assert values["dim"] == 256                                                          # 64 + ELSA's 192
    assert values["s to best"] <= float(row["train s (wall)"])
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert saved[0]["world"] == "tiny" and saved[0]["generation_cached"] is False
    assert (out / "tiny" / "run" / "train.json").is_file()                               # --out keeps the runs
