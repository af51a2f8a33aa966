package tenant

import (
	"context"
	"net/http"
	"testing"
)

func TestOpLabelDropsIDs(t *testing.T) {
	for op, want := range map[string]string{
		"get security defaults": "get_security_defaults",
		"get conditional access policy 0f3c1a2b-aaaa-4bbb-8ccc-123456789abc": "get_conditional_access_policy",
		"look up backup@contoso.onmicrosoft.com":                             "look_up",
		"read sign-ins":                                                      "read_sign_ins",
		"":                                                                   "other",
		"42":                                                                 "other",
	} {
		if got := OpLabel(op); got != want {
			t.Errorf("OpLabel(%q) = %q, want %q", op, got, want)
		}
	}
}

// Every 429 attempt is counted, the retried call counts once with its final
// class, and labels carry no ids.
func TestMetricsCountThrottlingAndCalls(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{prefix: "/policies", status: http.StatusTooManyRequests, retryAfter: "0.5", times: 2})
	var m countingMetrics
	c, _ := f.newClient(t, func(cfg *Config) { cfg.Metrics = &m })
	if _, err := c.getSecurityDefaults(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.throttled["get_security_defaults"] != 2 {
		t.Errorf("throttled = %v, want 2 for get_security_defaults", m.throttled)
	}
	if m.calls["get_security_defaults/2xx"] != 1 || len(m.calls) != 1 {
		t.Errorf("calls = %v, want one 2xx", m.calls)
	}
	f.fail(failRule{prefix: "/policies", status: http.StatusForbidden})
	if _, err := c.getSecurityDefaults(context.Background()); err == nil {
		t.Fatal("403 not returned")
	}
	if m.calls["get_security_defaults/4xx"] != 1 {
		t.Errorf("calls = %v, want one 4xx", m.calls)
	}
}

func TestMetricsCountTokenFailures(t *testing.T) {
	f := newFakeTenant(t)
	var m countingMetrics
	c, _ := f.newClient(t, func(cfg *Config) { cfg.ClientSecret = "wrong"; cfg.Metrics = &m })
	if _, err := c.getSecurityDefaults(context.Background()); err == nil {
		t.Fatal("a wrong secret signed in")
	}
	if m.tokenFail != 1 {
		t.Errorf("token failures = %d, want 1", m.tokenFail)
	}
	if m.calls["get_security_defaults/error"] != 1 {
		t.Errorf("calls = %v, want one error", m.calls)
	}
}
