"""Every Prometheus metric of the adapter, on a registry owned by the adapter instance (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fixadapter.alarms import Alarms


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Conditions for a person (logged, counted, listed by /readyz); here because every part that can
        # raise one already holds the metrics.
        self.alarms = Alarms(r)
        self.messages_received = Counter(
            "fixadapter_fix_messages_received_total",
            "FIX messages received",
            ["session", "msg_type"],
            registry=r,
        )
        self.messages_sent = Counter(
            "fixadapter_fix_messages_sent_total", "FIX messages sent", ["session", "msg_type"], registry=r
        )
        self.malformed_messages = Counter(
            "fixadapter_fix_malformed_messages_total",
            "Messages from the server that could not be parsed or converted (logged, never fatal)",
            ["session", "reason"],
            registry=r,
        )
        self.unknown_tags = Counter(
            "fixadapter_fix_unknown_tags_total",
            "Fields the dictionary does not define for the message that carried them",
            ["session", "msg_type"],
            registry=r,
        )
        self.session_rejects = Counter(
            "fixadapter_fix_session_rejects_total",
            "Session-level Reject (35=3) messages",
            ["session"],
            registry=r,
        )
        self.callback_errors = Counter(
            "fixadapter_callback_errors_total",
            "Exceptions caught in QuickFIX callbacks and engine handlers",
            ["where"],
            registry=r,
        )
        self.logons = Counter("fixadapter_fix_logons_total", "Successful logons", ["session"], registry=r)
        self.logon_failures = Counter(
            "fixadapter_fix_logon_failures_total", "Logons refused by the server", ["session"], registry=r
        )
        self.session_up = Gauge(
            "fixadapter_fix_session_logged_on", "1 while the session is logged on", ["session"], registry=r
        )
        self._order_metrics(r)
        self._quote_metrics(r)
        self._depth_store_metrics(r)
        self._compliance_metrics(r)
        self._daemon_metrics(r)
        self._tls_metrics(r)

    def _order_metrics(self, r: CollectorRegistry) -> None:
        self.orders_submitted = Counter(
            "fixadapter_orders_submitted_total", "Orders sent to the venue", registry=r
        )
        self.order_rejects = Counter(
            "fixadapter_order_rejects_total",
            "Orders rejected, by where and reason code",
            ["source", "reason"],
            registry=r,
        )
        self.duplicate_reports = Counter(
            "fixadapter_duplicate_execution_reports_total",
            "Execution reports seen before (dropped)",
            registry=r,
        )
        self.impossible_fills = Counter(
            "fixadapter_impossible_fills_total",
            "Fills refused as impossible (more than the order's quantity, the other side), by reason",
            ["reason"],
            registry=r,
        )
        self.dedupe_conflicts = Counter(
            "fixadapter_dedupe_conflicts_total",
            "Execution reports under a dedupe key seen before with other content (applied, alarmed)",
            registry=r,
        )
        self.reports_set_aside = Counter(
            "fixadapter_reports_set_aside_total",
            "Venue reports the store could never take, kept in reports_set_aside instead",
            registry=r,
        )
        self.invalid_transitions = Counter(
            "fixadapter_invalid_transitions_total", "Reports that contradict an order's state", registry=r
        )
        self.unmatched_reports = Counter(
            "fixadapter_unmatched_reports_total",
            "Reports for no order the adapter knows",
            ["kind"],
            registry=r,
        )
        self.status_queries = Counter(
            "fixadapter_order_status_queries_total",
            "OrderStatusRequests sent for orders with no answer",
            registry=r,
        )
        self.reconciliations = Counter(
            "fixadapter_reconciliations_total",
            "Reconciliations after logon, by outcome",
            ["outcome"],
            registry=r,
        )
        self.reconcile_corrections = Counter(
            "fixadapter_reconcile_corrections_total",
            "Orders moved to the venue's state by reconciliation against the live transition table",
            registry=r,
        )
        self.status_queries_waiting = Gauge(
            "fixadapter_order_status_queries_waiting",
            "Status queries waiting for a free slot (orders.max_status_queries are in flight)",
            registry=r,
        )
        self.round_trip = Histogram(
            "fixadapter_order_round_trip_seconds",
            "From send to the venue's first answer",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )

    def _quote_metrics(self, r: CollectorRegistry) -> None:
        self.md_updates = Counter(
            "fixadapter_md_messages_applied_total",
            "Market data messages applied (snapshot W, incremental X, spot W)",
            ["kind"],
            registry=r,
        )
        self.md_book_updates = Counter(
            "fixadapter_md_book_updates_total", "Books published after a W or X", ["symbol"], registry=r
        )
        self.md_unknown_entries = Counter(
            "fixadapter_md_unknown_entry_ids_total",
            "X Deletes naming an MDEntryID the book does not hold (ignored)",
            registry=r,
        )
        self.md_unsolicited = Counter(
            "fixadapter_md_unsolicited_total",
            "Market data for a symbol with no matching subscription (ignored)",
            ["msg_type"],
            registry=r,
        )
        self.md_rejects = Counter(
            "fixadapter_md_rejects_total",
            "MarketDataRequestReject (35=Y) by MDReqRejReason",
            ["reason"],
            registry=r,
        )
        self.md_resyncs = Counter(
            "fixadapter_md_resyncs_total",
            "Depth books re-requested after a lost or unreadable QUOTE message",
            registry=r,
        )
        self.md_queue_depth = Gauge(
            "fixadapter_md_queue_depth", "Market data messages received and not yet applied", registry=r
        )
        self.md_consumer_dropped = Counter(
            "fixadapter_md_consumer_dropped_total",
            "Market events dropped because a consumer's queue was full (oldest first)",
            registry=r,
        )
        self.md_stale_symbols = Gauge(
            "fixadapter_md_stale_subscriptions",
            "Subscriptions silent for longer than market_data.stale_after_seconds",
            registry=r,
        )

    def _depth_store_metrics(self, r: CollectorRegistry) -> None:
        self.db_write_seconds = Histogram(
            "fixadapter_db_write_seconds",
            "One batch written to the database (insert and commit), by table",
            ["table"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.db_rows_written = Counter(
            "fixadapter_db_rows_written_total",
            "Rows written by batch writers, by table",
            ["table"],
            registry=r,
        )
        self.db_write_errors = Counter(
            "fixadapter_db_write_errors_total",
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

    def _compliance_metrics(self, r: CollectorRegistry) -> None:
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
            "QUOTE W/X messages not recorded because compliance.record_market_data is off",
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

    def _daemon_metrics(self, r: CollectorRegistry) -> None:
        self.store_seconds = Histogram(
            "fixadapter_store_seconds",
            "Order store calls on the store thread (each its own transaction), by operation",
            ["operation"],
            buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=r,
        )
        self.kill_switch_engaged = Gauge(
            "fixadapter_kill_switch_engaged", "1 while the kill switch blocks new orders", registry=r
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
        self.kill_switch_cancels = Counter(
            "fixadapter_kill_switch_cancels_total",
            "Cancels of working orders by a sweep (kill switch, or the daemon stopping with cancel_on_stop), "
            "by outcome (sent, refused)",
            ["outcome"],
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

    def _tls_metrics(self, r: CollectorRegistry) -> None:
        self.tls_connections = Counter(
            "fixadapter_tls_connections_total",
            "TLS connections to the broker established",
            ["session"],
            registry=r,
        )
        self.tls_failures = Counter(
            "fixadapter_tls_failures_total",
            "TLS (or TCP) connections to the broker that failed, by reason (never followed by plain text)",
            ["session", "reason"],
            registry=r,
        )
        self.tls_connected = Gauge(
            "fixadapter_tls_connected",
            "1 while the TLS connection to the broker is up",
            ["session"],
            registry=r,
        )
        self.tls_handshake_seconds = Histogram(
            "fixadapter_tls_handshake_seconds",
            "TCP connect plus TLS handshake to the broker",
            ["session"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.tls_certificate_expiry = Gauge(
            "fixadapter_tls_certificate_expiry_timestamp_seconds",
            "When the broker's server certificate expires (Unix time)",
            ["session"],
            registry=r,
        )
