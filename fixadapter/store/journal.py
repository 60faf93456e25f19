"""The order journal: an account's durable writes appended to a local file before the engine acts on them.

The engine's event loop appends a record and goes on (no thread hop, no transaction): one `os.write` of a
few hundred bytes is in the kernel when it returns, so it survives a kill of the process as a SQLite commit
with `synchronous=NORMAL` does; with `fsync` it survives an OS crash too, at the disk's price. The SQL
store is maintained from the records by the store thread, which notes in the same transaction how far it
got (`OrderStore.apply_journaled`), so a restart applies exactly the records after that point.

A record on disk: its length and the CRC-32 of its payload (two little-endian u32), then the payload. A
record cut short (an OS crash in the middle of a write) is found by its length or its checksum at the end
of the newest segment and cut off: it was never acknowledged, since nothing acts on a record before its
write returned. Anything else that does not read back is damage, and the journal refuses to start rather
than skip it.

Records live in numbered segment files; a segment is deleted once the store has applied everything in it.
A position is one integer, `segment << 40 | end offset`, so positions of later records are larger.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fixadapter.errors import StoreError
from fixadapter.private_files import fsync_directory, private_dir

log = logging.getLogger("fixadapter.store")

HEADER = struct.Struct("<II")
OFFSET_BITS = 40
MAX_RECORD = 16 * 1024 * 1024
SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".journal"


class JournalDamaged(StoreError):
    """A record before the journal's end does not read back: the file was damaged, not cut short."""


class JournalBusy(StoreError):
    """Another process holds the journal (a daemon trading the account while a command runs)."""


def position_of(segment: int, offset: int) -> int:
    return segment << OFFSET_BITS | offset


def segment_of(position: int) -> int:
    return position >> OFFSET_BITS


@dataclass(frozen=True)
class Entry:
    position: int  # where the record ends: what the store notes once it is applied
    payload: bytes


class Journal:
    """One account's journal in `directory`: appended by one thread (the event loop), read at start."""

    def __init__(self, directory: Path, *, fsync: bool = False, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._segment = 0
        self._offset = 0

    def lock(self) -> None:
        """Hold the journal for this process (before reading it): one writer only, or positions would
        interleave. Raises JournalBusy while another process holds it; released by `close` or the end
        of the process, however it ends."""
        if self._lock_fd is not None:
            return
        private_dir(self.directory)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalBusy(f"the order journal in {self.directory} is held by another process") from None
        self._lock_fd = fd

    # -- reading (at start, before any append) -------------------------------------------------------

    def segments(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        numbers = []
        for path in self.directory.iterdir():
            if path.suffix == SUFFIX and path.stem.isdigit():
                numbers.append(int(path.stem))
        return sorted(numbers)

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:08d}{SUFFIX}"

    def read_after(self, position: int) -> Iterator[Entry]:
        """Every record ending after `position`, oldest first. A torn record at the very end of the newest
        segment is cut off (logged); one anywhere else raises JournalDamaged."""
        segments = self.segments()
        start_segment = segment_of(position)
        for index, segment in enumerate(segments):
            if segment < start_segment:
                continue
            newest = index == len(segments) - 1
            skip_to = position - position_of(segment, 0) if segment == start_segment else 0
            yield from self._read_segment(segment, skip_to, newest)

    def _read_segment(self, segment: int, skip_to: int, newest: bool) -> Iterator[Entry]:
        path = self._path(segment)
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            torn = _torn_at(data, offset)
            if torn is not None:
                if not newest or not _reaches_end(data, offset):
                    raise JournalDamaged(
                        f"the order journal {path} is damaged at byte {offset} ({torn}) with records after "
                        "it: restore it from a backup, or check the store against the venue and move the "
                        "journal aside"
                    )
                log.warning(
                    "order journal %s: the last %d byte(s) are a record cut short (%s), written by a process "
                    "that ended during the write and never acted on: cut off",
                    path,
                    len(data) - offset,
                    torn,
                )
                with open(path, "r+b") as file:
                    file.truncate(offset)
                return
            length, _crc = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            if end > skip_to:
                yield Entry(position_of(segment, end), data[offset + HEADER.size : end])
            offset = end

    # -- appending ---------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the newest segment for appending (after `read_after`, which cut any torn tail)."""
        private_dir(self.directory)
        segments = self.segments()
        self._segment = segments[-1] if segments else 1
        self._open_segment()

    def _open_segment(self) -> int:
        path = self._path(self._segment)
        fd = self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._offset = os.fstat(fd).st_size
        if self.fsync:
            fsync_directory(self.directory)
        return fd

    @property
    def position(self) -> int:
        """Where the last record appended ends."""
        return position_of(self._segment, self._offset)

    def append(self, payload: bytes) -> int:
        """Write one record; its position once the write returned (and, with fsync, reached the disk)."""
        if len(payload) > MAX_RECORD:
            raise StoreError(f"a journal record of {len(payload)} bytes is over the {MAX_RECORD} allowed")
        fd = self._fd
        if fd is None:
            raise StoreError("the order journal is not open")
        if self._offset >= self.segment_bytes:
            fd = self._rotate(fd)
        record = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            written = os.write(fd, record)
            while written < len(record):  # a regular file takes all of it but on a full disk
                more = os.write(fd, record[written:])
                if more == 0:
                    raise OSError("no byte written: is the disk full?")
                written += more
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            self._undo(fd, exc)
            raise StoreError(
                f"the order journal in {self.directory} could not be written ({exc}): nothing was sent; "
                "free the disk or fix its permissions"
            ) from exc
        self._offset += len(record)
        return self.position

    def _undo(self, fd: int, error: OSError) -> None:
        """Cut a record written in part, so the next one does not follow a torn one; when even that fails
        the journal takes no more records (a restart reads it up to the torn one and cuts it there)."""
        try:
            os.ftruncate(fd, self._offset)
        except OSError:
            log.exception("order journal %s: could not cut a record written in part", self.directory)
            os.close(fd)
            self._fd = None
            raise StoreError(
                f"the order journal in {self.directory} could not be written ({error}) nor repaired: restart "
                "the daemon once the disk is fixed"
            ) from error

    def _rotate(self, fd: int) -> int:
        os.close(fd)
        self._fd = None
        self._segment += 1
        return self._open_segment()

    def discard_before(self, position: int) -> int:
        """Delete the segments wholly before the one holding `position` (applied by the store); how many."""
        keep_from = segment_of(position)
        deleted = 0
        for segment in self.segments():
            if segment >= keep_from or segment == self._segment:
                break
            self._path(segment).unlink(missing_ok=True)
            deleted += 1
        return deleted

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None


def _torn_at(data: bytes, offset: int) -> str | None:
    """Why the record at `offset` does not read back, or None when it does."""
    if len(data) - offset < HEADER.size:
        return "its header is incomplete"
    length, crc = HEADER.unpack_from(data, offset)
    end = offset + HEADER.size + length
    if length > MAX_RECORD or end > len(data):
        return "it is shorter than its length says"
    if zlib.crc32(data[offset + HEADER.size : end]) != crc:
        return "its checksum does not match"
    return None


def _reaches_end(data: bytes, offset: int) -> bool:
    """Whether the record at `offset` is the last (its length, if it can be read, runs to the end or past
    it): only the last record can be cut short, since a record is written whole before the next."""
    if len(data) - offset < HEADER.size:
        return True
    length: int = HEADER.unpack_from(data, offset)[0]
    return offset + HEADER.size + length >= len(data)
