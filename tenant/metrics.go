package tenant

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Metrics receives what operators watch about Graph and sign-in. It is
// implemented outside the package (cmd wires Prometheus) and must be safe for
// concurrent use. Label values are bounded: op is an operation name without
// ids ("get_security_defaults"), never a user or policy id.
type Metrics interface {
	// GraphCall reports one Graph operation (retries included): its status
	// class ("2xx"; "401", "403" and "429", which alerts watch; other "4xx";
	// "5xx"; "error" for a network or sign-in failure; "cancelled") and how
	// long it took.
	GraphCall(op, class string, d time.Duration)
	// GraphThrottled reports one 429 answer (each attempt counts).
	GraphThrottled(op string)
	// TokenFailure reports a failed token acquisition for Graph.
	TokenFailure()
}

type nopMetrics struct{}

func (nopMetrics) GraphCall(string, string, time.Duration) {}
func (nopMetrics) GraphThrottled(string)                   {}
func (nopMetrics) TokenFailure()                           {}

// opWord is a word that may appear in an operation label: ids, user
// principal names and policy ids do not match it.
var opWord = regexp.MustCompile(`^[a-z][a-z-]*$`)

// OpLabel turns an operation description ("get conditional access policy
// 0f…") into a bounded metric label ("get_conditional_access_policy"): the
// leading words up to the first that looks like an id.
func OpLabel(op string) string {
	var words []string
	for _, w := range strings.Fields(op) {
		if !opWord.MatchString(w) {
			break
		}
		words = append(words, strings.ReplaceAll(w, "-", "_"))
	}
	if len(words) == 0 {
		return "other"
	}
	return strings.Join(words, "_")
}

// statusClass is the metric class of a finished operation.
func statusClass(err error) string {
	if err == nil {
		return "2xx"
	}
	if ge := AsGraphError(err); ge != nil {
		switch {
		case ge.Status == 401, ge.Status == 403, ge.Status == 429:
			return strconv.Itoa(ge.Status)
		case ge.Status >= 500:
			return "5xx"
		case ge.Status >= 400:
			return "4xx"
		}
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return "error"
}

type opKey struct{}

// withOp remembers the operation's label for the middleware (429 counting).
func withOp(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, opKey{}, label)
}

func opFrom(ctx context.Context) string {
	if v, ok := ctx.Value(opKey{}).(string); ok {
		return v
	}
	return "other"
}

// metricOps are the operation labels the client reports, so a metrics
// backend can create every series at zero; a test keeps it in step with the
// calls in this package.
var metricOps = []string{
	"get_security_defaults", "update_security_defaults",
	"get_sharepoint_settings", "update_sharepoint_legacy_auth", "update_sharepoint_invited_account_match",
	"list_conditional_access_policies", "get_conditional_access_policy", "update_conditional_access_policy",
	"look_up", "look_up_service_principal", "list_memberships_of", "what_if_for", "read_sign_ins",
}

// MetricClasses are the status classes GraphCall reports.
func MetricClasses() []string {
	return []string{"2xx", "401", "403", "429", "4xx", "5xx", "error", "cancelled"}
}

// MetricOps returns the operation labels GraphCall and GraphThrottled use.
func MetricOps() []string { return append([]string(nil), metricOps...) }
