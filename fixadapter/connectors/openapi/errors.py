"""How an Open API request can end other than with its answer: every way has its own type and says why.

A request never vanishes (issue 15): it is answered, refused by the server (`ErrorResponse`), times out
(`RequestTimeout`) or loses its connection (`ConnectionLost`). The last two say whether the request was
written to the socket, because an order that was sent and never answered has an unknown disposition
(reconcile before resending), while one that never left the queue can be sent again.

Texts name payload types and clientMsgIds only, never a message's contents: requests carry access tokens
and the client secret.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from fixadapter.protocols.openapi.generated.OpenApiCommonMessages_pb2 import ProtoErrorRes
from fixadapter.protocols.openapi.generated.OpenApiMessages_pb2 import ProtoOAErrorRes

__all__ = [
    "ConnectionLost",
    "DuplicateClientMsgId",
    "ErrorResponse",
    "NotConnected",
    "OpenApiError",
    "RequestTimeout",
    "UnreadableAnswer",
]


class OpenApiError(Exception):
    """Base of every error the Open API transport raises to a caller."""


def _sent_text(sent: bool) -> str:
    return "it was sent" if sent else "it was never sent"


class NotConnected(OpenApiError):
    """A request on a transport that is not (or no longer) connected; it was not queued."""


class DuplicateClientMsgId(OpenApiError, ValueError):
    """A clientMsgId that is already waiting for its answer: two answers could not be told apart."""


class RequestTimeout(OpenApiError, TimeoutError):
    """No answer within the request's timeout."""

    def __init__(
        self, request: str, client_msg_id: str, timeout: float, sent: bool, queued_ahead: int
    ) -> None:
        self.request = request
        self.client_msg_id = client_msg_id
        self.timeout = timeout
        self.sent = sent
        where = _sent_text(sent)
        if not sent:
            where += f" ({queued_ahead} requests queued ahead of it: rate limit or backlog)"
        super().__init__(f"{request} clientMsgId={client_msg_id}: no answer within {timeout:g} s; {where}")


class ConnectionLost(OpenApiError, ConnectionError):
    """The connection closed before the answer came; `reason` says why it closed."""

    def __init__(self, request: str, client_msg_id: str, reason: str, sent: bool) -> None:
        self.request = request
        self.client_msg_id = client_msg_id
        self.reason = reason
        self.sent = sent
        super().__init__(
            f"{request} clientMsgId={client_msg_id}: connection closed before its answer ({reason}); "
            f"{_sent_text(sent)}"
        )


class UnreadableAnswer(OpenApiError):
    """The answer's payloadType is not one of ours (counted and logged as an unreadable frame too)."""


class ErrorResponse(OpenApiError):
    """The server refused the request: ProtoOAErrorRes (2142) or ProtoErrorRes (50).

    `maintenance_end` is as the server sent it: Unix seconds on ProtoOAErrorRes, milliseconds on
    ProtoErrorRes (reference 1.9). `retry_after` (seconds) comes with BLOCKED_PAYLOAD_TYPE.
    """

    def __init__(
        self,
        request: str,
        client_msg_id: str,
        error_code: str,
        description: str | None = None,
        *,
        answer_payload_type: int,
        ctid_trader_account_id: int | None = None,
        maintenance_end: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.request = request
        self.client_msg_id = client_msg_id
        self.error_code = error_code
        self.description = description
        self.answer_payload_type = answer_payload_type
        self.ctid_trader_account_id = ctid_trader_account_id
        self.maintenance_end = maintenance_end
        self.retry_after = retry_after
        text = f"{request} clientMsgId={client_msg_id} refused: {error_code}"
        if description:
            text += f" ({description})"
        if retry_after is not None:
            text += f"; retry after {retry_after} s"
        if maintenance_end is not None:
            text += f"; maintenance ends at {maintenance_end}"
        super().__init__(text)

    @classmethod
    def from_answer(
        cls, request: str, client_msg_id: str, answer: ProtoOAErrorRes | ProtoErrorRes, payload_type: int
    ) -> ErrorResponse:
        def optional_int(name: str) -> int | None:
            return int(getattr(answer, name)) if _has(answer, name) else None

        return cls(
            request,
            client_msg_id,
            answer.errorCode,
            answer.description if answer.HasField("description") else None,
            answer_payload_type=payload_type,
            ctid_trader_account_id=optional_int("ctidTraderAccountId"),
            maintenance_end=optional_int("maintenanceEndTimestamp"),
            retry_after=optional_int("retryAfter"),
        )


def _has(message: Message, name: str) -> bool:
    return name in message.DESCRIPTOR.fields_by_name and message.HasField(name)


M = TypeVar("M", bound=Message)


def expect(answer: Message, kind: type[M]) -> M:
    """The answer as the message type the request is answered with; UnreadableAnswer when it is another."""
    if not isinstance(answer, kind):
        raise UnreadableAnswer(f"expected {kind.__name__}, the server answered {type(answer).__name__}")
    return answer
