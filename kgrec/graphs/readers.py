"""Read delimited data files (RecBole atomic, TSV, CSV) into string tables.

Every problem is a :class:`~kgrec.errors.DataError` naming ``file:line`` and the field.
Values stay strings here; :mod:`kgrec.graphs.build` converts and validates them.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import DataError, LoadWarning
from kgrec.graphs.schema import FileSpec


@dataclass
class Table:
    """A file's rows as strings; ``lines[r]`` is the file line of the ``r``-th row kept."""

    path: Path
    frame: pd.DataFrame
    first_line: int

    @property
    def lines(self) -> np.ndarray:
        return self.first_line + self.frame.index.to_numpy()

    def column(self, name: str, field: str) -> np.ndarray:
        """The values of ``name`` as a string array; a missing column is a header error."""
        if name not in self.frame.columns:
            raise DataError(f"column '{name}' not in header (found: {', '.join(map(str, self.frame.columns))})",
                            file=str(self.path), line=1 if self.first_line > 1 else None, field=field)
        return self.frame[name].to_numpy(dtype=object)


def _decode(path: Path, spec: FileSpec) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", file=str(path), field=spec.name) from None
    except IsADirectoryError:
        raise DataError("is a directory, not a data file", file=str(path), field=spec.name) from None
    except OSError as err:
        what = "symlink loop" if err.errno == errno.ELOOP else f"cannot read: {err.strerror or err}"
        raise DataError(what, file=str(path), field=spec.name) from None
    if not data.strip():
        raise DataError("file is empty", file=str(path), line=1, field=spec.name)
    try:
        return data.decode(spec.encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(f"not valid {spec.encoding} at byte {err.start} ({data[err.start:err.start + 1]!r}); "
                        f"set 'encoding' for this file in the schema", file=str(path), line=line,
                        field="encoding") from None
    except UnicodeError as err:  # codecs such as punycode raise the base class
        raise DataError(f"cannot decode as {spec.encoding}: {err}", file=str(path), field="encoding") from None


def read_table(directory: Path, spec: FileSpec, warnings: list[LoadWarning] | None = None) -> Table:
    """Read ``directory/spec.name`` as declared by ``spec``.

    Header checks: atomic headers are ``name:type``; a declared ``columns`` list must equal
    the header when the file has one. Rows with the wrong number of fields are errors;
    blank lines are dropped and counted in ``warnings``.
    """
    path = Path(directory) / spec.name
    text = _decode(path, spec)
    if text.startswith("\ufeff"):
        text = text[1:]
    first_line = 1
    if spec.header:
        header_line, _, body = text.partition("\n")
        names = [h.strip() for h in header_line.rstrip("\r").split(spec.sep)]
        if spec.format == "atomic":
            bad = [h for h in names if ":" not in h]
            if bad:
                raise DataError(f"atomic header fields look like 'name:type', got '{bad[0]}'", file=str(path),
                                line=1, field=bad[0])
            names = [h.split(":", 1)[0] for h in names]
        if spec.columns is not None and tuple(names) != spec.columns:
            raise DataError(f"header {names} does not match the schema's columns {list(spec.columns)}",
                            file=str(path), line=1, field="columns")
        first_line = 2
    else:
        names, body = list(spec.columns or ()), text
    if len(set(names)) != len(names):
        raise DataError("duplicate column names in header", file=str(path), line=1, field="header")
    if not body.strip():
        raise DataError("file has a header but no rows", file=str(path), line=first_line, field=spec.name)
    lines = body.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last row; it does not start one
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    blank = np.fromiter((not line.strip() for line in lines), dtype=bool, count=len(lines))
    fields = np.fromiter((line.count(spec.sep) + 1 for line in lines), dtype=np.int64, count=len(lines))
    wrong = (fields != len(names)) & ~blank
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise DataError(f"expected {len(names)} fields, saw {fields[row]} ({int(wrong.sum()):,} such rows; "
                        f"fields are separated by {spec.sep!r} and may not contain it)",
                        file=str(path), line=first_line + row,
                        field=names[fields[row]] if fields[row] < len(names) else "row")
    if blank.any() and warnings is not None:
        warnings.append(LoadWarning(str(path), first_line + int(np.flatnonzero(blank)[0]), "row",
                                    "blank line", int(blank.sum())))
    keep = np.flatnonzero(~blank)
    cells = [lines[i].split(spec.sep) for i in keep.tolist()]
    frame = pd.DataFrame(cells, columns=names, index=keep, dtype=object) if cells else \
        pd.DataFrame(columns=names, dtype=object)
    return Table(path=path, frame=frame, first_line=first_line)
