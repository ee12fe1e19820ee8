"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class WalletMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("wallet_requests_total", "HTTP requests by route, status and problem code",
                                ["method", "route", "status", "code"], registry=r)
        self.latency = Histogram("wallet_request_duration_seconds", "Request latency by route",
                                 ["method", "route"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10))
        self.inflight = Gauge("wallet_inflight_requests", "Requests being handled", registry=r)
        self.shed = Counter("wallet_shed_requests_total", "Requests refused by overload shedding", registry=r)
        self.gateway_calls = Counter("wallet_gateway_calls_total", "Gateway calls by operation and outcome",
                                     ["operation", "outcome"], registry=r)
        self.pending = Gauge("wallet_pending_transactions", "Pending transactions at the last audit/reconcile",
                             registry=r)
        self.reconciled = Counter("wallet_reconciled_total", "Pending transactions resolved by reconcile",
                                  ["status"], registry=r)
        self.db_errors = Counter("wallet_db_unavailable_total", "DB operations answered DATABASE_UNAVAILABLE",
                                 registry=r)
