"""Files and directories only this user may read: the store, the FIX message record, spills, logs.

They hold orders, positions and every FIX message, so they are created 0600 (files) and 0700 (directories
the adapter creates), whatever the umask: the mode is given at creation and set again right after (the
umask can only take bits away, and a umask taking the owner's own bits would leave a file we cannot write).
A file of ours found readable by others (made by an older version) is narrowed to 0600 when opened.
SQLite creates its -wal and -shm files with the database file's own mode, so a 0600 database is enough.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents; each directory made here is 0700 (existing ones are left)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, left as it is
        os.chmod(directory, DIR_MODE)
    return path


def narrow(fd: int) -> None:
    """0600 for an open file of ours that others could read; a file we do not own is left as it is."""
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except PermissionError:
        pass


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if missing (its directory 0700 if made here); narrow it if it exists."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
    except FileExistsError:
        fd = os.open(path, os.O_RDONLY)  # read-only is enough to narrow it, and works on a read-only copy
    try:
        narrow(fd)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, append: bool = True) -> BinaryIO:
    """Open for writing in binary, created 0600 (appending by default, else truncating)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        narrow(fd)  # also a umask that took the owner's bits: 0600 exactly
        return os.fdopen(fd, "ab" if append else "wb")
    except BaseException:
        os.close(fd)
        raise


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (`sqlite:///path?options`), None for another database or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (a file made or renamed in it) to the disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
