"""Schema validation helpers: a context that turns problems into located errors.

:class:`Ctx` knows the schema file and builds :class:`~kgrec.errors.SchemaError` s naming the
line of the offending key (from :class:`~kgrec.yamlio.LineDict`) and the dotted field.
"""

from __future__ import annotations

import difflib
import string
from pathlib import Path
from typing import Any

from kgrec.errors import SchemaError
from kgrec.yamlio import LineDict

SHA256_HEX = frozenset("0123456789abcdef")


def kind_name(value: Any) -> str:
    """What a YAML value is, in words: ``list``, ``mapping``, ``str``, ``int``, ..."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "null" if value is None else type(value).__name__


class Ctx:
    """Validation context: the file and a path of keys for messages."""

    def __init__(self, file: Path) -> None:
        self.file = str(file)

    def error(self, msg: str, node: Any, key: str | None, field_path: str) -> SchemaError:
        line = node.line_of(key) if isinstance(node, LineDict) and key is not None else getattr(node, "line", None)
        return SchemaError(msg, file=self.file, line=line, field=field_path)

    def mapping(self, node: Any, path: str, parent: Any = None, key: str | None = None) -> LineDict:
        if not isinstance(node, dict):
            raise self.error(f"expected a mapping, got {kind_name(node)}", parent if parent is not None else node,
                             key, path)
        return node  # type: ignore[return-value]

    def keys(self, node: LineDict, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
        for key in node:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
                raise self.error(f"unknown key '{key}'{extra}", node, key, f"{path}.{key}".lstrip("."))
        for key in required:
            if key not in node:
                raise self.error(f"missing required key '{key}'", node, None, f"{path}.{key}".lstrip("."))

    def choice(self, value: Any, choices: tuple[str, ...], node: LineDict, key: str, path: str) -> str:
        if value not in choices:
            hint = difflib.get_close_matches(str(value), choices, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f" (expected one of: {', '.join(choices)})"
            raise self.error(f"unknown value '{value}'{extra}", node, key, path)
        return value

    def numbers(self, node: LineDict, key: str, path: str, length: int | None = None) -> tuple[float, ...] | None:
        """A list of numbers (optionally of a fixed length), or None when absent."""
        values = self.typed(node, key, path, list)
        if values is None:
            return None
        if (length is not None and len(values) != length) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            want = f"a list of {length} numbers" if length else "a list of numbers"
            raise self.error(f"expected {want}, got {values!r}", node, key, f"{path}.{key}")
        return tuple(float(v) for v in values)

    def typed(self, node: LineDict, key: str, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in node:
            return default
        value = node[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.error(f"expected {want}, got {value!r}", node, key, f"{path}.{key}")
        return value

    def sha256(self, node: LineDict, key: str, path: str) -> str | None:
        """An optional sha256: a string of 64 lowercase hex digits."""
        sha = self.typed(node, key, path, str)
        if sha is not None and (len(sha) != 64 or not set(sha) <= SHA256_HEX):
            raise self.error("sha256 must be 64 lowercase hex digits", node, key, f"{path}.{key}")
        return sha


def template_fields(template: str, ctx: Ctx, node: LineDict, path: str) -> list[str]:
    """The field names of a text template; format specs, conversions and non-names are errors."""
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise ctx.error(f"bad text template: {err}", node, "text", path) from None
    for name, spec, conv in parts:
        if spec or conv:
            raise ctx.error(f"text template field '{{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}' "
                            "takes no format spec or conversion: values are inserted as text", node, "text", path)
    names = [name for name, _, _ in parts]
    for name in names:
        if not name.isidentifier():
            raise ctx.error(f"text template field '{{{name}}}' must be a plain column name", node, "text", path)
    return names
