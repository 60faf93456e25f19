"""Logging setup with a masking filter on every handler: 554 Password and tokens never reach a log."""

from __future__ import annotations

import logging
import re
import sys

from fixadapter.json_logs import JsonFormatter

_SECRET_KEYS = r"password|passwd|access_?token|refresh_?token|client_?secret|token"  # noqa: S105 - names
# FIX Password (554): the value runs to the next field separator, whichever the text uses (SOH in raw
# messages, an escaped "\x01" in a %r, `|` in a log excerpt), so a `|` or a space inside it stays masked.
_FIX_PASSWORD_BY_SEPARATOR = (
    ("\x01", re.compile(r"(^|[\x01\s])554=[^\x01]*")),
    ("\\x01", re.compile(r"(^|\\x01|\s)554=(?:(?!\\x01).)*")),
    ("", re.compile(r"(^|[|\s])554=[^|\r\n]*")),
)
_KEY_VALUE_PATTERNS = (
    # key = "quoted value" or key: 'quoted value' (a dict repr, JSON, YAML), spaces included.
    (re.compile(rf"(?i)\b({_SECRET_KEYS})(['\"]?\s*[:=]\s*)(['\"])(.*?)\3"), r"\1\2\3******\3"),
    # key=value without quotes: to the end of the line, the next comma, brace or semicolon, or the next
    # FIX field (SOH), so a free text like `58=invalid token: x` keeps the fields after it.
    (re.compile(rf"(?i)\b({_SECRET_KEYS})(\s*[:=]\s*)(?!['\"*])[^\r\n,;}}\x01]+"), r"\1\2******"),
)


def mask_secrets(text: str) -> str:
    for separator, pattern in _FIX_PASSWORD_BY_SEPARATOR:
        if separator in text:
            text = pattern.sub(r"\g<1>554=******", text)
            break
    for pattern, replacement in _KEY_VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class MaskingFilter(logging.Filter):
    """Rewrites the formatted message so arguments carrying secrets are masked too."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        return True


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """One stderr handler, masked; `json_lines`: one JSON object per line (fixadapter/json_logs.py)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fixadapter", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter(mask_secrets))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    handler._fixadapter = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    if root.level > logging.DEBUG:  # alembic's "Context impl" lines at every start; upgrades say their own
        logging.getLogger("alembic").setLevel(logging.WARNING)
    install_mask_on_all_handlers()


def install_mask_on_all_handlers() -> None:
    """Also mask on handlers others installed (pytest's capture, a desk's own logging config)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
