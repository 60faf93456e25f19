"""QuickFIX message log files (this adapter's or another FIX engine's) read into masked FixRecords.

Liberal in what it accepts: QuickFIX C++/n `20250101-10:00:01.123 : 8=FIX...`, QuickFIX/J `...123: 8=FIX...`,
an ISO 8601 prefix, or the bare message (time then comes from SendingTime 52); SOH, `^A`, `<SOH>` or `|`
separators; gzip-compressed rotated files. Strict in what it reports: a line that is not a whole FIX message
is a `Problem` naming its file and line, and is skipped; reading goes on. Every message is masked
(mask_secrets) before it becomes a record: another engine's log may hold the Password (554) in clear.

Which side is ours (direction) comes from --our-comp-id, else the QuickFIX file name
(`FIX.4.4-<our SenderCompID>-<their CompID>[-<qualifier>].messages.current.log`), else the config's
account.sender_comp_id if the file's messages carry it, else cTrader's own CompID CSERVER being the other
side. The session is QUOTE/TRADE from the sub ids (57 on what we send, 50 on what we receive), else the file
name's qualifier, else `<BeginString>:<ours>-><theirs>`.

This adapter's Open API log files (`<time> : {"payloadType":...}`, written by the same recorder, see
openapi_frames.py) are read too: each line carries its direction, and the session is --session, else the
file's prefix (the recorder names a session's files after it unless told otherwise).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from fixadapter.compliance.openapi_frames import record_from_text
from fixadapter.compliance.records import OPENAPI_RECORD_START, Direction, FixRecord
from fixadapter.connectors.fix.wire import SOH, WireError, parse_utc, split_fields
from fixadapter.errors import FixAdapterError
from fixadapter.logs import mask_secrets

CTRADER_COMP_ID = "CSERVER"
KNOWN_SESSIONS = ("QUOTE", "TRADE")
MASKED_PASSWORD = "554=******"  # noqa: S105 - the mask, not a password
# Separators seen after copy/paste, tried in this order when a line holds no SOH.
_SEPARATORS = ("^A", "<SOH>", "\\x01", "|")
# The message starts at 8=FIX not preceded by a tag character (58=8=FIX... is no start).
_MESSAGE_START = re.compile(r"(?<![0-9A-Za-z=])8=FIX")
# Every secret mask_secrets knows holds one of these: a cheap search spares its regexes on most messages.
_MAYBE_SECRET = re.compile(r"554=|passw|token|secret", re.IGNORECASE)
_FIX_TIME = re.compile(r"^\d{8}-\d{2}:\d{2}:\d{2}(\.\d{1,9})?$")


class LogFileError(FixAdapterError):
    """A log file that cannot be read at all, or whose side (ours/theirs) cannot be told."""


class LineError(ValueError):
    """One line that is not a usable FIX message; the reason is safe to print (masked)."""


@dataclass(frozen=True)
class Problem:
    """A skipped line (or, with warning=True, a line imported with a remark such as a bad checksum)."""

    path: Path
    line: int
    reason: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning" if self.warning else "skipped"
        return f"{self.path}:{self.line}: {kind}: {self.reason}"


@dataclass(frozen=True)
class LoggedMessage:
    """A record read from a file, with where it came from (its id in search results: `file:line`)."""

    path: Path
    line: int
    record: FixRecord


@dataclass(frozen=True)
class _Parsed:
    """A line split into the logger's timestamp (if any) and the message with SOH separators."""

    logged_at: datetime | None
    message: str
    fields: dict[int, str]


@dataclass
class LogFileReader:
    """Reads one file line by line; `problems` collects what was skipped, counters what was read."""

    path: Path
    our_comp_id: str | None = None
    session: str | None = None
    config_comp_id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    lines: int = 0
    messages: int = 0
    bytes_read: int = 0
    _ours: str | None = None
    _qualifier: str | None = None

    def __iter__(self) -> Iterator[LoggedMessage]:
        if self.is_event_log:
            self.problems.append(Problem(self.path, 0, "a QuickFIX event log, not messages: whole file"))
            return
        with self._open() as stream:
            try:
                for number, data in enumerate(stream, 1):
                    self.lines = number
                    self.bytes_read += len(data)
                    found = self._line(number, data)
                    if found is not None:
                        self.messages += 1
                        yield found
            except (OSError, EOFError) as exc:  # a damaged .gz, a file cut off under us
                raise LogFileError(f"cannot read {self.path} after line {self.lines}: {exc}") from None

    @property
    def is_event_log(self) -> bool:
        """QuickFIX writes engine events to `<prefix>.event.*.log` beside the messages (`*.log` gets both)."""
        return ".event." in self.path.name

    def check(self) -> None:
        """Fail now (LogFileError) if the file cannot be opened or our side cannot be told from it."""
        if self.is_event_log:
            return
        with self._open() as stream:
            for data in stream:
                try:
                    parsed = _parse_line(data)
                except LineError:
                    continue
                if parsed is not None:
                    self._resolve_ours(parsed.fields)
                    return

    def _open(self) -> BinaryIO:
        try:
            if self.path.suffix == ".gz":
                return gzip.open(self.path, "rb")  # type: ignore[return-value]
            return self.path.open("rb")
        except OSError as exc:
            raise LogFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def _line(self, number: int, data: bytes) -> LoggedMessage | None:
        if _is_openapi_line(data):
            return self._openapi_line(number, data)
        try:
            parsed = _parse_line(data)
            if parsed is None:
                return None
            record = self._record(parsed)
        except LineError as exc:
            self.problems.append(Problem(self.path, number, str(exc)))
            return None
        if parsed.fields.get(10) != _checksum(parsed.message) and MASKED_PASSWORD not in parsed.message:
            reason = "CheckSum (10) does not match the message: imported as it is"
            self.problems.append(Problem(self.path, number, reason, warning=True))
        return LoggedMessage(self.path, number, record)

    def _openapi_line(self, number: int, data: bytes) -> LoggedMessage | None:
        """A line of this adapter's Open API log file: `<time> : {"payloadType":...}`; its session is
        --session, else the file's prefix (the recorder names the file after the session)."""
        text = data.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
        start = text.find(OPENAPI_RECORD_START)
        moment = _logger_time(text[:start])
        if moment is None:
            self.problems.append(Problem(self.path, number, "an Open API record without its time"))
            return None
        session = self.session or self.path.name.split(".messages.", 1)[0]
        try:
            record = record_from_text(moment, session, text[start:])
        except ValueError as exc:
            reason = f"not a whole Open API record: {str(exc)[:200]}"
            self.problems.append(Problem(self.path, number, reason))
            return None
        return LoggedMessage(self.path, number, record)

    def _record(self, parsed: _Parsed) -> FixRecord:
        fields = parsed.fields
        ours = self._resolve_ours(fields)
        sender, target = fields.get(49, ""), fields.get(56, "")
        if sender.casefold() == ours.casefold():
            direction, theirs = Direction.OUTBOUND, target
        elif target.casefold() == ours.casefold():
            direction, theirs = Direction.INBOUND, sender
        else:
            raise LineError(f"CompIDs {sender!r} -> {target!r}: neither is ours ({ours!r})")
        time = parsed.logged_at or _time(fields.get(52))
        if time is None:
            raise LineError("no time: no timestamp before the message and no SendingTime (52)")
        return FixRecord(
            time=time,
            session=self._session(fields, direction, f"{fields.get(8)}:{ours}->{theirs}"),
            direction=direction,
            msg_type=fields[35],
            seq_num=_seq_num(fields.get(34)),
            cl_ord_id=fields.get(11) or None,
            orig_cl_ord_id=fields.get(41) or None,
            order_id=fields.get(37) or None,
            raw=mask_message(parsed.message),
        )

    def _session(self, fields: dict[int, str], direction: Direction, fallback: str) -> str:
        if self.session:
            return self.session
        own, other = (57, 50) if direction is Direction.OUTBOUND else (50, 57)
        for tag in (own, other):
            sub_id = fields.get(tag, "").upper()
            if sub_id in KNOWN_SESSIONS:
                return sub_id
        return self._qualifier or fallback

    def _resolve_ours(self, fields: dict[int, str]) -> str:
        """Our SenderCompID for this file, decided once from the first message."""
        if self._ours is not None:
            return self._ours
        sender, target = fields.get(49, ""), fields.get(56, "")
        if self.our_comp_id:
            self._ours = self.our_comp_id
        elif named := _named_side(self.path.name, fields.get(8, ""), sender, target):
            self._ours, self._qualifier = named
        elif self.config_comp_id and self.config_comp_id.casefold() in (sender.casefold(), target.casefold()):
            self._ours = self.config_comp_id
        elif CTRADER_COMP_ID in (sender, target) and sender != target:
            self._ours = target if sender == CTRADER_COMP_ID else sender
        else:
            raise LogFileError(
                f"{self.path}: cannot tell which side is ours from the file name or the CompIDs "
                f"({sender!r} -> {target!r}): pass --our-comp-id with our SenderCompID"
            )
        return self._ours


def mask_message(message: str) -> str:
    """mask_secrets, field by field when there is something to mask: its `key: value` patterns run to the end
    of a line, so on a whole message a free text such as `58=invalid token: x` would swallow every field
    after it (and the CheckSum)."""
    if not _MAYBE_SECRET.search(message):
        return message
    masked = mask_secrets(message)
    if masked == message:
        return message
    return SOH.join(_mask_field(chunk) for chunk in message.split(SOH))


def _mask_field(chunk: str) -> str:
    return MASKED_PASSWORD if chunk.startswith("554=") else mask_secrets(chunk)


def _named_side(name: str, begin: str, sender: str, target: str) -> tuple[str, str | None] | None:
    """QuickFIX names a session's files `<BeginString>-<our SenderCompID>-<TargetCompID>[-<qualifier>]`
    (QuickFIX/n may add `_<sub id>` parts): whichever CompID comes first in the name is ours."""
    if not begin or not sender or not target or sender == target:
        return None
    for ours, theirs in ((sender, target), (target, sender)):
        pattern = (
            rf"^{re.escape(begin)}-{re.escape(ours)}(?:_[^-]*)?-{re.escape(theirs)}(?:_[^-.]*)?"
            r"(?:-(?P<qualifier>[^.]+))?\."
        )
        named = re.match(pattern, name, re.IGNORECASE)
        if named:
            qualifier = named.group("qualifier")
            return ours, qualifier.upper() if qualifier else None
    return None


def _is_openapi_line(data: bytes) -> bool:
    """An Open API record starts the line after its time (a FIX message quoting one in a text is FIX)."""
    start = data.find(OPENAPI_RECORD_START.encode())
    return start >= 0 and b"8=FIX" not in data[:start]


def _parse_line(data: bytes) -> _Parsed | None:
    """A line as (logger time, message, fields); None for a blank line; LineError for anything unusable."""
    line = data.rstrip(b"\r\n")
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text = line.decode("latin-1")
    start = _MESSAGE_START.search(text)
    if start is None:
        raise LineError("no FIX message on this line (nothing starts with 8=FIX)")
    message = _with_soh(text[start.start() :].rstrip(" \t"))
    try:
        pairs = split_fields(message)
    except WireError as exc:
        raise LineError(mask_secrets(str(exc))) from None
    fields: dict[int, str] = {}
    for tag, value in pairs:
        fields.setdefault(tag, value)
    if pairs[-1][0] != 10:
        raise LineError("truncated: the message does not end with CheckSum (10)")
    if not fields.get(35):
        raise LineError("no MsgType (35)")
    return _Parsed(_logger_time(text[: start.start()]), message, fields)


def _with_soh(message: str) -> str:
    if SOH not in message:
        separator = next((s for s in _SEPARATORS if s in message), None)
        if separator is not None:
            message = message.replace(separator, SOH)
    return message if message.endswith(SOH) else message + SOH


def _logger_time(prefix: str) -> datetime | None:
    """The time a logger put before the message (FIX or ISO 8601 form); None when absent or not a time."""
    text = prefix.strip().rstrip(":").strip()
    if not text:
        return None
    if _FIX_TIME.match(text):
        return _time(text)
    try:
        value = datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(text: str | None) -> datetime | None:
    try:
        return parse_utc(text)
    except WireError:
        raise LineError(f"not a UTC timestamp: {text!r}") from None


def _seq_num(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise LineError(f"MsgSeqNum (34) is not a number: {text!r}")
    return int(text)


def _checksum(message: str) -> str:
    """The CheckSum the message should carry: the byte sum up to (not including) the 10= field."""
    body = message[: message.rfind(SOH + "10=") + 1]
    try:
        data = body.encode("latin-1")
    except UnicodeEncodeError:
        data = body.encode("utf-8")
    return f"{sum(data) % 256:03d}"
