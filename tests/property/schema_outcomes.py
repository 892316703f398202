"""Corruptions of a schema world and the outcome each must give.

A corruption (registered with :func:`corruption`) edits a deep copy of a valid
:class:`~schema_world.World` and returns the :class:`Outcome` loading it must give: a
``KgrecInputError`` of one class naming the file, field and line, exactly one ``LoadWarning``
(file, line, field, count, action), or (``loose``) anything but a traceback. :func:`check`
loads the corrupted world and asserts that outcome. The corruptions themselves live in
``schema_corruptions_schema.py``, ``schema_corruptions_data.py`` and
``schema_corruptions_warnings.py``; import them to fill :data:`CORRUPTIONS`.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import assume, event
from hypothesis import strategies as st

from kgrec.errors import ChecksumError, DataError, KgrecInputError, SchemaError
from kgrec.graphs import load_dataset
from schema_reference import yaml_line
from schema_world import TableFile, World

@dataclass
class Outcome:
    """What loading a corrupted world must give: an error, one warning, or (loose) no traceback."""

    error: type[KgrecInputError] | None = None
    file: str | None = None        # base name of the file the error or warning names
    field: str | None = None
    line: int | None = None
    text: str = ""                 # a substring of the error message or the warning's reason
    count: int | None = None       # warning: rows affected
    action: str | None = None      # warning: dropped | merged | set to missing
    loose: bool = False            # only: a KgrecInputError naming its file, or a clean load


Corruption = Callable[[World, Any], Outcome]
CORRUPTIONS: dict[str, tuple[Callable[[World], bool], Corruption]] = {}
KNOWN_BUGS: dict[str, tuple[Callable[[World], bool], Corruption]] = {}


def corruption(name: str, applies: Callable[[World], bool] = lambda w: True, bug: bool = False):
    def register(fn: Corruption) -> Corruption:
        (KNOWN_BUGS if bug else CORRUPTIONS)[name] = (applies, fn)
        return fn
    return register


def get(d: dict[str, Any], path: list[str]) -> Any:
    for key in path:
        d = d[key]
    return d


def rename_key(m: dict[str, Any], old: str, new: str) -> None:
    items = list(m.items())
    m.clear()
    m.update((new if k == old else k, v) for k, v in items)


def schema_error(w: World, path: list[str], key: str, text: str) -> Outcome:
    return Outcome(SchemaError, w.schema_file, ".".join([*path, key]), yaml_line(w.text(), [*path, key]), text)


def pick(data, items, label: str):
    return data.draw(st.sampled_from(sorted(items, key=repr)), label=label)

# ---- helpers shared by the corruption modules
def tables_where(w: World, pred: Callable[[TableFile], bool]) -> list[str]:
    return [t.name for t in w.tables.values() if pred(t)]


def single(w: World, owner_prefix: str) -> list[str]:
    """Files read by exactly one schema entry whose name starts with ``owner_prefix``."""
    return [t.name for t in w.tables.values()
            if len(t.owners()) == 1 and next(iter(t.owners())).startswith(owner_prefix)]


def edge_of(w: World, table: str) -> tuple[str, dict[str, Any]]:
    e = next(iter(w.tables[table].owners())).split(".", 1)[1]
    return e, w.schema["edges"][e]


def append_copy(t: TableFile, data, changes: dict[str, str] | None = None) -> int:
    """Append a copy of a random row with some columns changed; returns its line."""
    r = data.draw(st.integers(0, len(t.rows) - 1), label="row copied")
    row = list(t.rows[r])
    for col, value in (changes or {}).items():
        row[t.columns.index(col)] = value
    t.rows.append(row)
    return t.line_of(len(t.rows) - 1)


def warning(t: TableFile, line: int, fld: str, text: str, action: str = "dropped", count: int = 1) -> Outcome:
    return Outcome(None, t.name, fld, line, text, count, action)


# ---- checking an outcome
def check(world: World, out: Outcome) -> KgrecInputError | None:
    """Load the world and check the outcome; returns the error raised, if any."""
    with tempfile.TemporaryDirectory() as tmp:
        schema_path, data_dir = world.write(Path(tmp))
        try:
            ds = load_dataset(schema_path, data_dir=data_dir)
        except KgrecInputError as err:
            assert err.file is not None and err.file in str(err), str(err)
            if out.loose:  # only YAML syntax errors lack a field
                assert err.field or isinstance(err, SchemaError), str(err)
                return err
            assert type(err) is out.error, f"{type(err).__name__}: {err}"
            assert err.exit_code == {SchemaError: 3, DataError: 4, ChecksumError: 5}[out.error]
            assert Path(err.file).name == out.file, str(err)
            assert (err.field, err.line) == (out.field, out.line), str(err)
            assert out.text in err.message, str(err)
            if out.field is not None:
                assert f"field '{out.field}'" in str(err)
            if out.line is not None:
                assert f"{out.file}:{out.line}:" in str(err)
            return err
    if out.loose:
        return None
    assert out.error is None, f"expected {out.error.__name__} ({out.text}), loaded with {ds.warnings}"
    assert len(ds.warnings) == 1, ds.warnings
    got = ds.warnings[0]
    assert (Path(got.file).name, got.line, got.field, got.count, got.action) == \
        (out.file, out.line, out.field, out.count, out.action), str(got)
    assert out.text in got.reason, str(got)
    return None


def corrupt(world: World, data, table: dict[str, tuple[Callable[[World], bool], Corruption]],
            names: list[str] | None = None) -> tuple[World, Outcome]:
    kinds = [k for k, (applies, _) in table.items() if (names is None or k in names) and applies(world)]
    assume(kinds)
    kind = data.draw(st.sampled_from(kinds), label="corruption")
    event(kind)
    bad = copy.deepcopy(world)
    return bad, table[kind][1](bad, data)
