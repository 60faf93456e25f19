"""Logging setup with a masking filter on every handler: 554 Password and tokens never reach a log."""

from __future__ import annotations

import logging
import re
import sys

_SECRET_KEYS = r"password|passwd|access_?token|refresh_?token|client_?secret|token"  # noqa: S105 - names
_SECRET_PATTERNS = (
    # FIX Password (554) in raw messages: SOH, `|`, an escaped "\x01" (from %r) or a line start before it;
    # the value runs to the next separator, spaces included.
    (re.compile(r"(^|[\x01|\s]|\\x01)554=(?:(?!\\x01)[^\x01|\r\n])*"), r"\g<1>554=******"),
    # key = "quoted value" or key: 'quoted value' (a dict repr, JSON, YAML), spaces included.
    (re.compile(rf"(?i)\b({_SECRET_KEYS})(['\"]?\s*[:=]\s*)(['\"])(.*?)\3"), r"\1\2\3******\3"),
    # key=value without quotes.
    (re.compile(rf"(?i)\b({_SECRET_KEYS})(\s*[:=]\s*)(?!['\"*])[^\s'\",}}]+"), r"\1\2******"),
)


def mask_secrets(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
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


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fixadapter", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    handler._fixadapter = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    install_mask_on_all_handlers()


def install_mask_on_all_handlers() -> None:
    """Also mask on handlers others installed (pytest's capture, a desk's own logging config)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
