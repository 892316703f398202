"""Data file paths stay inside the data directory, and a file is a readable regular file.

A schema names its data files by keys under ``files:``; each is read from the data set's
directory (``--data-dir``, the schema's environment variable, or the cache). A name that is
absolute, or that climbs out of that directory with ``..`` — written so, or once symlinks
are resolved — is refused with a :class:`~kgrec.errors.SchemaError` (exit 3) naming the
schema file, the line of the file's key and the field ``files.NAME``, unless outside paths
are allowed explicitly: ``allow_outside_paths=True`` (``kgrec.graphs.load_dataset``,
``load_schema``, ``locate``) or the environment variable ``KGREC_ALLOW_OUTSIDE_PATHS=1``.

Where a file is expected, a directory, a symlink loop or something that is not a regular
file (a FIFO, a device) is a :class:`~kgrec.errors.DataError` (exit 4) of its own, never
"file not found".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PureWindowsPath

from kgrec.errors import DataError, SchemaError

ALLOW_ENV = "KGREC_ALLOW_OUTSIDE_PATHS"
"""Set to ``1`` (or ``true``/``yes``) to allow data files outside the data directory."""


def outside_paths_allowed(allow: bool = False) -> bool:
    """``allow``, or the environment variable :data:`ALLOW_ENV` set to 1/true/yes."""
    return allow or os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


def lexical_escape(name: str) -> str | None:
    """Why the file name ``name`` leaves the data directory as written, or ``None``.

    Absolute paths (POSIX or Windows, ``~`` is not expanded) and names whose ``..``
    components climb above the directory count; ``sub/../x.tsv`` stays inside.
    """
    if name.startswith(("/", "\\")) or os.path.isabs(name) or PureWindowsPath(name).drive:
        return "is an absolute path"
    depth = 0
    for part in name.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return "climbs out of the data directory with '..'"
        elif part not in ("", "."):
            depth += 1
    return None


def outside_hint() -> str:
    return ("data files must stay inside the data directory "
            f"(pass --allow-outside-paths or set {ALLOW_ENV}=1 to allow it)")


def checked_file(directory: Path, name: str, *, schema_file: str, line: int | None, origin: str,
                 allow_outside: bool) -> Path:
    """``directory / name`` after checking it stays inside ``directory`` and is a regular file.

    Raises :class:`SchemaError` for a path outside the directory (unless ``allow_outside``),
    and :class:`DataError` for a missing file, a directory, a symlink loop or a special file.
    """
    path = Path(directory) / name
    field = f"files.{name}"
    if "\x00" in name:
        raise SchemaError("a data file name may not contain a NUL character", file=schema_file, line=line,
                          field=field)
    try:
        real = path.resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        raise DataError(f"symlink loop: the path cannot be resolved ({origin})", file=str(path),
                        field=field) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError(f"symlink loop: the path cannot be resolved ({origin})", file=str(path),
                            field=field) from None
        raise DataError(f"cannot resolve the path: {err.strerror or err} ({origin})", file=str(path),
                        field=field) from None
    if not allow_outside:
        why = lexical_escape(name)
        root = Path(directory).resolve()
        if why is None and not real.is_relative_to(root):
            why = f"resolves to {real} (through a symlink), outside the data directory {root}"
        if why is not None:
            raise SchemaError(f"data file '{name}' {why}; {outside_hint()}", file=schema_file, line=line,
                              field=field)
    try:
        st = path.stat()
    except FileNotFoundError:
        hint = f" (a symlink to {os.readlink(path)}, which does not exist)" if path.is_symlink() else ""
        raise DataError(f"file not found{hint} ({origin})", file=str(path), field=field) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError(f"symlink loop: the path cannot be resolved ({origin})", file=str(path),
                            field=field) from None
        raise DataError(f"cannot read: {err.strerror or err} ({origin})", file=str(path), field=field) from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"is a directory, not a data file ({origin})", file=str(path), field=field)
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"is not a regular file ({origin})", file=str(path), field=field)
    return path
