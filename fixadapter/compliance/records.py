"""One FIX message (or Open API frame) as compliance keeps it, whatever wrote it (this adapter's LogFactory,
its Open API capture, or another engine's log file). Secrets are masked before a record exists: `raw` never
holds a password or a token.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

# How an Open API record's text starts (openapi_frames.py writes it); FIX text starts 8=FIX.
OPENAPI_RECORD_START = '{"payloadType":'


def is_openapi_record(raw: str) -> bool:
    """Whether a record's text is an Open API frame, not a FIX message (no import of protobuf needed)."""
    return raw.startswith(OPENAPI_RECORD_START)


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class FixRecord(BaseModel):
    """A masked message with the fields people search by, read from the message itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: datetime
    session: str
    direction: Direction
    msg_type: str
    seq_num: int | None = None
    cl_ord_id: str | None = None
    orig_cl_ord_id: str | None = None
    order_id: str | None = None
    raw: str
