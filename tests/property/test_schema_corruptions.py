"""Property 3 of graph schemas: one random corruption gives the documented outcome.

A ``KgrecInputError`` subclass of the documented class and exit code whose message names the
file, the field and the line, or exactly one ``LoadWarning`` with the right file, line,
field, count and action; never any other exception. Three corruptions also go through
``python -m kgrec data validate``. The corruptions are registered by the
``schema_corruptions_*.py`` modules (see ``schema_outcomes.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgrec.errors import KgrecInputError
from kgrec.graphs import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

import schema_corruptions_data  # noqa: E402,F401  (registers corruptions)
import schema_corruptions_schema  # noqa: E402,F401
import schema_corruptions_warnings  # noqa: E402,F401
from schema_outcomes import CORRUPTIONS, KNOWN_BUGS, check, corrupt  # noqa: E402
from schema_world import NO_SHRINK, REPO, World, worlds  # noqa: E402


# every kind gets its own examples, so the ci profile exercises all of them
PER_KIND = settings(max_examples=max(4, settings.default.max_examples // 6), report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
@PER_KIND
@given(world=worlds(), data=st.data())
def test_corruption_gives_documented_error_or_warning(kind: str, world: World, data) -> None:
    check(*corrupt(world, data, CORRUPTIONS, [kind]))


def _cli(schema_path: Path, data_dir: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGREC_") and k != "XDG_CACHE_HOME"}
    env["KGREC_CACHE_DIR"] = str(root / "cache")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "kgrec", "data", "validate", str(schema_path), "--data-dir",
                           str(data_dir), *extra], capture_output=True, text=True, env=env, cwd=root, timeout=120,
                          check=False)


@pytest.mark.parametrize("kind", ["schema: misspelt key", "data: a row has an extra field", "warning: blank line"])
@settings(max_examples=1, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(world=worlds(), data=st.data())
def test_cli_prints_one_line_and_the_exit_code(kind: str, world: World, data) -> None:
    bad, out = corrupt(world, data, CORRUPTIONS, [kind])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        schema_path, data_dir = bad.write(root)
        expected = [f"kgrec: {w}" for w in load_dataset(schema_path, data_dir=data_dir).warnings] \
            if out.error is None else None
        if out.error is not None:
            with pytest.raises(KgrecInputError) as info:
                load_dataset(schema_path, data_dir=data_dir)
            expected = [f"kgrec: {info.value}"]
        proc = _cli(schema_path, data_dir, root)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.splitlines() == expected, proc.stderr
        assert proc.returncode == (out.error.exit_code if out.error else 0), proc.stderr
        if out.error is None:
            strict = _cli(schema_path, data_dir, root, "--strict")
            assert strict.returncode == 8 and "Traceback" not in strict.stderr, strict.stderr
            assert strict.stderr.splitlines()[:-1] == expected
            assert strict.stderr.splitlines()[-1].startswith("kgrec: strict mode: ")


@NO_SHRINK
@given(world=worlds(), data=st.data())
def test_merge_float_weights(world: World, data) -> None:
    check(*corrupt(world, data, KNOWN_BUGS, ["warning: duplicate edge row merged, float weights"]))
