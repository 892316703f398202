"""Find schemas by name: ``$KGREC_GRAPHS_DIR``, then ``./graphs``, then the repository's ``graphs/``."""

from __future__ import annotations

import difflib
import errno
import os
from pathlib import Path

from kgrec.errors import SchemaError


def graphs_dirs() -> list[Path]:
    dirs: list[Path] = []
    if os.environ.get("KGREC_GRAPHS_DIR"):
        dirs.append(Path(os.environ["KGREC_GRAPHS_DIR"]).expanduser())
    dirs.append(Path.cwd() / "graphs")
    dirs.append(Path(__file__).resolve().parents[2] / "graphs")
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def list_schemas() -> dict[str, Path]:
    """Schema name (file stem) → path, first directory wins."""
    found: dict[str, Path] = {}
    for d in graphs_dirs():
        for path in sorted(d.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def schema_path(name_or_path: str | os.PathLike) -> Path:
    """A path to a YAML file, or the name of a schema in a graphs directory."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if candidate.is_dir():
            raise SchemaError("is a directory, not a schema file", file=str(candidate))
        if not candidate.is_file():
            loop = False
            try:
                candidate.resolve(strict=True)
            except (OSError, RuntimeError) as err:
                loop = isinstance(err, RuntimeError) or getattr(err, "errno", None) == errno.ELOOP
            raise SchemaError("schema file is a symlink loop" if loop else "schema file not found",
                              file=str(candidate))
        return candidate
    known = list_schemas()
    if str(name_or_path) in known:
        return known[str(name_or_path)]
    hint = difflib.get_close_matches(str(name_or_path), list(known), n=1)
    raise SchemaError(f"unknown data set '{name_or_path}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                      + f"; known: {', '.join(known) or 'none'} in {', '.join(map(str, graphs_dirs()))}",
                      field="name")
