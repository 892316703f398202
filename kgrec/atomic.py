"""Directories written atomically under an exclusive lock: run directories, audit reports
and data caches all go through :class:`AtomicDir`.

A directory ``TARGET`` is written as ``TARGET.partial`` and renamed into place only when
the writer commits, so a reader sees either the old directory, or the new one whole, never
a mix. While it is written, ``TARGET.lock`` (created with ``O_EXCL``) holds the writer's
pid, host and start time; a second writer is refused at once with :class:`LockedError`.
A lock whose pid no longer runs on this host is stale: it is broken, with a note on stderr.

Standard library only, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from kgrec.errors import DataError, LockedError, RunExistsError


def lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def partial_path(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class DirLock:
    """An exclusive lock file ``TARGET.lock`` (see the module docstring)."""

    def __init__(self, target: Path, what: str = "directory") -> None:
        self.target, self.path, self.what = Path(target), lock_path(Path(target)), what
        self.held = False

    def acquire(self) -> DirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and not self._stale(owner):
                    raise LockedError(
                        f"{self.what} is being written by pid {owner.get('pid')} on {owner.get('host')} "
                        f"since {owner.get('started')}; wait for it to finish (the lock is {self.path})",
                        file=str(self.target), field="lock") from None
                print(f"note: breaking a stale lock {self.path} (pid {owner and owner.get('pid')} is gone)",
                      file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise LockedError("could not take the lock (another writer keeps taking it)", file=str(self.path),
                          field="lock")

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None  # unreadable or half-written: a crashed writer's, so stale

    @staticmethod
    def _stale(owner: dict) -> bool:
        if owner.get("host") != socket.gethostname():
            return False  # cannot check another host's processes: trust the lock
        pid = owner.get("pid")
        return not isinstance(pid, int) or not _alive(pid)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class AtomicDir:
    """Write ``target`` atomically under its lock.

    ``with AtomicDir(target, overwrite=..., resume=...) as work:`` yields ``TARGET.partial``
    (fresh unless ``resume``); :meth:`commit` renames it into place. Without a commit, or on
    an error, the partial directory is removed, unless ``keep_partial`` and it holds
    ``resume_marker`` (training keeps an interrupted run that has a checkpoint, for
    ``--resume``). ``target`` existing without ``overwrite`` is :class:`RunExistsError`
    (exit 7), checked before anything is written.
    """

    def __init__(self, target: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
                 keep_partial: bool = False, what: str = "run directory",
                 resume_marker: str | None = None) -> None:
        self.target = Path(target)
        self.work = partial_path(self.target)
        self.overwrite, self.resume, self.keep_partial = overwrite, resume, keep_partial
        self.resume_marker = resume_marker
        self.lock = DirLock(self.target, what)
        self.committed = False

    def __enter__(self) -> Path:
        check_target(self.target, overwrite=self.overwrite)
        self.lock.acquire()
        try:
            if self.resume:
                marker = self.work / self.resume_marker if self.resume_marker else self.work
                if not marker.exists():
                    raise DataError("nothing to resume: no checkpoint from an interrupted run", file=str(self.work),
                                    field="--resume")
            else:
                if self.work.exists():
                    shutil.rmtree(self.work)
                self.work.mkdir(parents=True)
        except BaseException:
            self.lock.release()
            raise
        return self.work

    def commit(self) -> Path:
        """Move the finished directory into place (replacing an old one)."""
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
            os.replace(self.work, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.work, self.target)
        self.committed = True
        return self.target

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            resumable = self.keep_partial and (self.resume_marker is None
                                               or (self.work / self.resume_marker).exists())
            if not self.committed and not resumable:
                shutil.rmtree(self.work, ignore_errors=True)
        finally:
            self.lock.release()


def check_target(target: Path, *, overwrite: bool) -> None:
    """``target`` may be written: it does not exist, or ``overwrite`` is set (exit 7 otherwise)."""
    if target.exists() and not overwrite:
        raise RunExistsError("already exists; pass --overwrite to replace it", file=str(target), field="-o")


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, *, overwrite: bool = True,
                     what: str = "cache directory") -> Iterator[Path]:
    """Yield ``TARGET.partial`` (under the lock); on success it replaces ``target``, on an
    error it is removed. For caches and other directories without ``--resume``."""
    atomic = AtomicDir(target, overwrite=overwrite, what=what)
    with atomic as work:
        yield work
        atomic.commit()
