"""One application's connection to one Open API server, kept up for every account seated on it.

cTrader wants few connections per application (reference 1.9: at most one per environment in the current
docs) and lets one connection carry any number of accounts, so accounts of the same application and
server share a link, as FIX accounts share one initiator. The link owns what is per connection and must
be redone after every reconnect (reference 1.9): application auth, then account auth of each seat with
its grant's access token.

It reconnects by itself: after a failed connect or a lost connection it waits a backoff that doubles from
`reconnect_min_seconds` to `reconnect_max_seconds`, with full jitter (so many daemons cut at once do not
come back at once), and starts over. A seat hears `on_state(True, None)` once its account is authorised
and `on_state(False, why)` when it is no longer (connection lost, the server disconnected the account,
its token was invalidated): its connector then reconciles before taking orders again.

Tokens: a seat's access token comes from the token store; one that expires within
`refresh_before_seconds` (or that the server calls expired) is refreshed in-band (ProtoOARefreshTokenReq)
and the rotated pair is stored before it is used (tokens.rotate). One that cannot be refreshed raises the
`openapi_token` alarm, with what to do, and the seat stays down until a new login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import Message
from pydantic import SecretStr

from fixadapter.connectors.base import WireRecorder
from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.connectors.openapi.counting import Direction, FrameCounter, payload_type_name
from fixadapter.connectors.openapi.errors import ErrorResponse, NotConnected, OpenApiError, expect
from fixadapter.connectors.openapi.tokens import TokenPair, TokenStore, grant_key, rotate
from fixadapter.connectors.openapi.transport import OpenApiTransport, TransportSettings, client_context
from fixadapter.engine.tasks import cancel_and_wait
from fixadapter.errors import FixAdapterError
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.messages import Decoded

__all__ = ["LinkKey", "OpenApiLink", "Seat", "TokenAlarm"]

log = logging.getLogger("fixadapter.openapi.link")

ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN"
TOKEN_EXPIRED_CODES = frozenset({"OA_AUTH_TOKEN_EXPIRED", "CH_ACCESS_TOKEN_INVALID"})
LOGIN_COMMAND = "fixadapter openapi login"
LOGOUT_SECONDS = 5.0
HEARTBEAT = 51  # ProtoHeartbeatEvent


class TokenAlarm(FixAdapterError):
    """A grant has no usable token: it is missing, or the server refused to refresh it."""


@dataclass(frozen=True)
class LinkKey:
    """What makes two accounts share a connection: the same server and the same application."""

    host: str
    port: int
    client_id: str


@dataclass(eq=False)
class Seat:
    """One account on the link: where its events and its up/down changes go."""

    ctid: int
    grant: str  # the token store's key of the grant that reaches this account
    on_frame: Callable[[Decoded], None]
    on_state: Callable[[bool, str | None], None]
    on_expiry: Callable[[float], None] | None = field(default=None)  # the access token's, Unix seconds
    record_as: str = "OPENAPI"  # its session in the compliance record
    up: bool = field(default=False)
    down_reason: str | None = field(default=None)


@dataclass
class _Grant:
    pair: TokenPair | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OpenApiLink:
    """See the module docstring. Built once per LinkKey (wiring), started by its first seat's connector."""

    def __init__(
        self,
        settings: OpenApiAccountConfig,
        tokens: TokenStore,
        *,
        counter: FrameCounter | None = None,
        on_token_alarm: Callable[[str, str | None], None] | None = None,
        context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`settings`: the first seat's section (server, application and timings are the link's);
        `on_token_alarm(grant, text)`: raise (text) or clear (None) the alarm of a grant."""
        self.settings = settings
        self.key = LinkKey(settings.server, settings.port, settings.client_id)
        self._secret: SecretStr = settings.client_secret
        self._tokens = tokens
        self._counter = counter
        self._on_token_alarm = on_token_alarm or (lambda _grant, _text: None)
        self._context = context
        self._rng = rng or random.Random()
        self._seats: dict[int, Seat] = {}
        self._grants: dict[str, _Grant] = {}
        self._transport: OpenApiTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = asyncio.Event()
        self._recorder: WireRecorder | None = None
        self.connects = 0
        self.last_failure: str | None = None

    # --- seats -----------------------------------------------------------------------------------------

    def seat(
        self,
        ctid: int,
        on_frame: Callable[[Decoded], None],
        on_state: Callable[[bool, str | None], None],
        grant: str = "default",
        on_expiry: Callable[[float], None] | None = None,
        record_as: str = "OPENAPI",
    ) -> Seat:
        """Seat an account (once); authorised now if connected, else at the next connect."""
        if ctid in self._seats:
            raise ValueError(f"Open API account {ctid} is seated twice on {self.where}")
        seat = Seat(ctid, grant_key(self.settings.client_id, grant), on_frame, on_state, on_expiry, record_as)
        self._seats[ctid] = seat
        self._grants.setdefault(seat.grant, _Grant())
        transport = self._transport
        if transport is not None and transport.is_open and self._connected.is_set():
            asyncio.get_running_loop().create_task(self._authorise_one(transport, seat))
        return seat

    async def unseat(self, ctid: int) -> None:
        """Log the account out (bounded wait) and forget it; the last seat closes the link."""
        seat = self._seats.pop(ctid, None)
        transport = self._transport
        if seat is not None and seat.up and transport is not None and transport.is_open:
            with contextlib.suppress(OpenApiError, TimeoutError):
                await transport.request(
                    oa.ProtoOAAccountLogoutReq(ctidTraderAccountId=ctid), timeout=LOGOUT_SECONDS
                )
            seat.up = False
        if not self._seats:
            await self.stop()

    def set_recorder(self, recorder: WireRecorder) -> None:
        """Every frame both ways goes to the compliance record, under the session of the account it is
        about (frames about no account, such as app auth and heartbeats, under the first seat's)."""
        self._recorder = recorder

    def _tap(self, direction: Direction, frame: bytes, message: Message | None) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        seat = None
        if message is not None and _has_account(message):
            seat = self._seats.get(message.ctidTraderAccountId)  # type: ignore[attr-defined]
        if seat is None:
            seat = next(iter(self._seats.values()), None)
        recorder.offer_frame(seat.record_as if seat is not None else "OPENAPI", direction.value, frame)

    # --- lifetime --------------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.key.host}:{self.key.port}"

    def start(self) -> None:
        """Start keeping the connection up (idempotent)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"openapi-link {self.where}"
            )

    async def stop(self) -> None:
        self._stopping = True
        transport = self._transport
        if transport is not None:
            await transport.close("the adapter is stopping")
        task = self._task
        if task is not None:
            await cancel_and_wait(task)
        self._task = None

    def is_up(self, ctid: int) -> bool:
        seat = self._seats.get(ctid)
        return seat is not None and seat.up

    async def request(self, message: Message, **options: object) -> Message:
        """A request on the current connection (OpenApiTransport.request's options); NotConnected when the
        link is down now (never queued across a reconnect: the caller decides what a resend means)."""
        transport = self._transport
        if transport is None or not transport.is_open or not self._connected.is_set():
            raise NotConnected(f"{self.where}: not connected ({self.last_failure or 'connecting'})")
        return await transport.request(message, **options)  # type: ignore[arg-type]

    # --- the loop --------------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            reason = await self._one_connection()
            self._all_down(reason)
            if self._stopping:
                return
            failures = 0 if reason is None else failures + 1
            delay = self._backoff(failures)
            log.info("Open API %s: reconnecting in %.1f s (%s)", self.where, delay, reason or "closed")
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        low, high = self.settings.reconnect_min_seconds, self.settings.reconnect_max_seconds
        ceiling = min(high, low * (2 ** max(0, failures - 1)))
        return low + self._rng.uniform(0, max(0.0, ceiling - low)) if ceiling > low else low

    async def _one_connection(self) -> str | None:
        """Connect, authorise, serve until the connection ends; returns why it ended."""
        settings = self.settings
        transport = OpenApiTransport(
            settings.server,
            settings.port,
            self._context or client_context(settings.ca_file),
            on_event=self._on_frame,
            settings=TransportSettings(
                heartbeat_interval=settings.heartbeat_seconds,
                dead_after=settings.dead_after_seconds,
                request_timeout=settings.request_timeout_seconds,
                connect_timeout=settings.connect_timeout_seconds,
            ),
            counter=self._counter,
            tap=self._tap,
        )
        self._transport = transport
        try:
            await transport.connect()
        except OSError as error:
            self.last_failure = transport.close_reason or f"{type(error).__name__}: {error}"
            return self.last_failure
        self.connects += 1
        try:
            await transport.request(
                oa.ProtoOAApplicationAuthReq(
                    clientId=settings.client_id, clientSecret=self._secret.get_secret_value()
                )
            )
        except ErrorResponse as refused:
            self.last_failure = (
                f"application auth refused: {refused.error_code} (check client_id and the secret)"
            )
            log.error("Open API %s: %s", self.where, self.last_failure)
            await transport.close(self.last_failure)
            return self.last_failure
        except OpenApiError as error:
            self.last_failure = f"application auth failed: {error}"
            await transport.close(self.last_failure)
            return self.last_failure
        self._connected.set()
        log.info("Open API %s: application authorised", self.where)
        await asyncio.gather(*(self._authorise_one(transport, seat) for seat in list(self._seats.values())))
        loop = asyncio.get_running_loop()
        keepers = [
            loop.create_task(self._keep_tokens_fresh(transport)),
            loop.create_task(self._retry_seats(transport)),
        ]
        try:
            reason = await transport.wait_closed()
        finally:
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            self._connected.clear()
        self.last_failure = reason
        return reason

    def _all_down(self, reason: str | None) -> None:
        for seat in self._seats.values():
            self._set_up(seat, False, reason or "connection closed")

    def _set_up(self, seat: Seat, up: bool, reason: str | None) -> None:
        """Tell the seat when it goes up or down, and when it stays down for a new reason (what to fix)."""
        if seat.up == up and (up or reason == seat.down_reason):
            return
        seat.up = up
        seat.down_reason = None if up else reason
        try:
            seat.on_state(up, reason)
        except Exception:
            log.exception("Open API account %d: state handler failed", seat.ctid)

    # --- account auth and tokens -----------------------------------------------------------------------

    async def _authorise_one(self, transport: OpenApiTransport, seat: Seat, refreshed: bool = False) -> None:
        try:
            pair = await self._token(transport, seat.grant)
            if seat.on_expiry is not None:
                seat.on_expiry(pair.expires_at.timestamp())
            await transport.request(
                oa.ProtoOAAccountAuthReq(
                    ctidTraderAccountId=seat.ctid, accessToken=pair.access_token.get_secret_value()
                )
            )
        except ErrorResponse as refused:
            if refused.error_code in TOKEN_EXPIRED_CODES and not refreshed:
                log.info(
                    "Open API account %d: the server calls the access token expired: refreshing", seat.ctid
                )
                await self._refresh_then_authorise(transport, seat)
                return
            if refused.error_code != ALREADY_LOGGED_IN:
                self._set_up(seat, False, _auth_refusal(seat.ctid, refused.error_code, self.settings))
                log.error("Open API account %d: account auth refused: %s", seat.ctid, refused)
                return
            log.info("Open API account %d: already authorised on this connection", seat.ctid)
        except TokenAlarm as alarm:
            self._set_up(seat, False, str(alarm))
            return
        except OpenApiError as error:
            self._set_up(seat, False, f"account auth failed: {error}")
            return
        log.info("Open API account %d authorised on %s", seat.ctid, self.where)
        self._set_up(seat, True, None)

    async def _refresh_then_authorise(self, transport: OpenApiTransport, seat: Seat) -> None:
        self._grants[seat.grant].pair = None
        try:
            await self._refresh(transport, seat.grant, force=True)
        except TokenAlarm as alarm:
            self._set_up(seat, False, str(alarm))
            return
        except OpenApiError as error:
            self._set_up(seat, False, f"token refresh failed: {error}")
            return
        await self._authorise_one(transport, seat, refreshed=True)

    async def _retry_seats(self, transport: OpenApiTransport) -> None:
        """Seats left unauthorised (no token yet, a refused refresh) are tried again now and then with the
        stored pair read afresh: a `fixadapter openapi login` meanwhile brings them back, no restart."""
        while transport.is_open:
            await asyncio.sleep(self.settings.reconnect_max_seconds)
            for seat in list(self._seats.values()):
                if not seat.up and transport.is_open:
                    self._grants[seat.grant].pair = None
                    await self._authorise_one(transport, seat)

    async def _token(self, transport: OpenApiTransport, key: str) -> TokenPair:
        grant = self._grants[key]
        async with grant.lock:  # a refresh under way: its new pair, not the one it replaces
            pass
        if grant.pair is None:
            grant.pair = await asyncio.to_thread(self._tokens.load, key)
        if grant.pair is None:
            text = f"no Open API token stored for {key}: run `{LOGIN_COMMAND}`"
            self._on_token_alarm(key, text)
            raise TokenAlarm(text)
        if grant.pair.seconds_left() < self.settings.refresh_before_seconds:
            await self._refresh(transport, key)
        if grant.pair is None:  # refreshed and lost meanwhile: another seat's refusal cleared it
            raise TokenAlarm(f"the token of {key} was refused while in use: see the openapi_token alarm")
        return grant.pair

    async def _refresh(self, transport: OpenApiTransport, key: str, force: bool = False) -> None:
        """In-band refresh of one grant, once at a time; the rotated pair is stored before it is used."""
        grant = self._grants[key]
        async with grant.lock:
            current = grant.pair or await asyncio.to_thread(self._tokens.load, key)
            if (
                current is not None
                and not force
                and current.seconds_left() >= self.settings.refresh_before_seconds
            ):
                grant.pair = current
                return

            async def obtain(refresh_token: SecretStr) -> TokenPair:
                sent_at = datetime.now(UTC)
                answer = await transport.request(
                    oa.ProtoOARefreshTokenReq(refreshToken=refresh_token.get_secret_value())
                )
                answer = expect(answer, oa.ProtoOARefreshTokenRes)
                return TokenPair.issued(
                    answer.accessToken, answer.refreshToken, answer.expiresIn, answer.tokenType, sent_at
                )

            try:
                grant.pair = await rotate(self._tokens, key, obtain, seen=current)
            except ErrorResponse as refused:
                text = (
                    f"the Open API refused to refresh the token of {key} ({refused.error_code}): run "
                    f"`{LOGIN_COMMAND}` to authorise again"
                )
                self._on_token_alarm(key, text)
                raise TokenAlarm(text) from None
            except FixAdapterError as error:
                text = f"the token of {key} cannot be refreshed: {error}"
                self._on_token_alarm(key, text)
                raise TokenAlarm(text) from None
            self._on_token_alarm(key, None)
            log.info("Open API token of %s refreshed in-band (expires %s)", key, grant.pair.expires_at)

    async def _keep_tokens_fresh(self, transport: OpenApiTransport) -> None:
        """Refresh each grant before it expires; the server then invalidates the old token's sessions and
        `_on_frame` re-authorises them with the new one."""
        while transport.is_open:
            soonest = None
            for key, grant in self._grants.items():
                if grant.pair is None:
                    continue
                left = grant.pair.seconds_left() - self.settings.refresh_before_seconds
                if left <= 0:
                    with contextlib.suppress(TokenAlarm, OpenApiError):
                        await self._refresh(transport, key)
                    continue
                soonest = left if soonest is None else min(soonest, left)
            await asyncio.sleep(min(soonest if soonest is not None else 3600.0, 3600.0))

    # --- frames that answer no request -----------------------------------------------------------------

    def _on_frame(self, decoded: Decoded) -> None:
        message = decoded.message
        if message is None or self._session_event(message):
            return
        ctid = message.ctidTraderAccountId if _has_account(message) else None  # type: ignore[attr-defined]
        seat = self._seats.get(ctid) if ctid is not None else None
        if seat is None:
            if decoded.payload_type != HEARTBEAT:  # heartbeats are expected; anything else is logged
                log.debug(
                    "Open API %s: %s for no seated account",
                    self.where,
                    payload_type_name(decoded.payload_type),
                )
            return
        seat.on_frame(decoded)

    def _session_event(self, message: Message) -> bool:
        """The server ending the connection, an account's session or its token: handled here."""
        if isinstance(message, oa.ProtoOAClientDisconnectEvent):
            reason = message.reason or "no reason given"
            log.warning("Open API %s: the server disconnected this application: %s", self.where, reason)
            transport = self._transport
            if transport is not None:
                asyncio.get_running_loop().create_task(
                    transport.close(f"the server disconnected the application: {reason}")
                )
            return True
        if isinstance(message, oa.ProtoOAAccountsTokenInvalidatedEvent):
            reason = message.reason or "no reason given"
            for ctid in message.ctidTraderAccountIds:
                seat = self._seats.get(ctid)
                if seat is not None:
                    self._reauthorise(
                        seat, f"token invalidated: {reason}", forget_token="refresh" not in reason
                    )
            return True
        if isinstance(message, oa.ProtoOAAccountDisconnectEvent):
            seat = self._seats.get(message.ctidTraderAccountId)
            if seat is not None:
                self._reauthorise(seat, "the server disconnected the account", forget_token=False)
            return True
        return False

    def _reauthorise(self, seat: Seat, why: str, *, forget_token: bool) -> None:
        log.warning("Open API account %d: %s; authorising it again", seat.ctid, why)
        self._set_up(seat, False, why)
        if forget_token:
            self._grants[seat.grant].pair = None  # read again: another daemon may have rotated it
        transport = self._transport
        if transport is not None and transport.is_open:
            asyncio.get_running_loop().create_task(self._authorise_one(transport, seat))


def _auth_refusal(ctid: int, code: str, settings: OpenApiAccountConfig) -> str:
    """Why an account cannot be authorised, and what to do about it."""
    if code == "CANT_ROUTE_REQUEST":
        other = "live" if settings.environment == "demo" else "demo"
        return (
            f"account auth refused: CANT_ROUTE_REQUEST: account {ctid} does not live on the "
            f"{settings.environment} server {settings.server}; if it is a {other} account set "
            f"`environment: {other}` in its openapi section (`{LOGIN_COMMAND}` lists each account with its "
            "environment)"
        )
    if code == "CH_CTID_TRADER_ACCOUNT_NOT_FOUND":
        return (
            f"account auth refused: {code}: no account {ctid} (give the ctidTraderAccountId, not the trader "
            f"login; `{LOGIN_COMMAND}` lists them)"
        )
    if code in TOKEN_EXPIRED_CODES:
        return f"account auth refused: {code} even after a refresh: run `{LOGIN_COMMAND}`"
    return f"account auth refused: {code}"


def _has_account(message: Message) -> bool:
    fields = message.DESCRIPTOR.fields_by_name
    return "ctidTraderAccountId" in fields and message.HasField("ctidTraderAccountId")
