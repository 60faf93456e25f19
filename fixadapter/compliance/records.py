"""One FIX message as compliance keeps it, whatever wrote it (this adapter's LogFactory or another engine's
log file). Secrets are masked before a record exists: `raw` never holds a password or a token.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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
