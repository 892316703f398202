"""YAML loading that remembers line numbers, so errors can name ``file:line``.

Loading is bounded, because schemas, audit plans and run configs may come from anyone:

- aliases (``*name``, including ``<<: *name`` merge keys) are refused: no shipped file needs
  them, and expanding nested aliases ("billion laughs") takes exponential time and memory;
- nesting deeper than :data:`MAX_DEPTH` is refused (no ``RecursionError``);
- a NUL or other control character that YAML does not allow is refused with its line.

Each is a :class:`~kgrec.errors.SchemaError` (exit 3) naming the file, the line and, where
there is one, the dotted path of keys leading to the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import SchemaError


class LineDict(dict):
    """A ``dict`` from YAML that knows its own line and the line of each key (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


class LineList(list):
    """A ``list`` from YAML that knows its own line and each item's line (1-based)."""

    line: int | None = None
    item_lines: list[int]

    def line_of(self, index: int) -> int | None:
        lines = getattr(self, "item_lines", [])
        return lines[index] if index < len(lines) else self.line


MAX_DEPTH = 64
"""The deepest nesting of mappings and lists that :func:`load_yaml` accepts."""

# what the YAML 1.1 reader accepts (PyYAML's Reader.NON_PRINTABLE, inverted)
_NON_PRINTABLE = re.compile(r"[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def _key_path(parts: list[str]) -> str:
    """``["a", "b", "[0]"]`` → ``"a.b[0]"``, long paths shortened in the middle."""
    def join(ps: list[str]) -> str:
        return "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(ps))

    if len(parts) > 8:
        return f"{join(parts[:4])}...{join(parts[-2:]).lstrip('.')}"
    return join(parts) or "(top level)"


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses aliases and deep nesting and tracks the key path."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D401 - PyYAML hook
        if isinstance(index, yaml.ScalarNode):
            part: str | None = str(index.value)
        elif isinstance(index, int):
            part = f"[{index}]"
        elif isinstance(index, yaml.Node):
            part = "(value of a complex key)"
        elif parent is not None:
            part = "(key)"
        else:
            part = None
        if part is not None:
            self._path.append(part)
        try:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise SchemaError(f"YAML alias '*{event.anchor}' is not allowed (aliases and merge keys can "
                                  "expand exponentially); write the value out", file=self.name,
                                  line=event.start_mark.line + 1, field=_key_path(self._path))
            if len(self._path) > MAX_DEPTH:
                event = self.peek_event()
                raise SchemaError(f"nesting deeper than {MAX_DEPTH} levels", file=self.name,
                                  line=event.start_mark.line + 1, field=_key_path(self._path))
            return super().compose_node(parent, index)
        finally:
            if part is not None:
                self._path.pop()


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise SchemaError(f"a mapping key must be a plain value, not {type(key).__name__} {key!r}",
                              file=loader.name, line=key_node.start_mark.line + 1, field="key") from None
        if key in out:
            raise SchemaError(f"duplicate key '{key}'", file=loader.name,
                              line=key_node.start_mark.line + 1, field=str(key))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file into :class:`LineDict`/:class:`LineList` trees.

    Raises :class:`SchemaError` (with the line) on missing files, bad encoding, NUL and
    other control characters, aliases, nesting deeper than :data:`MAX_DEPTH` and syntax
    errors.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise SchemaError("is a directory, not a YAML file", file=str(path)) from None
    except OSError as err:
        raise SchemaError(f"cannot read: {err.strerror or err}", file=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SchemaError(f"not valid UTF-8 (byte {err.start})", file=str(path), line=line) from None
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        char = bad.group()
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        what = "a NUL character (\\x00)" if char == "\x00" else f"control character U+{ord(char):04X}"
        raise SchemaError(f"{what} at column {column}; YAML files may not contain it", file=str(path),
                          line=line) from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = None if mark is None else mark.line + 1
        message = f"invalid YAML: {err.problem or err}"
        if err.context and err.context_mark is not None and err.context_mark.line + 1 != line:
            message += f" ({err.context} started at line {err.context_mark.line + 1})"
        raise SchemaError(message, file=str(path), line=line) from None
    except yaml.YAMLError as err:  # not marked: no line to report
        raise SchemaError(f"invalid YAML: {err}", file=str(path)) from None
    finally:
        loader.dispose()


#: characters PyYAML writes raw under ``allow_unicode`` but reads back as line breaks
_YAML_BREAKS = ("\x85", "\u2028", "\u2029")


def dump_yaml(data: Any) -> str:
    """Dump plain Python data (dicts, lists, scalars) as block YAML, keys in order. Text is
    written as UTF-8, unless it holds a character YAML treats as a line break (NEL, LS, PS):
    then everything non-ASCII is escaped, so the text reads back exactly."""
    texts: list[str] = []

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {str(k): plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, str):
            texts.append(x)
        return x
    tree = plain(data)
    unicode_ok = not any(b in t for t in texts for b in _YAML_BREAKS)
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=unicode_ok)


def _check(value: Any, tp: Any, where: str, file: str | None, line: int | None) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        return _check(value, tp, where, file, line)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where, file)
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool)}
    base = origin or tp
    if base is list:
        if not isinstance(value, list):
            raise SchemaError(f"expected a list, got {value!r}", file=file, line=line, field=where)
        return [_check(v, args[0], f"{where}[{i}]", file, line) for i, v in enumerate(value)]
    if base is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"expected a mapping, got {value!r}", file=file, line=line, field=where)
        return dict(value)
    if base in ok and not ok[base](value):
        raise SchemaError(f"expected {base.__name__}, got {value!r}", file=file, line=line, field=where)
    return float(value) if base is float else value


def build_dataclass(cls: type, raw: Any, where: str = "", file: str | None = None) -> Any:
    """A dataclass from a (line-aware) mapping: unknown keys (with a did-you-mean hint) and
    wrong types are :class:`SchemaError` naming the file, line and dotted field."""
    if not isinstance(raw, dict):
        raise SchemaError(f"expected a mapping, got {raw!r}", file=file, field=where or "config")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        line = raw.line_of(key) if isinstance(raw, LineDict) else None
        if key not in names:
            hint = difflib.get_close_matches(str(key), names, n=1)
            raise SchemaError(f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else
                                                        f" (allowed: {', '.join(names)})"),
                              file=file, line=line, field=path)
        kwargs[key] = _check(value, hints[key], path, file, line)
    return cls(**kwargs)
