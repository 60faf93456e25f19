"""`fixadapter check` for an account on the Open API: TLS to the server, application auth, the stored token
(present, when it expires, refreshed in-band when the daemon would refresh it), account auth, the trader's
figures, the symbol count, a reconcile (positions and orders) and the account logout.

Each step is one request on the adapter's own Open API transport (connectors/openapi/transport.py), the
one the daemon's link uses, so that each can be timed and named on its own line. No order is sent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from google.protobuf.message import Message
from pydantic import SecretStr

from fixadapter.check.probe import Endpoint, probe
from fixadapter.check.report import Report, Timer
from fixadapter.config import AdapterConfig
from fixadapter.connectors.openapi.account_config import OpenApiAccountConfig
from fixadapter.connectors.openapi.errors import ErrorResponse, OpenApiError, expect
from fixadapter.connectors.openapi.link import LOGIN_COMMAND, TOKEN_EXPIRED_CODES, _auth_refusal
from fixadapter.connectors.openapi.mapping import money
from fixadapter.connectors.openapi.tokens import TokenPair, TokenStore, grant_key, rotate
from fixadapter.connectors.openapi.transport import OpenApiTransport, TransportSettings, client_context
from fixadapter.errors import ConfigError, FixAdapterError
from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as oa

PORTS_HINT = "the Open API listens on port 5035 of demo.ctraderapi.com and live.ctraderapi.com"


def token_store(settings: OpenApiAccountConfig) -> TokenStore:
    """The store the daemon reads this account's tokens from."""
    from fixadapter.connectors.openapi.token_redis import RedisTokenStore
    from fixadapter.connectors.openapi.tokens import FileTokenStore

    if settings.token_store_url is not None:
        return RedisTokenStore(settings.token_store_url)
    return FileTokenStore(settings.token_file)


def _secret_variable(name: str) -> str:
    return f"FIXADAPTER_ACCOUNTS__{name.upper()}__OPENAPI__CLIENT_SECRET"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _left(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(seconds, 0) / 60:.0f} minutes"


class _Steps:
    """One account's steps on one connection."""

    def __init__(
        self,
        name: str,
        settings: OpenApiAccountConfig,
        report: Report,
        timeout: float,
        refresh_token: bool = False,
    ) -> None:
        self.refresh_token = refresh_token
        self.name = name
        self.settings = settings
        self.report = report
        self.timeout = timeout
        self.ctid = settings.ctid_trader_account_id
        self.transport = OpenApiTransport(
            settings.server,
            settings.port,
            client_context(settings.ca_file),
            on_event=lambda _decoded: None,
            settings=TransportSettings(
                heartbeat_interval=settings.heartbeat_seconds,
                dead_after=settings.dead_after_seconds,
                request_timeout=timeout,
                connect_timeout=timeout,
            ),
        )

    async def ask(self, message: Message) -> Message:
        return await self.transport.request(message, timeout=self.timeout)

    async def run(self) -> None:
        timer = Timer()
        try:
            await self.transport.connect()
        except OSError as error:
            self.report.failed(
                "Open API connect",
                self.transport.close_reason or str(error),
                f"the probe above worked, this connection did not: try again ({PORTS_HINT})",
                timer.seconds,
            )
            return
        try:
            await self._authorised_steps()
        finally:
            await self.transport.close("fixadapter check is done", expected=True)

    async def _authorised_steps(self) -> None:
        if not await self._application_auth():
            for step in ("token", "account auth", "trader", "symbols", "reconcile", "account logout"):
                self.report.skipped(step, "the application is not authorised")
            return
        pair = await self._token()
        if pair is None:
            for step in ("account auth", "trader", "symbols", "reconcile", "account logout"):
                self.report.skipped(step, "no usable token")
            return
        authorised = await self._account_auth(pair, last_try=False)
        if (
            authorised is None
        ):  # the server calls it expired: refreshed and tried once more, as the daemon does
            key = grant_key(self.settings.client_id, self.settings.grant)
            state = "refused by the server as expired"
            fresh = await self._refresh(token_store(self.settings), key, pair, state, Timer())
            authorised = fresh is not None and bool(await self._account_auth(fresh, last_try=True))
        if not authorised:
            for step in ("trader", "symbols", "reconcile", "account logout"):
                self.report.skipped(step, "the account is not authorised")
            return
        await self._trader()
        await self._symbols()
        await self._reconcile()
        await self._logout()

    async def _application_auth(self) -> bool:
        timer = Timer()
        settings = self.settings
        try:
            await self.ask(
                oa.ProtoOAApplicationAuthReq(
                    clientId=settings.client_id, clientSecret=settings.client_secret.get_secret_value()
                )
            )
        except ErrorResponse as refused:
            self.report.failed(
                "application auth",
                f"refused: {refused.error_code}",
                f"check openapi.client_id ({settings.client_id}) and the client secret "
                f"({_secret_variable(self.name)}) against the application's page on openapi.ctrader.com",
                timer.seconds,
            )
            return False
        except OpenApiError as error:
            self.report.failed(
                "application auth", str(error), "try again; if it persists ask Spotware", timer.seconds
            )
            return False
        self.report.ok("application auth", f"application {settings.client_id} authorised", timer.seconds)
        return True

    async def _token(self) -> TokenPair | None:
        timer = Timer()
        key = grant_key(self.settings.client_id, self.settings.grant)
        try:
            store = token_store(self.settings)
            pair = await asyncio.to_thread(store.load, key)
        except FixAdapterError as error:
            self.report.failed(
                "token", str(error), f"fix the token store, or run `{LOGIN_COMMAND}`", timer.seconds
            )
            return None
        if pair is None:
            where = (
                "the Redis token store" if self.settings.token_store_url else str(self.settings.token_file)
            )
            self.report.failed(
                "token",
                f"no token stored for {key} in {where}",
                f"run `{LOGIN_COMMAND} --client-id {self.settings.client_id}` (with the same token file and "
                "FIXADAPTER_OPENAPI_TOKEN_KEY) to authorise the application for this account",
                timer.seconds,
            )
            return None
        left = pair.seconds_left()
        if left >= self.settings.refresh_before_seconds and self.refresh_token:
            state = "valid, refresh asked for"
            return await self._refresh(store, key, pair, state, timer)
        if left >= self.settings.refresh_before_seconds:
            self.report.ok(
                "token",
                f"present, expires {_when(pair.expires_at)} (in {_left(left)}); the daemon refreshes it "
                f"in-band within {_left(self.settings.refresh_before_seconds)} of that",
                timer.seconds,
            )
            return pair
        state = "expired" if left <= 0 else f"expires in {_left(left)}"
        return await self._refresh(store, key, pair, state, timer)

    async def _refresh(
        self, store: TokenStore, key: str, pair: TokenPair, state: str, timer: Timer
    ) -> TokenPair | None:
        async def obtain(refresh_token: SecretStr) -> TokenPair:
            sent_at = datetime.now(UTC)
            answer = expect(
                await self.ask(oa.ProtoOARefreshTokenReq(refreshToken=refresh_token.get_secret_value())),
                oa.ProtoOARefreshTokenRes,
            )
            return TokenPair.issued(
                answer.accessToken, answer.refreshToken, answer.expiresIn, answer.tokenType, sent_at
            )

        try:
            fresh = await rotate(store, key, obtain, seen=pair)
        except ErrorResponse as refused:
            self.report.failed(
                "token",
                f"{state} ({_when(pair.expires_at)}) and the refresh was refused: {refused.error_code}",
                f"run `{LOGIN_COMMAND} --client-id {self.settings.client_id}` to authorise again",
                timer.seconds,
            )
            return None
        except (OpenApiError, FixAdapterError) as error:
            self.report.failed(
                "token",
                f"{state} ({_when(pair.expires_at)}) and it could not be refreshed: {error}",
                f"try again; if it persists run `{LOGIN_COMMAND}`",
                timer.seconds,
            )
            return None
        self.report.ok(
            "token",
            f"{state}: refreshed, the new one expires {_when(fresh.expires_at)} (stored)",
            timer.seconds,
        )
        return fresh

    async def _account_auth(self, pair: TokenPair, *, last_try: bool) -> bool | None:
        """True authorised, False refused (said), None: the server called the token expired and this was
        not the last try (nothing said: the caller refreshes it and tries again)."""
        timer = Timer()
        try:
            await self.ask(
                oa.ProtoOAAccountAuthReq(
                    ctidTraderAccountId=self.ctid, accessToken=pair.access_token.get_secret_value()
                )
            )
        except ErrorResponse as refused:
            if refused.error_code in TOKEN_EXPIRED_CODES and not last_try:
                return None
            text = _auth_refusal(self.ctid, refused.error_code, self.settings)
            advice = (
                f"run `{LOGIN_COMMAND}`: the token is no longer valid"
                if refused.error_code in TOKEN_EXPIRED_CODES
                else "`fixadapter openapi accounts` lists the accounts the token reaches"
            )
            self.report.failed("account auth", text, advice, timer.seconds)
            return False
        except OpenApiError as error:
            self.report.failed("account auth", str(error), "try again", timer.seconds)
            return False
        self.report.ok("account auth", f"account {self.ctid} authorised", timer.seconds)
        return True

    async def _trader(self) -> None:
        timer = Timer()
        try:
            answer = expect(
                await self.ask(oa.ProtoOATraderReq(ctidTraderAccountId=self.ctid)), oa.ProtoOATraderRes
            )
        except OpenApiError as error:
            self.report.failed(
                "trader", str(error), "try again; if it persists ask the broker", timer.seconds
            )
            return
        trader = answer.trader
        digits = trader.moneyDigits if trader.HasField("moneyDigits") else 2
        parts = [f"balance {money(trader.balance, digits)}"]
        if trader.HasField("leverageInCents"):
            parts.append(f"leverage 1:{trader.leverageInCents / 100:g}")
        if trader.HasField("brokerName"):
            parts.append(f"broker {trader.brokerName}")
        if trader.HasField("traderLogin"):
            parts.append(f"login {trader.traderLogin}")
        self.report.ok("trader", ", ".join(parts), timer.seconds)

    async def _symbols(self) -> None:
        timer = Timer()
        try:
            answer = expect(
                await self.ask(oa.ProtoOASymbolsListReq(ctidTraderAccountId=self.ctid)),
                oa.ProtoOASymbolsListRes,
            )
        except OpenApiError as error:
            self.report.failed(
                "symbols", str(error), "try again; if it persists ask the broker", timer.seconds
            )
            return
        self.report.ok("symbols", f"{len(answer.symbol)} symbols", timer.seconds)

    async def _reconcile(self) -> None:
        timer = Timer()
        try:
            answer = expect(
                await self.ask(oa.ProtoOAReconcileReq(ctidTraderAccountId=self.ctid)), oa.ProtoOAReconcileRes
            )
        except OpenApiError as error:
            self.report.failed(
                "reconcile", str(error), "try again; if it persists ask the broker", timer.seconds
            )
            return
        self.report.ok(
            "reconcile",
            f"{len(answer.position)} open positions, {len(answer.order)} working orders",
            timer.seconds,
        )

    async def _logout(self) -> None:
        timer = Timer()
        try:
            await self.ask(oa.ProtoOAAccountLogoutReq(ctidTraderAccountId=self.ctid))
        except OpenApiError as error:
            self.report.failed("account logout", str(error), "nothing else is affected", timer.seconds)
            return
        self.report.ok("account logout", f"account {self.ctid} logged out", timer.seconds)


async def check_openapi(
    config: AdapterConfig, name: str, report: Report, timeout: float, refresh_token: bool = False
) -> None:
    """`refresh_token`: refresh a token that is not due yet too (the pair rotates and is stored: a daemon
    using the same store reads the new one when the server invalidates its old one)."""
    settings = config.account(name).openapi
    if settings is None:
        raise ConfigError(f"account {name} has no `openapi` section")
    report.heading(
        f"account {name}: Open API, ctidTraderAccountId {settings.ctid_trader_account_id}, "
        f"{settings.endpoint}"
    )
    endpoint = Endpoint(
        "Open API",
        settings.server,
        settings.port,
        True,
        settings.ca_file,
        timeout,
        PORTS_HINT,
        f"accounts[{name}].openapi.ca_file",
    )
    if not await probe(endpoint, report, client_context(settings.ca_file)):
        report.skipped("application auth", "the server is not reachable")
        return
    await _Steps(name, settings, report, timeout, refresh_token).run()


__all__ = ["check_openapi", "token_store"]
