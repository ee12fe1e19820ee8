package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	shed         prometheus.Counter
	gatewayCalls *prometheus.CounterVec
	settled      *prometheus.CounterVec
	reconciled   *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wallet_requests_total",
			Help: "HTTP requests by route, status and problem code."}, []string{"method", "route", "status", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wallet_request_duration_seconds",
			Help: "Request latency.", Buckets: prometheus.DefBuckets}, []string{"method", "route"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{Name: "wallet_shed_total",
			Help: "Requests refused with RATE_LIMITED."}),
		gatewayCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wallet_gateway_calls_total",
			Help: "Gateway calls by operation and outcome."}, []string{"operation", "outcome"}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wallet_settled_total",
			Help: "Pending transactions settled, by kind and final status."}, []string{"kind", "status"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wallet_reconciled_total",
			Help: "Transactions settled by reconcile, by final status."}, []string{"status"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.shed, m.gatewayCalls, m.settled, m.reconciled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(method, route string, status int, code string, elapsed time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status), code).Inc()
	m.latency.WithLabelValues(method, route).Observe(elapsed.Seconds())
}
