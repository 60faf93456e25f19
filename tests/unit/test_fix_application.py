"""QuickFIX callbacks convert, hand off and never raise: a raise would end the process (Py_Exit)."""

from __future__ import annotations

import pytest
import quickfix as fix
from pydantic import SecretStr

from fixadapter.config import AccountConfig
from fixadapter.connectors.fix.application import CLOSED_AFTER_LOGON, FixApplication
from fixadapter.connectors.fix.wire import frame
from fixadapter.metrics import Metrics
from fixadapter.model.reports import ConnectionStatus, ExecutionReport, MalformedMessage, VenueReport

TRADE = fix.SessionID("FIX.4.4", "demo.sim.1234567", "CSERVER", "TRADE")
HEADER = [(34, "2"), (49, "CSERVER"), (52, "20250101-10:00:00.000"), (56, "demo.sim.1234567")]
ACCOUNT = AccountConfig(
    host="127.0.0.1", sender_comp_id="demo.sim.1234567", username="1234567", password=SecretStr("s3cret!")
)


def execution_report(*body: tuple[int, str]) -> fix.Message:
    return fix.Message(frame("8", HEADER, list(body)))


def application(sink: list[VenueReport] | None = None, fail: bool = False) -> tuple[FixApplication, Metrics]:
    metrics = Metrics()

    def deliver(report: VenueReport) -> None:
        if fail:
            raise RuntimeError("consumer exploded")
        assert sink is not None
        sink.append(report)

    return FixApplication(ACCOUNT, deliver, metrics), metrics


def test_from_app_converts_an_execution_report_and_hands_it_off():
    received: list[VenueReport] = []
    app, _ = application(received)

    app.fromApp(execution_report((37, "101"), (39, "0"), (150, "0"), (11, "c1")), TRADE)

    assert isinstance(received[0], ExecutionReport) and received[0].cl_ord_id == "c1"


def test_from_app_with_a_failing_consumer_counts_the_error_and_returns():
    app, metrics = application(fail=True)

    app.fromApp(execution_report((37, "101"), (39, "0"), (150, "0")), TRADE)

    assert metrics.value("fixadapter_callback_errors_total", {"where": "fromApp"}) == 1


def test_from_app_with_an_unreadable_report_hands_off_a_malformed_message_and_counts_it():
    received: list[VenueReport] = []
    app, metrics = application(received)

    app.fromApp(execution_report((39, "0"), (150, "0")), TRADE)  # no OrderID

    assert isinstance(received[0], MalformedMessage) and "37" in received[0].error
    labels = {"session": "TRADE", "reason": "unreadable"}
    assert metrics.value("fixadapter_malformed_messages_total", labels) == 1


def test_to_admin_puts_credentials_on_the_logon_and_sub_ids_on_every_message():
    app, _ = application([])
    logon = fix.Message()
    logon.getHeader().setField(35, "A")

    app.toAdmin(logon, TRADE)

    assert (logon.getField(553), logon.getField(554)) == ("1234567", "s3cret!")
    assert (logon.getHeader().getField(50), logon.getHeader().getField(57)) == ("TRADE", "TRADE")


def test_to_app_refuses_to_replay_an_order_on_a_resend():
    app, _ = application([])
    replay = fix.Message()
    replay.getHeader().setField(35, "D")
    replay.getHeader().setField(43, "Y")

    with pytest.raises(fix.DoNotSend):
        app.toApp(replay, TRADE)


def test_over_tls_a_reconnect_the_forwarder_could_not_connect_is_no_refused_logon():
    """The venue drops a logged-on TLS session; the next attempt's Logon goes to the forwarder, which
    cannot reach the broker and closes: not a logon the venue closed without a word (nor counted so)."""
    received: list[VenueReport] = []
    metrics = Metrics()
    account = ACCOUNT.model_copy(update={"trade_tls": True})
    app = FixApplication(account, received.append, metrics)
    logon = fix.Message()
    logon.getHeader().setField(35, "A")

    app.toAdmin(logon, TRADE)
    metrics.tls_connections.labels("TRADE").inc()  # the forwarder reached the broker
    app.onLogon(TRADE)
    app.onLogout(TRADE)  # the venue went away
    app.toAdmin(logon, TRADE)  # the retry: the forwarder cannot connect and closes
    app.onLogout(TRADE)

    assert not metrics.value("fixadapter_logon_failures_total", {"session": "TRADE"})
    texts = [r.text for r in received if isinstance(r, ConnectionStatus) and r.text]
    assert not [text for text in texts if text.startswith(CLOSED_AFTER_LOGON)]

    app.toAdmin(logon, TRADE)  # the broker is back, answers TLS, and closes right after our Logon
    metrics.tls_connections.labels("TRADE").inc()
    app.onLogout(TRADE)

    assert metrics.value("fixadapter_logon_failures_total", {"session": "TRADE"}) == 1
