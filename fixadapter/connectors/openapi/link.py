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
and the rotated pair is stored before it is used (tokens.rotate). Several links (two daemons on a shared
store, one daemon's demo and live links) may share a grant, and one's refresh invalidates the others'
sessions: a link whose token is invalidated reads the stored pair again, and one whose token is refused
refreshes only that refused pair (compare-and-swap under the store's lock), so one refresh costs the
others one re-authorisation, never a refresh of their own. A refresh the server refuses for now (rate
limit, maintenance) is retried with backoff; one it refuses for good raises the `openapi_token` alarm,
with what to do, and the seat stays down until a new login. The answer to a refresh that timed out is
still taken when it comes: the server rotated the pair, so it holds the only live refresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import Message
from pydantic import SecretStr

from fixadapter.connectors.base import WireRecorder
from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.connectors.openapi.counting import Direction, FrameCounter, payload_type_name
from fixadapter.connectors.openapi.errors import (
    ErrorResponse,
    NotConnected,
    OpenApiError,
    RequestTimeout,
    expect,
)
from fixadapter.connectors.openapi.rate_limit import RateLimiter
from fixadapter.connectors.openapi.tokens import (
    RefreshPending,
    TokenPair,
    TokenStore,
    grant_key,
    rotate,
    store_late_answer,
)
from fixadapter.connectors.openapi.transport import OpenApiTransport, TransportSettings, client_context
from fixadapter.engine.tasks import cancel_and_wait
from fixadapter.errors import FixAdapterError
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa
from fixadapter.protocols.openapi.messages import Decoded

__all__ = ["LinkKey", "OpenApiLink", "RefreshDeferred", "Seat", "TokenAlarm"]

log = logging.getLogger("fixadapter.openapi.link")

ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN"
TOKEN_EXPIRED_CODES = frozenset({"OA_AUTH_TOKEN_EXPIRED", "CH_ACCESS_TOKEN_INVALID"})
# Refusals of a refresh that mean the refresh token is dead (spent, revoked, never valid): only a new login
# helps. The reference names no refresh-specific code; these are what a bad token draws (the simulator
# answers CH_ACCESS_TOKEN_INVALID). Any other code (REQUEST_FREQUENCY_EXCEEDED, BLOCKED_PAYLOAD_TYPE,
# SERVER_IS_UNDER_MAINTENANCE...) is taken as temporary and retried with backoff.
REFRESH_TOKEN_DEAD_CODES = TOKEN_EXPIRED_CODES | {"INVALID_REQUEST", "ACCESS_DENIED"}
REFRESH_TIMEOUT_SECONDS = 90.0  # a refresh answer is worth waiting for; under the Redis lock's 120 s expiry
LATE_REFRESH_SECONDS = 300.0  # how long a refresh that timed out holds back another one (its answer may come)
KEEP_FRESH_SECONDS = (1.0, 3600.0)  # the token keeper's shortest and longest sleep
LOGIN_COMMAND = "fixadapter openapi login"
LOGOUT_SECONDS = 5.0
BACKGROUND_STOP_SECONDS = 10.0  # at stop, for a late refresh answer being stored (then cancelled)
HEARTBEAT = 51  # ProtoHeartbeatEvent


class TokenAlarm(FixAdapterError):
    """A grant has no usable token: it is missing, or the server refused to refresh it."""


class RefreshDeferred(TokenAlarm):
    """A refresh that cannot be done now (refused for now, unanswered, or an earlier one's answer still
    awaited): retried later by itself, no login needed."""


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
    pair: TokenPair | None = None  # None: read the store again before use
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0  # refreshes failed in a row (the backoff)
    retry_at: float = 0.0  # loop time before which a failed refresh is not tried again...
    failure: TokenAlarm | None = None  # ...but answered with what it failed with


@dataclass(frozen=True)
class _LateRefresh:
    """A refresh request sent and not answered in time: its answer, if it comes, holds the live pair."""

    key: str
    spent: SecretStr  # the refresh token it sent (dead once the server answers)
    sent_at: datetime
    holds_until: float  # loop time until which no other refresh of the grant is sent


class OpenApiLink:
    """See the module docstring. Built once per LinkKey (wiring), started by its first seat's connector."""

    refresh_timeout: float = REFRESH_TIMEOUT_SECONDS

    def __init__(
        self,
        settings: OpenApiAccountConfig,
        tokens: TokenStore,
        *,
        counter: FrameCounter | None = None,
        on_token_alarm: Callable[[str, str | None], None] | None = None,
        context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`settings`: the first seat's section (server, application and timings are the link's);
        `on_token_alarm(grant, text)`: raise (text) or clear (None) the alarm of a grant. `limiter`: the
        application's request budget (reference 1.7, read strictly: per application), kept across
        reconnects and shared by the application's links; a budget of its own when None."""
        self.settings = settings
        self.key = LinkKey(settings.server, settings.port, settings.client_id)
        self._secret: SecretStr = settings.client_secret
        self._tokens = tokens
        self._counter = counter
        self._on_token_alarm = on_token_alarm or (lambda _grant, _text: None)
        self._context = context
        self._rng = rng or random.Random()
        self._seats: dict[int, Seat] = {}
        self.limiter = limiter or RateLimiter()
        self._grants: dict[str, _Grant] = {}
        self._transport: OpenApiTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = asyncio.Event()
        self._recorder: WireRecorder | None = None
        self._left: Seat | None = None  # the seat unseated last: its logout is recorded as its own
        self._late: dict[str, _LateRefresh] = {}  # by clientMsgId, on the current connection
        self._refresh_ids = itertools.count(1)
        self._background: set[asyncio.Task[None]] = set()
        self._retries: dict[
            str, asyncio.TimerHandle
        ] = {}  # by grant: its retry after a refresh failed for now
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
        if seat is not None:
            self._left = seat  # its logout's frames, and the link's last ones, are still its own to record
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
            ctid = message.ctidTraderAccountId  # type: ignore[attr-defined]
            seat = self._seats.get(ctid) or (self._left if self._left and self._left.ctid == ctid else None)
        if seat is None:
            seat = next(iter(self._seats.values()), self._left)
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
        """Close the connection and end every task of the link. A late refresh answer being stored is let
        finish first (bounded): it holds the only live refresh token."""
        self._stopping = True
        for retry in self._retries.values():
            retry.cancel()
        self._retries.clear()
        transport = self._transport
        if transport is not None:
            await transport.close("the adapter is stopping", expected=True)
        task = self._task
        if task is not None:
            await cancel_and_wait(task)
        self._task = None
        background = set(self._background)
        if background:
            _, late = await asyncio.wait(background, timeout=BACKGROUND_STOP_SECONDS)
            for work in late:
                work.cancel()
            if late:
                await asyncio.wait(late)

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
            limiter=self.limiter,
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
            self._late.clear()  # their answers could only come on this connection
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
        except TokenAlarm as alarm:
            self._set_up(seat, False, str(alarm))
            return
        except FixAdapterError as error:  # the token store could not be read (Redis down, a file error)
            self._set_up(seat, False, f"the token store could not be read ({error}): tried again shortly")
            return
        except OpenApiError as error:
            self._set_up(seat, False, f"account auth failed: {error}")
            return
        if seat.on_expiry is not None:
            seat.on_expiry(pair.expires_at.timestamp())
        try:
            await transport.request(
                oa.ProtoOAAccountAuthReq(
                    ctidTraderAccountId=seat.ctid, accessToken=pair.access_token.get_secret_value()
                )
            )
        except ErrorResponse as refused:
            if refused.error_code in TOKEN_EXPIRED_CODES and not refreshed:
                log.info("Open API account %d: the server refused the access token: refreshing", seat.ctid)
                await self._refresh_then_authorise(transport, seat, pair)
                return
            if refused.error_code != ALREADY_LOGGED_IN:
                self._set_up(seat, False, _auth_refusal(seat.ctid, refused.error_code, self.settings))
                log.error("Open API account %d: account auth refused: %s", seat.ctid, refused)
                return
            log.info("Open API account %d: already authorised on this connection", seat.ctid)
        except OpenApiError as error:
            self._set_up(seat, False, f"account auth failed: {error}")
            return
        log.info("Open API account %d authorised on %s", seat.ctid, self.where)
        self._set_up(seat, True, None)

    async def _refresh_then_authorise(
        self, transport: OpenApiTransport, seat: Seat, refused: TokenPair
    ) -> None:
        try:
            await self._refresh(transport, seat.grant, used=refused)
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

    def _retry_grant(self, key: str) -> None:
        """Authorise again the seats of a grant that are down (its refresh failed for now, or came late)."""
        self._retries.pop(key, None)
        transport = self._transport
        if transport is None or not transport.is_open or not self._connected.is_set():
            return  # the next connection authorises every seat
        for seat in list(self._seats.values()):
            if seat.grant == key and not seat.up:
                self._spawn(self._authorise_one(transport, seat))

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _token(self, transport: OpenApiTransport, key: str) -> TokenPair:
        grant = self._grants[key]
        async with grant.lock:  # a refresh under way: its new pair, not the one it replaces
            if grant.pair is None:
                grant.pair = await asyncio.to_thread(self._tokens.load, key)
            pair = grant.pair
        if pair is None:
            text = f"no Open API token stored for {key}: run `{LOGIN_COMMAND}`"
            self._on_token_alarm(key, text)
            raise TokenAlarm(text)
        if pair.seconds_left() < self.settings.refresh_before_seconds:
            try:
                return await self._refresh(transport, key)
            except RefreshDeferred:  # a pair still valid is used meanwhile
                if pair.seconds_left() <= 0:
                    raise
        return pair

    async def _refresh(
        self, transport: OpenApiTransport, key: str, *, force: bool = False, used: TokenPair | None = None
    ) -> TokenPair:
        """In-band refresh of one grant, once at a time; the rotated pair is stored before it is used.

        `used`: the pair the server refused. Only that pair is ever refreshed: when the pair held or stored
        is another one (another link or process refreshed it), that one is taken as it is, for refreshing it
        would invalidate the sessions of whoever just stored it. Without `used`, the pair held is refreshed
        if it is close to expiry (or `force`)."""
        grant = self._grants[key]
        async with grant.lock:
            if used is None:
                held = grant.pair or await asyncio.to_thread(self._tokens.load, key)
                if (
                    held is not None
                    and not force
                    and held.seconds_left() >= self.settings.refresh_before_seconds
                ):
                    grant.pair = held
                    return held
                used = held
            elif grant.pair is not None and grant.pair.refresh_token != used.refresh_token:
                return grant.pair  # refreshed or read again since `used` was refused
            self._raise_if_deferred(key)
            grant.pair = await self._rotate(transport, key, used)
            grant.failures, grant.retry_at, grant.failure = 0, 0.0, None
            self._on_token_alarm(key, None)
            return grant.pair

    async def _rotate(self, transport: OpenApiTransport, key: str, used: TokenPair | None) -> TokenPair:
        """tokens.rotate with `used` as the pair seen (its compare-and-swap); failures become TokenAlarm
        (for good) or RefreshDeferred (for now), and hold back the next attempt."""

        async def obtain(refresh_token: SecretStr) -> TokenPair:
            return await self._obtain(transport, key, refresh_token)

        try:
            fresh = await rotate(self._tokens, key, obtain, seen=used)
        except ErrorResponse as refused:
            raise self._failed(key, *self._refusal(key, refused)) from None
        except (OpenApiError, RefreshPending) as error:
            delay = self._back_off(key)
            text = f"the token of {key} could not be refreshed ({error}): retrying in {delay:.1f} s"
            raise self._failed(key, RefreshDeferred(text), retry=True) from None
        except FixAdapterError as error:
            self._back_off(key)
            raise self._failed(key, TokenAlarm(f"the token of {key} cannot be refreshed: {error}")) from None
        if used is None or fresh.refresh_token != used.refresh_token:
            log.info("Open API token of %s refreshed (expires %s)", key, fresh.expires_at)
        return fresh

    def _refusal(self, key: str, refused: ErrorResponse) -> tuple[TokenAlarm, bool]:
        """What a refused refresh means: the token is dead (a login is needed), or try again later."""
        code = refused.error_code
        if code in REFRESH_TOKEN_DEAD_CODES:
            self._back_off(key)
            text = (
                f"the Open API refused to refresh the token of {key} ({code}): run `{LOGIN_COMMAND}` to "
                "authorise again"
            )
            return TokenAlarm(text), False
        delay = self._back_off(key, refused.retry_after)
        text = (
            f"the Open API refused to refresh the token of {key} for now ({code}): retrying in {delay:.1f} s"
        )
        return RefreshDeferred(text), True

    def _back_off(self, key: str, at_least: float | None = None) -> float:
        """Hold back the next refresh of a grant: the reconnect backoff, or longer if the server said so."""
        grant = self._grants[key]
        grant.failures += 1
        delay = max(self._backoff(grant.failures), float(at_least or 0))
        grant.retry_at = asyncio.get_running_loop().time() + delay
        return delay

    def _failed(self, key: str, failure: TokenAlarm, retry: bool = False) -> TokenAlarm:
        """Remember (and say) why the refresh failed; a temporary failure is tried again by itself."""
        grant = self._grants[key]
        grant.failure = failure
        if isinstance(failure, RefreshDeferred):
            log.warning("Open API %s", failure)
        else:
            self._on_token_alarm(key, str(failure))
        if retry:
            loop = asyncio.get_running_loop()
            earlier = self._retries.pop(key, None)
            if earlier is not None:
                earlier.cancel()
            self._retries[key] = loop.call_later(
                max(0.0, grant.retry_at - loop.time()), self._retry_grant, key
            )
        return failure

    def _raise_if_deferred(self, key: str) -> None:
        """No refresh while an earlier one's answer may still come (it would spend a dead refresh token
        and lose the pair that answer brings), nor before a failed one's backoff is over."""
        now = asyncio.get_running_loop().time()
        for late in self._late.values():
            if late.key == key and now < late.holds_until:
                raise RefreshDeferred(
                    f"the answer to the refresh of {key} sent at {late.sent_at:%H:%M:%S} is still awaited"
                )
        grant = self._grants[key]
        if grant.failure is not None and now < grant.retry_at:
            raise type(grant.failure)(str(grant.failure))

    async def _obtain(self, transport: OpenApiTransport, key: str, refresh_token: SecretStr) -> TokenPair:
        """One ProtoOARefreshTokenReq; if it times out once sent, its answer is still expected (`_late`)."""
        msg_id = f"refresh-{next(self._refresh_ids)}"
        sent_at = datetime.now(UTC)
        try:
            answer = await transport.request(
                oa.ProtoOARefreshTokenReq(refreshToken=refresh_token.get_secret_value()),
                timeout=self.refresh_timeout,
                client_msg_id=msg_id,
            )
        except RequestTimeout as unanswered:
            if unanswered.sent:
                holds_until = asyncio.get_running_loop().time() + LATE_REFRESH_SECONDS
                self._late[msg_id] = _LateRefresh(key, refresh_token, sent_at, holds_until)
            raise
        return _issued(expect(answer, oa.ProtoOARefreshTokenRes), sent_at)

    async def _take_late_answer(self, late: _LateRefresh, answer: oa.ProtoOARefreshTokenRes) -> None:
        """Store and use the pair a late refresh answer brings (under both locks, as a refresh's)."""
        key, fresh = late.key, _issued(answer, late.sent_at)
        grant = self._grants[key]
        async with grant.lock:
            try:
                grant.pair = await store_late_answer(self._tokens, key, late.spent, fresh)
            except FixAdapterError as error:
                grant.pair = fresh  # not stored: used here at least, and the alarm says so
                text = f"the refreshed token of {key} could not be stored ({error}): a restart loses it"
                log.error("Open API %s", text)
                self._on_token_alarm(key, text)
                return
            grant.failures, grant.retry_at, grant.failure = 0, 0.0, None
        self._on_token_alarm(key, None)
        self._retry_grant(key)

    async def _keep_tokens_fresh(self, transport: OpenApiTransport) -> None:
        """Refresh each grant before it expires; the server then invalidates the old token's sessions and
        `_on_frame` re-authorises them with the new one."""
        while transport.is_open:
            for key in list(self._grants):
                due = self._refresh_due_in(key)
                if due is not None and due <= 0:
                    with contextlib.suppress(TokenAlarm, OpenApiError):
                        await self._refresh(transport, key)
            await asyncio.sleep(self._next_refresh_in())

    def _refresh_due_in(self, key: str) -> float | None:
        """Seconds until a grant's refresh is due (its margin before expiry, its backoff); None: no pair."""
        grant = self._grants[key]
        if grant.pair is None:
            return None
        now = asyncio.get_running_loop().time()
        held_back = [grant.retry_at] + [late.holds_until for late in self._late.values() if late.key == key]
        return max(grant.pair.seconds_left() - self.settings.refresh_before_seconds, max(held_back) - now)

    def _next_refresh_in(self) -> float:
        shortest, longest = KEEP_FRESH_SECONDS
        dues = [due for key in self._grants if (due := self._refresh_due_in(key)) is not None]
        return max(shortest, min([longest, *dues]))

    # --- frames that answer no request -----------------------------------------------------------------

    def _on_frame(self, decoded: Decoded) -> None:
        message = decoded.message
        if message is None or self._late_answer(decoded) or self._session_event(message):
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

    def _late_answer(self, decoded: Decoded) -> bool:
        """The answer to a refresh that timed out: the server rotated the pair, so its pair is taken."""
        late = self._late.pop(decoded.client_msg_id or "", None)
        message = decoded.message
        if late is None:
            if isinstance(message, oa.ProtoOARefreshTokenRes):  # no refresh of ours: nothing to store it as
                log.error(
                    "Open API %s: a refresh answer for no refresh sent (clientMsgId=%s)",
                    self.where,
                    decoded.client_msg_id,
                )
                return True
            return False
        if isinstance(message, oa.ProtoOARefreshTokenRes):
            log.warning(
                "Open API %s: the answer to the refresh of %s came late: storing it", self.where, late.key
            )
            self._spawn(self._take_late_answer(late, message))
        else:
            log.warning(
                "Open API %s: the refresh of %s that timed out was answered %s: nothing was rotated",
                self.where,
                late.key,
                payload_type_name(decoded.payload_type),
            )
            self._retry_grant(late.key)
        return True

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
            # Read the store again whatever the reason: "token was refreshed" by another link or daemon
            # means the pair held here is dead and the new one is (or is about to be) in the store.
            reason = message.reason or "no reason given"
            for ctid in message.ctidTraderAccountIds:
                seat = self._seats.get(ctid)
                if seat is not None:
                    self._reauthorise(seat, f"token invalidated: {reason}", forget_token=True)
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
            self._spawn(self._authorise_one(transport, seat))


def _issued(answer: oa.ProtoOARefreshTokenRes, sent_at: datetime) -> TokenPair:
    return TokenPair.issued(
        answer.accessToken, answer.refreshToken, answer.expiresIn, answer.tokenType, sent_at
    )


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
