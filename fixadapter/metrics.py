"""Every Prometheus metric of the adapter, on a registry owned by the adapter instance (no globals).

Names are in full words (`fixadapter_market_data_*`, never `md`), and no name says which connector: session,
message, order, market data, TLS and error metrics carry an `account` and a `connector` label instead; the
kill switch and alarms carry the `account`. Metrics of the whole process (the store, the database writers,
compliance capture, HTTP, the strategy queue, daemon tasks) carry neither.

`Metrics(registry, account=..., connector=...)` binds those labels once: every family is registered on the
registry the first time, and a second `Metrics` for another account (or another connector of the same account)
on the same registry shares the families, so one `/metrics` scrape shows every account, each series under its
own labels. Call sites do not name the bound labels: `metrics.orders_submitted.inc()`,
`metrics.logons.labels("TRADE").inc()` (a `Labeled` family takes only its own remaining labels).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fixadapter.alarms import Alarms, shared_on
from fixadapter.model.requests import DEFAULT_ACCOUNT
from fixadapter.ops_metrics import register_build_info  # also turns `_created` series off

ROUTE_LABELS = ("account", "connector")  # the labels a Metrics binds on session, message and order metrics
ACCOUNT_LABELS = ("account",)  # on the kill switch (alarms carry it too: fixadapter.alarms)
DEFAULT_CONNECTOR = "fix"

_Family = TypeVar("_Family", Counter, Gauge, Histogram)


class Labeled(Generic[_Family]):
    """A metric family with its account (and connector) labels bound: `labels()` takes the rest, in order."""

    __slots__ = ("_bound", "_children", "_family")

    def __init__(self, family: _Family, bound: dict[str, str]) -> None:
        self._family: _Family = family
        self._bound: dict[str, str] = bound
        # Children by their own label values: one dict lookup on the hot path (a message, a book), no lock.
        self._children: dict[tuple[str, ...], _Family] = {}

    def labels(self, *values: str, **named: str) -> _Family:
        if named:
            return self._family.labels(**self._bound, **named)
        child = self._children.get(values)
        if child is None:  # two threads at once both get the family's one child for these values
            child = self._children[values] = self._family.labels(*self._bound.values(), *values)
        return child


class _Families:
    """Every family, registered once per registry (see `shared_on`)."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.alarms: dict[
            str, Alarms
        ] = {}  # one per account, so two connectors of an account share its alarms
        self._session_families(r)
        self._order_families(r)
        self._market_data_families(r)
        self._database_families(r)
        self._compliance_families(r)
        self._daemon_families(r)
        self._tls_families(r)
        self._openapi_families(r)
        self.build_info = register_build_info(r)

    def _session_families(self, r: CollectorRegistry) -> None:
        route = ROUTE_LABELS
        self.messages_received = Counter(
            "fixadapter_messages_received_total",
            "Messages received from the venue, by session and message type",
            [*route, "session", "message_type"],
            registry=r,
        )
        self.messages_sent = Counter(
            "fixadapter_messages_sent_total",
            "Messages sent to the venue, by session and message type",
            [*route, "session", "message_type"],
            registry=r,
        )
        self.malformed_messages = Counter(
            "fixadapter_malformed_messages_total",
            "Messages from the venue that could not be parsed or converted (logged, never fatal)",
            [*route, "session", "reason"],
            registry=r,
        )
        self.unknown_fields = Counter(
            "fixadapter_unknown_fields_total",
            "Fields the dictionary does not define for the message that carried them",
            [*route, "session", "message_type"],
            registry=r,
        )
        self.session_rejects = Counter(
            "fixadapter_session_rejects_total",
            "Session-level rejects from the venue (FIX: Reject, 35=3)",
            [*route, "session"],
            registry=r,
        )
        self.callback_errors = Counter(
            "fixadapter_callback_errors_total",
            "Exceptions caught in connector callbacks and engine handlers, by where",
            [*route, "where"],
            registry=r,
        )
        self.logons = Counter(
            "fixadapter_logons_total", "Successful logons, by session", [*route, "session"], registry=r
        )
        self.logon_failures = Counter(
            "fixadapter_logon_failures_total",
            "Logons refused by the venue, by session",
            [*route, "session"],
            registry=r,
        )
        self.session_up = Gauge(
            "fixadapter_session_logged_on",
            "1 while the session is logged on",
            [*route, "session"],
            registry=r,
        )
        self.ready = Gauge(
            "fixadapter_ready",
            "1 while the account's trading route is logged on and reconciled (new orders go out), else 0",
            route,
            registry=r,
        )

    def _order_families(self, r: CollectorRegistry) -> None:
        route = ROUTE_LABELS
        self.orders_submitted = Counter(
            "fixadapter_orders_submitted_total", "Orders sent to the venue", route, registry=r
        )
        self.order_rejects = Counter(
            "fixadapter_order_rejects_total",
            "Orders rejected, by where and reason code",
            [*route, "source", "reason"],
            registry=r,
        )
        self.duplicate_reports = Counter(
            "fixadapter_duplicate_execution_reports_total",
            "Execution reports seen before (dropped)",
            route,
            registry=r,
        )
        self.impossible_fills = Counter(
            "fixadapter_impossible_fills_total",
            "Fills refused as impossible (more than the order's quantity, the other side), by reason",
            [*route, "reason"],
            registry=r,
        )
        self.deduplication_conflicts = Counter(
            "fixadapter_deduplication_conflicts_total",
            "Execution reports under a deduplication key seen before with other content (applied, alarmed)",
            route,
            registry=r,
        )
        self.reports_set_aside = Counter(
            "fixadapter_reports_set_aside_total",
            "Venue reports the store could never take, kept in reports_set_aside instead",
            route,
            registry=r,
        )
        self.invalid_transitions = Counter(
            "fixadapter_invalid_transitions_total",
            "Reports that contradict an order's state",
            route,
            registry=r,
        )
        self.unmatched_reports = Counter(
            "fixadapter_unmatched_reports_total",
            "Reports for no order the adapter knows",
            [*route, "kind"],
            registry=r,
        )
        self.status_queries = Counter(
            "fixadapter_order_status_queries_total",
            "Order status queries sent for orders with no answer",
            route,
            registry=r,
        )
        self.reconciliations = Counter(
            "fixadapter_reconciliations_total",
            "Reconciliations after logon, by outcome",
            [*route, "outcome"],
            registry=r,
        )
        self.reconciliation_corrections = Counter(
            "fixadapter_reconciliation_corrections_total",
            "Orders moved to the venue's state by reconciliation against the live transition table",
            route,
            registry=r,
        )
        self.status_queries_waiting = Gauge(
            "fixadapter_order_status_queries_waiting",
            "Status queries waiting for a free slot (orders.max_status_queries are in flight)",
            route,
            registry=r,
        )
        self.round_trip = Histogram(
            "fixadapter_order_round_trip_seconds",
            "From send to the venue's first answer",
            route,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )

    def _market_data_families(self, r: CollectorRegistry) -> None:
        route = ROUTE_LABELS
        self.market_data_applied = Counter(
            "fixadapter_market_data_messages_applied_total",
            "Market data messages applied (snapshot W, incremental X, spot W)",
            [*route, "kind"],
            registry=r,
        )
        self.market_data_book_updates = Counter(
            "fixadapter_market_data_book_updates_total",
            "Books published after a W or X",
            [*route, "symbol"],
            registry=r,
        )
        self.market_data_unknown_entries = Counter(
            "fixadapter_market_data_unknown_entries_total",
            "X Deletes naming an MDEntryID the book does not hold (ignored)",
            route,
            registry=r,
        )
        self.market_data_unsolicited = Counter(
            "fixadapter_market_data_unsolicited_messages_total",
            "Market data for a symbol with no matching subscription (ignored)",
            [*route, "message_type"],
            registry=r,
        )
        self.market_data_rejects = Counter(
            "fixadapter_market_data_rejects_total",
            "MarketDataRequestReject (35=Y) by MDReqRejReason",
            [*route, "reason"],
            registry=r,
        )
        self.market_data_resynchronizations = Counter(
            "fixadapter_market_data_resynchronizations_total",
            "Depth books requested again after a lost or unreadable QUOTE message",
            route,
            registry=r,
        )
        self.market_data_queue_depth = Gauge(
            "fixadapter_market_data_queue_depth",
            "Market data messages received and not yet applied",
            route,
            registry=r,
        )
        self.market_data_consumer_dropped = Counter(
            "fixadapter_market_data_consumer_events_dropped_total",
            "Market events dropped because a consumer's queue was full (oldest first)",
            route,
            registry=r,
        )
        self.market_data_stale = Gauge(
            "fixadapter_market_data_stale_subscriptions",
            "Subscriptions silent for longer than market_data.stale_after_seconds",
            route,
            registry=r,
        )

    def _database_families(self, r: CollectorRegistry) -> None:
        self.database_write_seconds = Histogram(
            "fixadapter_database_write_seconds",
            "One batch written to the database (insert and commit), by table",
            ["table"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.database_rows_written = Counter(
            "fixadapter_database_rows_written_total",
            "Rows written by batch writers, by table",
            ["table"],
            registry=r,
        )
        self.database_write_errors = Counter(
            "fixadapter_database_write_errors_total",
            "Batch writes that failed and are retried (the rows stay buffered), by table",
            ["table"],
            registry=r,
        )
        self.depth_buffered = Gauge(
            "fixadapter_depth_buffered_rows", "Depth snapshots waiting for the writer thread", registry=r
        )
        self.depth_dropped = Counter(
            "fixadapter_depth_snapshots_dropped_total",
            "Depth snapshots not stored: buffer_full, rejected (by the database), error, closed, shutdown",
            ["reason"],
            registry=r,
        )
        self.depth_purged = Counter(
            "fixadapter_depth_rows_purged_total",
            "market_depth rows deleted by the retention policy",
            registry=r,
        )

    def _compliance_families(self, r: CollectorRegistry) -> None:
        self.compliance_buffered = Gauge(
            "fixadapter_compliance_buffered_messages",
            "FIX messages captured and waiting for the compliance writer thread",
            registry=r,
        )
        self.compliance_recorded = Counter(
            "fixadapter_compliance_messages_recorded_total",
            "FIX messages recorded, by where: file (masked log files) or database (fix_messages)",
            ["store"],
            registry=r,
        )
        self.compliance_spilled = Counter(
            "fixadapter_compliance_messages_spilled_total",
            "FIX messages written to a local spill file because the database was slow or down",
            registry=r,
        )
        self.compliance_spill_loaded = Counter(
            "fixadapter_compliance_messages_spill_loaded_total",
            "Spilled FIX messages loaded back into fix_messages",
            registry=r,
        )
        self.compliance_spill_files = Gauge(
            "fixadapter_compliance_spill_files",
            "Spill files waiting to be loaded into fix_messages",
            registry=r,
        )
        self.compliance_dropped = Counter(
            "fixadapter_compliance_messages_dropped_total",
            "FIX messages not recorded in the table (each also logged as an error): buffer_full, "
            "spill_failed, rejected (kept in spill/rejected.jsonl), unconverted",
            ["reason"],
            registry=r,
        )
        self.compliance_skipped = Counter(
            "fixadapter_compliance_market_data_skipped_total",
            "QUOTE W/X and Open API spot/depth events not recorded (compliance.record_market_data off)",
            registry=r,
        )
        self.compliance_file_errors = Counter(
            "fixadapter_compliance_file_errors_total",
            "Batches the masked FIX log files could not take (the database copy goes on)",
            registry=r,
        )
        self.compliance_writer_errors = Counter(
            "fixadapter_compliance_writer_errors_total",
            "Unexpected errors in the compliance writer thread (logged; it goes on)",
            registry=r,
        )

    def _daemon_families(self, r: CollectorRegistry) -> None:
        self.store_seconds = Histogram(
            "fixadapter_store_seconds",
            "Order store calls on the store thread, by operation (the commit of a batch is not in it)",
            ["operation"],
            buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=r,
        )
        self.store_batch_calls = Histogram(
            "fixadapter_store_batch_calls",
            "Order store calls committed together in one transaction (group commit; a call alone is not "
            "counted)",
            buckets=(2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.kill_switch_engaged = Gauge(
            "fixadapter_kill_switch_engaged",
            "1 while the kill switch blocks new orders",
            ACCOUNT_LABELS,
            registry=r,
        )
        self.kill_switch_cancels = Counter(
            "fixadapter_kill_switch_cancels_total",
            "Cancels of working orders by a sweep (kill switch, or the daemon stopping with cancel_on_stop), "
            "by outcome (sent, refused)",
            [*ACCOUNT_LABELS, "outcome"],
            registry=r,
        )
        self.http_connections_closed = Counter(
            "fixadapter_http_connections_closed_total",
            "HTTP connections closed or refused to stay under daemon.http.max_connections",
            ["reason"],
            registry=r,
        )
        self.http_requests_refused = Counter(
            "fixadapter_http_requests_refused_total",
            "HTTP requests refused before their handler: an unknown Host header or a missing or wrong token",
            ["reason"],
            registry=r,
        )
        self.queue_commands = Counter(
            "fixadapter_queue_commands_total",
            "Strategy commands taken from the queue, by type and outcome (done, rejected, invalid, retried)",
            ["type", "outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "fixadapter_queue_depth",
            "Strategy commands received and not yet acknowledged (or waiting in the Redis stream's group)",
            registry=r,
        )
        self.queue_events = Counter(
            "fixadapter_queue_events_published_total",
            "Events published to strategies, by type",
            ["type"],
            registry=r,
        )
        self.queue_event_backlog = Gauge(
            "fixadapter_queue_event_backlog", "Order events waiting to be published to strategies", registry=r
        )
        self.task_restarts = Counter(
            "fixadapter_task_restarts_total",
            "Critical daemon tasks (command dispatcher, event relay) that failed and were restarted",
            ["task"],
            registry=r,
        )
        self.queue_errors = Counter(
            "fixadapter_queue_errors_total",
            "Queue transport errors (connection lost, timeouts), retried with backoff",
            ["where"],
            registry=r,
        )

    def _tls_families(self, r: CollectorRegistry) -> None:
        route = ROUTE_LABELS
        self.tls_connections = Counter(
            "fixadapter_tls_connections_total",
            "TLS connections to the broker established",
            [*route, "session"],
            registry=r,
        )
        self.tls_failures = Counter(
            "fixadapter_tls_failures_total",
            "TLS (or TCP) connections to the broker that failed, by reason (never followed by plain text)",
            [*route, "session", "reason"],
            registry=r,
        )
        self.tls_connected = Gauge(
            "fixadapter_tls_connected",
            "1 while the TLS connection to the broker is up",
            [*route, "session"],
            registry=r,
        )
        self.tls_handshake_seconds = Histogram(
            "fixadapter_tls_handshake_seconds",
            "TCP connect plus TLS handshake to the broker",
            [*route, "session"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.tls_certificate_expiry = Gauge(
            "fixadapter_tls_certificate_expiry_timestamp_seconds",
            "When the broker's server certificate expires (Unix time)",
            [*route, "session"],
            registry=r,
        )

    def _openapi_families(self, r: CollectorRegistry) -> None:
        route = ROUTE_LABELS
        self.openapi_frames = Counter(
            "fixadapter_openapi_frames_total",
            "Open API frames by direction (in, out) and payload type (message name; unknown: none of ours)",
            [*route, "direction", "payload_type"],
            registry=r,
        )
        self.openapi_unreadable_frames = Counter(
            "fixadapter_openapi_unreadable_frames_total",
            "Open API frames, or parts of them, we could not read (logged, never fatal), by reason",
            [*route, "reason"],
            registry=r,
        )
        self.openapi_rate_budget_in_use = Gauge(
            "fixadapter_openapi_rate_budget_in_use",
            "Open API requests in the current rate window of the connection, by budget (overall, historical)",
            [*route, "budget"],
            registry=r,
        )
        self.openapi_request_seconds = Histogram(
            "fixadapter_openapi_request_seconds",
            "Open API request to its answer, by request payload type (queueing for the rate limit included)",
            [*route, "payload_type"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.openapi_errors = Counter(
            "fixadapter_openapi_errors_total",
            "Open API refusals (ProtoOAErrorRes, ProtoOAOrderErrorEvent, rejected orders) by error code",
            [*route, "code"],
            registry=r,
        )
        self.openapi_reconnects = Counter(
            "fixadapter_openapi_reconnects_total",
            "Open API connections lost or refused, after which the connector connects again",
            route,
            registry=r,
        )
        self.openapi_account_authorised = Gauge(
            "fixadapter_openapi_account_authorised",
            "1 while the account is authorised on its Open API connection, else 0",
            route,
            registry=r,
        )
        self.openapi_token_expiry = Gauge(
            "fixadapter_openapi_token_expiry_timestamp_seconds",
            "When the account's Open API access token expires (Unix seconds; refreshed in-band before)",
            route,
            registry=r,
        )


class Metrics:
    """The metrics of one account over one connector (labels bound once), on a registry it may share."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        account: str = DEFAULT_ACCOUNT,
        connector: str = DEFAULT_CONNECTOR,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.account = account
        self.connector = connector
        f = shared_on(self.registry, _Families)
        # Conditions for a person (logged, counted, listed by /readyz); here because every part that can
        # raise one already holds the metrics. One Alarms per account, whichever connector raises.
        alarms = f.alarms.get(account)
        if alarms is None:
            alarms = f.alarms[account] = Alarms(self.registry, account=account)
        self.alarms = alarms
        self._bind_session(f, {"account": account, "connector": connector})
        self._bind_orders(f, account, connector)
        self._bind_market_data(f, account, connector)
        self._bind_process(f, account)
        self._bind_tls(f, {"account": account, "connector": connector})
        self._bind_openapi(f, {"account": account, "connector": connector})

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The sample `name` of this account and connector (the labels they bind are filled in where the
        family has them; process-wide families have neither), or None when it has no such sample."""
        given = labels or {}
        for bound in (
            {"account": self.account, "connector": self.connector},
            {"account": self.account},
            {},
        ):
            found = self.registry.get_sample_value(name, {**bound, **given})
            if found is not None:
                return found
        return None

    def _bind_session(self, f: _Families, route: dict[str, str]) -> None:
        self.messages_received = Labeled(f.messages_received, route)
        self.messages_sent = Labeled(f.messages_sent, route)
        self.malformed_messages = Labeled(f.malformed_messages, route)
        self.unknown_tags = Labeled(f.unknown_fields, route)
        self.session_rejects = Labeled(f.session_rejects, route)
        self.callback_errors = Labeled(f.callback_errors, route)
        self.logons = Labeled(f.logons, route)
        self.logon_failures = Labeled(f.logon_failures, route)
        self.session_up = Labeled(f.session_up, route)
        self.ready = f.ready.labels(route["account"], route["connector"])

    def _bind_orders(self, f: _Families, account: str, connector: str) -> None:
        route = {"account": account, "connector": connector}
        self.orders_submitted = f.orders_submitted.labels(account, connector)
        self.order_rejects = Labeled(f.order_rejects, route)
        self.duplicate_reports = f.duplicate_reports.labels(account, connector)
        self.impossible_fills = Labeled(f.impossible_fills, route)
        self.dedupe_conflicts = f.deduplication_conflicts.labels(account, connector)
        self.reports_set_aside = f.reports_set_aside.labels(account, connector)
        self.invalid_transitions = f.invalid_transitions.labels(account, connector)
        self.unmatched_reports = Labeled(f.unmatched_reports, route)
        self.status_queries = f.status_queries.labels(account, connector)
        self.reconciliations = Labeled(f.reconciliations, route)
        self.reconcile_corrections = f.reconciliation_corrections.labels(account, connector)
        self.status_queries_waiting = f.status_queries_waiting.labels(account, connector)
        self.round_trip = f.round_trip.labels(account, connector)

    def _bind_market_data(self, f: _Families, account: str, connector: str) -> None:
        route = {"account": account, "connector": connector}
        self.md_updates = Labeled(f.market_data_applied, route)
        self.md_book_updates = Labeled(f.market_data_book_updates, route)
        self.md_unknown_entries = f.market_data_unknown_entries.labels(account, connector)
        self.md_unsolicited = Labeled(f.market_data_unsolicited, route)
        self.md_rejects = Labeled(f.market_data_rejects, route)
        self.md_resyncs = f.market_data_resynchronizations.labels(account, connector)
        self.md_queue_depth = f.market_data_queue_depth.labels(account, connector)
        self.md_consumer_dropped = f.market_data_consumer_dropped.labels(account, connector)
        self.md_stale_symbols = f.market_data_stale.labels(account, connector)

    def _bind_process(self, f: _Families, account: str) -> None:
        # Shared by every account: one store, one set of database writers, one HTTP server, one queue.
        self.db_write_seconds = f.database_write_seconds
        self.db_rows_written = f.database_rows_written
        self.db_write_errors = f.database_write_errors
        self.depth_buffered = f.depth_buffered
        self.depth_dropped = f.depth_dropped
        self.depth_purged = f.depth_purged
        self.compliance_buffered = f.compliance_buffered
        self.compliance_recorded = f.compliance_recorded
        self.compliance_spilled = f.compliance_spilled
        self.compliance_spill_loaded = f.compliance_spill_loaded
        self.compliance_spill_files = f.compliance_spill_files
        self.compliance_dropped = f.compliance_dropped
        self.compliance_skipped = f.compliance_skipped
        self.compliance_file_errors = f.compliance_file_errors
        self.compliance_writer_errors = f.compliance_writer_errors
        self.store_seconds = f.store_seconds
        self.store_batch_calls = f.store_batch_calls
        self.http_connections_closed = f.http_connections_closed
        self.http_requests_refused = f.http_requests_refused
        self.queue_commands = f.queue_commands
        self.queue_depth = f.queue_depth
        self.queue_events = f.queue_events
        self.queue_event_backlog = f.queue_event_backlog
        self.task_restarts = f.task_restarts
        self.queue_errors = f.queue_errors
        # Per account, whatever its connector: the kill switch is the account's.
        self.kill_switch_engaged = f.kill_switch_engaged.labels(account)
        self.kill_switch_cancels = Labeled(f.kill_switch_cancels, {"account": account})

    def _bind_tls(self, f: _Families, route: dict[str, str]) -> None:
        self.tls_connections = Labeled(f.tls_connections, route)
        self.tls_failures = Labeled(f.tls_failures, route)
        self.tls_connected = Labeled(f.tls_connected, route)
        self.tls_handshake_seconds = Labeled(f.tls_handshake_seconds, route)
        self.tls_certificate_expiry = Labeled(f.tls_certificate_expiry, route)

    def _bind_openapi(self, f: _Families, route: dict[str, str]) -> None:
        self.openapi_frames = Labeled(f.openapi_frames, route)
        self.openapi_unreadable_frames = Labeled(f.openapi_unreadable_frames, route)
        self.openapi_rate_budget_in_use = Labeled(f.openapi_rate_budget_in_use, route)
        self.openapi_request_seconds = Labeled(f.openapi_request_seconds, route)
        self.openapi_errors = Labeled(f.openapi_errors, route)
        self.openapi_reconnects = Labeled(f.openapi_reconnects, route)
        self.openapi_account_authorised = Labeled(f.openapi_account_authorised, route)
        self.openapi_token_expiry = Labeled(f.openapi_token_expiry, route)
