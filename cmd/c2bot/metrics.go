package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// Refusal reasons of inbound requests (label values of
// c2bot_inbound_refused_total).
var refusalReasons = []string{"bad_signature", "stale", "unauthorised", "forbidden", "too_large", "bad_request", "busy",
	"rate_limited", "cross_site", "rebinding", "wrong_workspace", "wrong_tenant", "wrong_channel"}

// chatPlatforms are the label values of platform.
var chatPlatforms = []string{"slack", "teams", "web"}

// allStates are the request states, so every c2bot_requests series exists at 0.
var allStates = []store.State{store.Pending, store.Approved, store.Applying, store.Applied, store.Reverting,
	store.Reverted, store.Denied, store.Expired, store.Failed, store.RevertFailed, store.Cancelled}

// statsReader is what the store gauges read.
type statsReader interface {
	Stats(ctx context.Context) (store.Stats, error)
}

// metrics is c2bot's Prometheus registry and the implementation of the
// handlers and tenant metric interfaces. Every series exists from start-up.
type metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	events        *prometheus.CounterVec
	commands      *prometheus.CounterVec
	refused       *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	revertLate    prometheus.Histogram
	revertFailed  prometheus.Counter
	revertRetried prometheus.Counter
	graphCalls    *prometheus.CounterVec
	graphLatency  *prometheus.HistogramVec
	graphThrottle *prometheus.CounterVec
	tokenFailures *prometheus.CounterVec
}

func newMetrics(now func() time.Time) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), now: now}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_events_total", Help: "Audit actions by kind (requested, approved, applied, reverted, revert_failed, …).",
	}, []string{"action"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_commands_total", Help: "Chat commands by verb and outcome (ok, refused, error, duplicate).",
	}, []string{"verb", "outcome"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_inbound_refused_total", Help: "Inbound requests refused, by platform and reason.",
	}, []string{"platform", "reason"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_chat_deliveries_total", Help: "Notice delivery attempts by platform and outcome (delivered, retried, dropped).",
	}, []string{"platform", "outcome"})
	m.revertLate = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "c2bot_revert_lateness_seconds", Help: "How late scheduled reverts started: actual minus due time.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	})
	m.revertFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "c2bot_revert_failures_total", Help: "Revert attempts that failed (each is retried with backoff).",
	})
	m.revertRetried = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "c2bot_revert_retries_total", Help: "Revert attempts that retried an earlier failure.",
	})
	m.graphCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_graph_requests_total", Help: "Microsoft Graph operations by operation and status class (2xx, 401, 403, 429, 4xx, 5xx, error, cancelled).",
	}, []string{"op", "class"})
	m.graphLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "c2bot_graph_request_duration_seconds", Help: "Microsoft Graph operation latency, retries included.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"op"})
	m.graphThrottle = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_graph_throttled_total", Help: "Microsoft Graph 429 answers, each attempt counted.",
	}, []string{"op"})
	m.tokenFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "c2bot_token_failures_total", Help: "Failed token acquisitions by resource (graph, botframework).",
	}, []string{"resource"})
	m.reg.MustRegister(m.events, m.commands, m.refused, m.deliveries, m.revertLate, m.revertFailed, m.revertRetried,
		m.graphCalls, m.graphLatency, m.graphThrottle, m.tokenFailures)

	for _, a := range []string{"requested", "approved", "applied", "failed", "reverted", "revert_failed", "expired", "denied", "cancelled"} {
		m.events.WithLabelValues(a)
	}
	for _, v := range handlers.MetricVerbs() {
		for _, o := range []string{handlers.OutcomeOK, handlers.OutcomeRefused, handlers.OutcomeError, handlers.OutcomeDuplicate} {
			m.commands.WithLabelValues(v, o)
		}
	}
	for _, p := range chatPlatforms {
		for _, r := range refusalReasons {
			m.refused.WithLabelValues(p, r)
		}
		for _, o := range []string{handlers.DeliveryDelivered, handlers.DeliveryRetried, handlers.DeliveryDropped} {
			m.deliveries.WithLabelValues(p, o)
		}
	}
	for _, op := range tenant.MetricOps() {
		for _, c := range tenant.MetricClasses() {
			m.graphCalls.WithLabelValues(op, c)
		}
		m.graphLatency.WithLabelValues(op)
		m.graphThrottle.WithLabelValues(op)
	}
	for _, r := range []string{"graph", "botframework"} {
		m.tokenFailures.WithLabelValues(r)
	}
	return m
}

// watchStore adds the gauges read from the store at scrape time: requests by
// state, pending reverts, seconds until the next revert and how overdue it
// is, outbox depth and the age of the oldest undelivered notice.
func (m *metrics) watchStore(s statsReader, log *slog.Logger) {
	m.reg.MustRegister(&storeCollector{s: s, now: m.now, log: log})
}

// handlers.Metrics

func (m *metrics) Command(verb, outcome string) { m.commands.WithLabelValues(verb, outcome).Inc() }
func (m *metrics) Event(action string) {
	m.events.WithLabelValues(action).Inc()
	switch action {
	case "revert_failed":
		m.revertFailed.Inc()
	case "revert_retry":
		m.revertRetried.Inc()
	}
}
func (m *metrics) RevertStarted(late time.Duration) { m.revertLate.Observe(late.Seconds()) }
func (m *metrics) Delivery(platform, outcome string) {
	m.deliveries.WithLabelValues(platform, outcome).Inc()
}

// Refused implements handlers.Metrics.
func (m *metrics) Refused(platform, reason string) { m.refused.WithLabelValues(platform, reason).Inc() }

// refusedBy returns the refusal counter of one platform, for its adapter.
func (m *metrics) refusedBy(platform string) func(reason string) {
	return func(reason string) { m.refused.WithLabelValues(platform, reason).Inc() }
}

// tokenFailed counts a failed Bot Framework token acquisition.
func (m *metrics) botTokenFailed() { m.tokenFailures.WithLabelValues("botframework").Inc() }

// graphMetrics is tenant.Metrics on the shared registry.
type graphMetrics struct{ m *metrics }

func (g graphMetrics) GraphCall(op, class string, d time.Duration) {
	g.m.graphCalls.WithLabelValues(op, class).Inc()
	g.m.graphLatency.WithLabelValues(op).Observe(d.Seconds())
}
func (g graphMetrics) GraphThrottled(op string) { g.m.graphThrottle.WithLabelValues(op).Inc() }
func (g graphMetrics) TokenFailure()            { g.m.tokenFailures.WithLabelValues("graph").Inc() }

// storeCollector reads store.Stats once per scrape, in one read
// transaction (see BENCHMARKS.md for its cost).
type storeCollector struct {
	s   statsReader
	now func() time.Time
	log *slog.Logger
}

var (
	descRequests = prometheus.NewDesc("c2bot_requests", "Change requests by state.", []string{"state"}, nil)
	descPending  = prometheus.NewDesc("c2bot_pending_reverts", "Requests whose settings await a revert (applied, reverting, revert_failed).", nil, nil)
	descNext     = prometheus.NewDesc("c2bot_next_revert_seconds", "Seconds until the earliest pending revert is due (negative when overdue; absent when none).", nil, nil)
	descOverdue  = prometheus.NewDesc("c2bot_revert_overdue_seconds", "How long the earliest pending revert is past its due time (0 when none is overdue).", nil, nil)
	descDepth    = prometheus.NewDesc("c2bot_outbox_depth", "Undelivered chat notices.", nil, nil)
	descOldest   = prometheus.NewDesc("c2bot_outbox_oldest_age_seconds", "Age of the oldest undelivered chat notice (0 when none).", nil, nil)
	descStoreUp  = prometheus.NewDesc("c2bot_store_up", "1 when the last read of the store for metrics succeeded.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descPending, descNext, descOverdue, descDepth, descOldest, descStoreUp} {
		ch <- d
	}
}

// statsTimeout bounds the store read of one scrape.
const statsTimeout = 5 * time.Second

func (c *storeCollector) stats() (store.Stats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	st, err := c.s.Stats(ctx)
	if err != nil {
		c.log.Warn("store not readable for metrics", "err", err)
	}
	return st, err
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.stats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 1)
	for _, s := range allStates {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.GaugeValue, float64(st.ByState[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.PendingReverts))
	now := c.now()
	overdue := 0.0
	if !st.NextRevert.IsZero() {
		until := st.NextRevert.Sub(now).Seconds()
		ch <- prometheus.MustNewConstMetric(descNext, prometheus.GaugeValue, until)
		if until < 0 {
			overdue = -until
		}
	}
	ch <- prometheus.MustNewConstMetric(descOverdue, prometheus.GaugeValue, overdue)
	ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(st.OutboxDepth))
	age := 0.0
	if !st.OldestUndelivered.IsZero() {
		age = max(0, now.Sub(st.OldestUndelivered).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
}
