package handlers

import "time"

// Metrics receives what operators watch about the core (cmd implements it
// with Prometheus). Methods must be safe for concurrent use. Label values
// are bounded: verbs come from the command table, outcomes and platforms
// from the constants below — never a request or user id.
type Metrics interface {
	// Command reports one command: its verb ("other" for an unknown one) and
	// outcome (OutcomeOK, OutcomeRefused, OutcomeError, OutcomeDuplicate).
	Command(verb, outcome string)
	// Event reports an audit action (requested, approved, applied, …).
	Event(action string)
	// RevertStarted reports how late a scheduled revert started (actual
	// minus due; never negative).
	RevertStarted(late time.Duration)
	// Delivery reports one outbox delivery attempt on a platform:
	// DeliveryDelivered, DeliveryRetried or DeliveryDropped.
	Delivery(platform, outcome string)
	// Refused reports a command the core refused before running it:
	// RefusedRateLimited or RefusedWrongChannel.
	Refused(platform, reason string)
}

// Refusal reasons the core reports (the adapters report theirs).
const (
	RefusedRateLimited  = "rate_limited"
	RefusedWrongChannel = "wrong_channel"
)

// Command outcomes.
const (
	OutcomeOK        = "ok"
	OutcomeRefused   = "refused"
	OutcomeError     = "error"
	OutcomeDuplicate = "duplicate"
)

// Delivery outcomes.
const (
	DeliveryDelivered = "delivered"
	DeliveryRetried   = "retried"
	DeliveryDropped   = "dropped"
)

// MetricVerbs are the verbs Command may report, so that a metrics backend
// can create every series at zero from the start.
func MetricVerbs() []string {
	table := commandTable()
	out := make([]string, 0, len(table)+1)
	for _, c := range table {
		out = append(out, c.verb)
	}
	return append(out, "other")
}

type nopMetrics struct{}

func (nopMetrics) Command(string, string)      {}
func (nopMetrics) Event(string)                {}
func (nopMetrics) RevertStarted(time.Duration) {}
func (nopMetrics) Delivery(string, string)     {}
func (nopMetrics) Refused(string, string)      {}
