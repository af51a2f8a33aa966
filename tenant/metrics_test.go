package tenant

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
	if m.calls["get_security_defaults/403"] != 1 {
		t.Errorf("calls = %v, want one 403", m.calls)
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

// Every operation name the package passes to call (or to a helper that
// passes it on) has its label in metricOps, so its series exist from start-up.
func TestMetricOpsCoverEveryCall(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, op := range MetricOps() {
		known[op] = true
	}
	callOp := regexp.MustCompile(`(?:c\.call|c\.patchSharepointSettings)\(ctx, "([^"]+)"`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range callOp.FindAllStringSubmatch(string(src), -1) {
			found++
			if label := OpLabel(m[1]); !known[label] {
				t.Errorf("%s: operation %q has label %q, missing from metricOps", f, m[1], label)
			}
		}
	}
	if found < 8 {
		t.Fatalf("found %d operations; the pattern no longer matches the code", found)
	}
}
