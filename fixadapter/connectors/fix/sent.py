"""Which request each outbound application message carried, by MsgSeqNum (34).

A session-level Reject (35=3) names what it refuses only by RefSeqNum (45), and so may a
BusinessMessageReject without BusinessRejectRefID (379); this map ties such a refusal back to the
request id the engine knows. Sequence numbers restart at every cTrader logon, so the map is cleared then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from fixadapter.connectors.fix import tags as t
from fixadapter.model.enums import VenueRequest

KEEP = 10_000  # far more than can be in flight; the oldest are forgotten first
# The request each message type makes and the tag that carries its id.
ID_TAGS: dict[str, tuple[VenueRequest, int]] = {
    "D": (VenueRequest.NEW_ORDER, t.CL_ORD_ID),
    "F": (VenueRequest.CANCEL, t.CL_ORD_ID),
    "G": (VenueRequest.REPLACE, t.CL_ORD_ID),
    "H": (VenueRequest.STATUS, t.CL_ORD_ID),
    "AF": (VenueRequest.MASS_STATUS, t.MASS_STATUS_REQ_ID),
    "AN": (VenueRequest.POSITIONS, t.POS_REQ_ID),
    "x": (VenueRequest.INSTRUMENTS, t.SECURITY_REQ_ID),
}


class Sent(NamedTuple):
    msg_type: str
    request: VenueRequest
    request_id: str


class SentMessages:
    """Thread-safe: written from the sending thread (toApp), read from the session's thread (fromAdmin)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._by_seq: OrderedDict[int, Sent] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, seq_num: int, msg_type: str, request_id: str) -> None:
        known = ID_TAGS.get(msg_type)
        if known is None:
            return
        with self._lock:
            self._by_seq[seq_num] = Sent(msg_type, known[0], request_id)
            self._by_seq.move_to_end(seq_num)
            while len(self._by_seq) > self._keep:
                self._by_seq.popitem(last=False)

    def lookup(self, seq_num: int) -> Sent | None:
        with self._lock:
            return self._by_seq.get(seq_num)

    def clear(self) -> None:
        with self._lock:
            self._by_seq.clear()

    def __len__(self) -> int:
        return len(self._by_seq)
