"""JSON log lines (`logging.json: true`): one object per line, for a log shipper (Loki, Elasticsearch...).

Each line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger` and `message`, then `exception`
when there is one, then every extra field a call passed (`log.info(..., extra={"order": "ORD-1"})`).
The masking filter runs before this formatter (fixadapter/logs.py), so the message and the exception are
masked already; extra fields are masked here: a value under a secret's name (password, token...) is
replaced whole, and every other text value goes through the same masking as the message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MASK = "******"
SECRET_NAME = re.compile(r"(?i)password|passwd|secret|token")
# What every LogRecord carries: never repeated as an extra field.
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, mask: Callable[[str], str]) -> None:
        """`mask`: fixadapter.logs.mask_secrets (passed in: logs.py builds this formatter)."""
        super().__init__()
        self._mask = mask

    def _plain(self, value: Any) -> Any:
        """A JSON value for an extra field, masked."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {str(k): MASK if SECRET_NAME.search(str(k)) else self._plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._plain(v) for v in value]
        return self._mask(str(value))

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._mask(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self._mask(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self._mask(self.formatStack(record.stack_info))
        for key, value in vars(record).items():
            if key in STANDARD or key.startswith("_") or key in line:
                continue
            line[key] = MASK if SECRET_NAME.search(key) else self._plain(value)
        return json.dumps(line, ensure_ascii=False, default=str)
