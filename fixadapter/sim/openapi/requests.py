"""The Open API requests the simulator answers, each checked in cTrader's order: application, then
account authorisation, then the request itself.

Session requests (application and account auth, tokens, logout) are answered from the connection and
the token registry; queries from the venue of the account; trading requests go to `trading.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from fixadapter.protocols.openapi.generated import OpenApiMessages_pb2 as messages
from fixadapter.protocols.openapi.generated import OpenApiModelMessages_pb2 as model
from fixadapter.protocols.openapi.messages import Decoded
from fixadapter.sim.openapi import convert
from fixadapter.sim.openapi.connection import Connection, account_id, account_of, message_of
from fixadapter.sim.openapi.front import Front
from fixadapter.sim.openapi.tokens import AccessState, CodeRefused
from fixadapter.sim.openapi.trading import Trading
from fixadapter.sim.records import VenueDeal

SERVER_VERSION = "fixadapter-sim-91"
MAX_TIMESTAMP_MS = 2_147_483_646_000
Handler = Callable[[Connection, Decoded], None]


class RequestHandlers:
    def __init__(self, server: Front) -> None:
        self.server = server
        self.trading = Trading(server)
        # Requests that need no authorised account.
        self._session: dict[int, Handler] = {
            model.PROTO_OA_APPLICATION_AUTH_REQ: self._application_auth,
            model.PROTO_OA_VERSION_REQ: self._version,
            model.PROTO_OA_GET_ACCOUNTS_BY_ACCESS_TOKEN_REQ: self._accounts_by_token,
            model.PROTO_OA_ACCOUNT_AUTH_REQ: self._account_auth,
            model.PROTO_OA_REFRESH_TOKEN_REQ: self._refresh_token,
        }
        # Requests on one authorised account (ACCOUNT_NOT_AUTHORIZED otherwise).
        self._account: dict[int, Handler] = {
            model.PROTO_OA_ACCOUNT_LOGOUT_REQ: self._logout,
            model.PROTO_OA_TRADER_REQ: self._trader,
            model.PROTO_OA_SYMBOLS_LIST_REQ: self._symbols,
            model.PROTO_OA_SYMBOL_BY_ID_REQ: self._symbol_by_id,
            model.PROTO_OA_RECONCILE_REQ: self._reconcile,
            model.PROTO_OA_ORDER_LIST_REQ: self._order_list,
            model.PROTO_OA_ORDER_DETAILS_REQ: self._order_details,
            model.PROTO_OA_DEAL_LIST_REQ: self._deal_list,
            **self.trading.handlers(),
        }

    def handle(self, connection: Connection, decoded: Decoded) -> None:
        session = self._session.get(decoded.payload_type)
        if session is not None:
            session(connection, decoded)
            return
        handler = self._account.get(decoded.payload_type)
        if handler is None:
            self.server.error(connection, decoded, "UNSUPPORTED_MESSAGE", "this simulator does not serve it")
            return
        if account_of(decoded.message) not in connection.accounts:
            self.server.error(
                connection, decoded, "ACCOUNT_NOT_AUTHORIZED", "Trading account is not authorized"
            )
            return
        handler(connection, decoded)

    @staticmethod
    def reply(connection: Connection, decoded: Decoded, message: Message) -> None:
        connection.send(message, decoded.client_msg_id)

    # -- session -------------------------------------------------------------------------------

    def _application_auth(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAApplicationAuthReq)
        if connection.app_authorised:
            self.server.error(
                connection, decoded, "CH_CLIENT_ALREADY_AUTHENTICATED", "Client is already authenticated"
            )
            return
        if not self.server.registry.client_ok(request.clientId, request.clientSecret):
            self.server.error(
                connection, decoded, "CH_CLIENT_AUTH_FAILURE", "clientId or clientSecret is wrong"
            )
            return
        connection.app_authorised = True
        self.reply(connection, decoded, messages.ProtoOAApplicationAuthRes())

    def _version(self, connection: Connection, decoded: Decoded) -> None:
        self.reply(connection, decoded, messages.ProtoOAVersionRes(version=SERVER_VERSION))

    def _token_refused(self, connection: Connection, decoded: Decoded, token: str) -> bool:
        """CH_ACCESS_TOKEN_INVALID for a token that is unknown or expired (cTrader's observed code, text)."""
        state = self.server.registry.state(token)
        if state is AccessState.VALID:
            return False
        text = "Access token expired" if state is AccessState.EXPIRED else "Invalid access token"
        self.server.error(connection, decoded, "CH_ACCESS_TOKEN_INVALID", text)
        return True

    def _accounts_by_token(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAGetAccountListByAccessTokenReq)
        if self._token_refused(connection, decoded, request.accessToken):
            return
        grant = self.server.registry.grant_of(request.accessToken)
        scope = model.SCOPE_TRADE if grant is not None and grant.scope == "trading" else model.SCOPE_VIEW
        answer = messages.ProtoOAGetAccountListByAccessTokenRes(
            accessToken=request.accessToken, permissionScope=scope
        )
        for account in self.server.accounts():
            entry = answer.ctidTraderAccount.add(
                ctidTraderAccountId=account.ctid_trader_account_id or 0,
                isLive=account.is_live,
                brokerTitleShort=self.server.config.openapi_broker_name,
            )
            if account.trader_login is not None:
                entry.traderLogin = account.trader_login
        self.reply(connection, decoded, answer)

    def _account_auth(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAAccountAuthReq)
        if self._token_refused(connection, decoded, request.accessToken):
            return
        ctid = request.ctidTraderAccountId
        account = self.server.account(ctid)
        if account is None:
            self.server.error(
                connection,
                decoded,
                "CH_CTID_TRADER_ACCOUNT_NOT_FOUND",
                f"Trading account {ctid} is not found",
            )
            return
        if account.is_live:
            self.server.error(connection, decoded, "CANT_ROUTE_REQUEST", "a live account on the demo server")
            return
        if ctid in connection.accounts:
            self.server.error(
                connection,
                decoded,
                "ALREADY_LOGGED_IN",
                "Trading account is already authorized in this channel",
            )
            return
        connection.accounts[ctid] = request.accessToken
        self.reply(connection, decoded, messages.ProtoOAAccountAuthRes(ctidTraderAccountId=ctid))

    def _refresh_token(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOARefreshTokenReq)
        try:
            pair = self.server.registry.refresh(request.refreshToken)
        except CodeRefused:
            self.server.error(connection, decoded, "CH_ACCESS_TOKEN_INVALID", "Invalid refresh token")
            return
        answer = messages.ProtoOARefreshTokenRes(
            accessToken=pair.access_token,
            tokenType="bearer",
            expiresIn=pair.expires_in,
            refreshToken=pair.refresh_token,
        )
        self.reply(connection, decoded, answer)

    def _logout(self, connection: Connection, decoded: Decoded) -> None:
        """The answer, then the disconnect event that completes the logout (reference 2.2 item 5)."""
        ctid = account_id(decoded)
        del connection.accounts[ctid]
        self.reply(connection, decoded, messages.ProtoOAAccountLogoutRes(ctidTraderAccountId=ctid))
        connection.send(messages.ProtoOAAccountDisconnectEvent(ctidTraderAccountId=ctid))

    # -- queries -------------------------------------------------------------------------------

    def _trader(self, connection: Connection, decoded: Decoded) -> None:
        ctid = account_id(decoded)
        account = self.server.account(ctid)
        config = self.server.config
        trader = model.ProtoOATrader(
            ctidTraderAccountId=ctid,
            balance=convert.money(self.server.ledger.balance(ctid)),
            depositAssetId=convert.USD_ASSET_ID,
            leverageInCents=config.leverage * 100,
            accountType=model.HEDGED,
            brokerName=config.openapi_broker_name,
            moneyDigits=convert.MONEY_DIGITS,
        )
        if account is not None and account.trader_login is not None:
            trader.traderLogin = account.trader_login
        self.reply(connection, decoded, messages.ProtoOATraderRes(ctidTraderAccountId=ctid, trader=trader))

    def _symbols(self, connection: Connection, decoded: Decoded) -> None:
        ctid = account_id(decoded)
        answer = messages.ProtoOASymbolsListRes(ctidTraderAccountId=ctid)
        answer.symbol.extend(convert.light_symbol(spec) for spec in self.server.trade.prices.symbols())
        self.reply(connection, decoded, answer)

    def _symbol_by_id(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOASymbolByIdReq)
        prices = self.server.trade.prices
        specs = [prices.spec(symbol_id) for symbol_id in request.symbolId]
        missing = [symbol_id for symbol_id, spec in zip(request.symbolId, specs, strict=True) if spec is None]
        if missing or not specs:
            self.server.error(connection, decoded, "SYMBOL_NOT_FOUND", f"Symbols not found: {missing}")
            return
        answer = messages.ProtoOASymbolByIdRes(ctidTraderAccountId=request.ctidTraderAccountId)
        answer.symbol.extend(convert.symbol(spec) for spec in specs if spec is not None)
        self.reply(connection, decoded, answer)

    def _reconcile(self, connection: Connection, decoded: Decoded) -> None:
        ctid = account_id(decoded)
        venue = self.server.desk(ctid).venue
        margin = self.server.margin
        answer = messages.ProtoOAReconcileRes(ctidTraderAccountId=ctid)
        for venue_position in venue.positions():
            used = margin.used_margin([venue_position])
            answer.position.append(convert.position(venue_position, used))
        answer.order.extend(convert.order(order) for order in venue.working_orders())
        self.reply(connection, decoded, answer)

    def _order_list(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAOrderListReq)
        start, end = _window(request)
        venue = self.server.desk(request.ctidTraderAccountId).venue
        listed = sorted(
            (order for order in venue.all_orders() if start <= convert.millis(order.transact_time) <= end),
            key=lambda order: order.transact_time,
        )
        chunk = self.server.config.openapi_list_chunk
        answer = messages.ProtoOAOrderListRes(
            ctidTraderAccountId=request.ctidTraderAccountId, hasMore=len(listed) > chunk
        )
        answer.order.extend(convert.order(order) for order in listed[:chunk])
        self.reply(connection, decoded, answer)

    def _order_details(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOAOrderDetailsReq)
        venue = self.server.desk(request.ctidTraderAccountId).venue
        order = venue.order(request.orderId)
        if order is None:
            self.server.error(
                connection, decoded, "ORDER_NOT_FOUND", f"Order with orderId:{request.orderId} isn't found"
            )
            return
        answer = messages.ProtoOAOrderDetailsRes(
            ctidTraderAccountId=request.ctidTraderAccountId, order=convert.order(order)
        )
        answer.deal.extend(self._deals(venue.deals(), lambda deal: deal.order_id == order.order_id))
        self.reply(connection, decoded, answer)

    def _deal_list(self, connection: Connection, decoded: Decoded) -> None:
        request = message_of(decoded, messages.ProtoOADealListReq)
        start, end = _window(request)
        venue = self.server.desk(request.ctidTraderAccountId).venue
        deals = [deal for deal in venue.deals() if start <= convert.millis(deal.executed_at) <= end]
        limit = request.maxRows if request.HasField("maxRows") and request.maxRows > 0 else len(deals)
        answer = messages.ProtoOADealListRes(
            ctidTraderAccountId=request.ctidTraderAccountId, hasMore=len(deals) > limit
        )
        kept = {deal.deal_id for deal in deals[:limit]}
        answer.deal.extend(self._deals(venue.deals(), lambda deal: deal.deal_id in kept))
        self.reply(connection, decoded, answer)

    def _deals(
        self, every_deal: list[VenueDeal], wanted: Callable[[VenueDeal], bool]
    ) -> list[model.ProtoOADeal]:
        """The wanted deals of an account, each closing one with its USD profit and the balance after it."""
        after = self.server.ledger.history(every_deal)
        margin = self.server.margin
        return [
            convert.deal(deal, margin.profit_usd(deal), after[deal.deal_id])
            for deal in every_deal
            if wanted(deal)
        ]


def _window(request: messages.ProtoOAOrderListReq | messages.ProtoOADealListReq) -> tuple[int, int]:
    start = request.fromTimestamp if request.HasField("fromTimestamp") else 0
    end = request.toTimestamp if request.HasField("toTimestamp") else MAX_TIMESTAMP_MS
    return start, end
