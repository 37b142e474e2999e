"""Prometheus metrics and the access log (JSON, see :mod:`api.logs`), per application (no global
registry).

Request metrics are labelled by route *template* (``/api/v1/tenders/{ocid}/events``), never by
raw path, so their number stays bounded. The log's own figures (tree size, pending entries,
each chain's newest final anchor) are read from the database when scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from anchoring import store
from ledger.log import Log

access_log = logging.getLogger("api.access")
log = logging.getLogger(__name__)

#: Latency buckets (seconds): reads are milliseconds, bundles of long tenders take longer.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LogCollector(Collector):
    """Read at scrape time: tree size, pending entries, and per chain the newest final anchor's
    tree size and age. A database that does not answer shows as ``tenderproof_database_up 0``."""

    def __init__(self, log: Callable[[], Log | None], chains: list[str], now: Callable[[], datetime]) -> None:
        self._log = log
        self._chains = chains
        self._now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tenderproof_database_up", "1 if the database answered this scrape.")
        opened = self._log()
        if opened is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            head = opened.reader.tree_head()
            pending = opened.reader.pending_count()
            finals = {chain: store.latest_final(opened.engine, chain) for chain in self._chains}
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("tenderproof_log_tree_size", "Entries integrated into the tree.", value=head.size)
        yield GaugeMetricFamily(
            "tenderproof_log_pending_entries", "Events recorded but not yet integrated.", value=pending
        )
        size = GaugeMetricFamily(
            "tenderproof_anchor_tree_size", "Tree size of the newest final anchor.", labels=["chain"]
        )
        age = GaugeMetricFamily(
            "tenderproof_anchor_age_seconds",
            "Seconds since the newest final anchor's block (absent until a chain has one).",
            labels=["chain"],
        )
        now = self._now().timestamp()
        for chain, anchor in finals.items():
            if anchor is not None and anchor.block_timestamp is not None:
                size.add_metric([chain], anchor.tree_size)
                age.add_metric([chain], max(0.0, now - anchor.block_timestamp))
        yield size
        yield age


class Metrics:
    """One application's registry: request counters and latencies, plus :class:`LogCollector`."""

    def __init__(self, *, log: Callable[[], Log | None], chains: list[str], now: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tenderproof_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tenderproof_http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(LogCollector(log, chains, now))
        #: The counter's and the histogram's children by (method, route, status), looked up once:
        #: ``labels()`` validates and locks on every call. As bounded as the labels themselves.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, *, method: str, route: str, status: int, duration: float, client: str) -> None:
        """Count one finished request and write its access-log line (JSON, no headers, no body)."""
        children = self._children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(duration)
        if access_log.isEnabledFor(logging.INFO):
            fields = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
                "client": client,
            }
            access_log.info("%s %s %d", method, route, status, extra={"fields": fields})
