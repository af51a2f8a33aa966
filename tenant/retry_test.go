package tenant

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestRetryHonoursFractionalRetryAfter(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{prefix: "/policies", status: 429, retryAfter: "2.128", body: readFixture(t, "error_429_toomanyrequests_body.json"), times: 1})
	c, sleeps := f.newClient(t)
	it, err := c.Snapshot(context.Background(), Item{Kind: KindSecurityDefaults, Before: ValueFalse, After: ValueFalse})
	if err != nil {
		t.Fatal(err)
	}
	if it.Before != ValueTrue {
		t.Errorf("snapshot %+v", it)
	}
	if got := sleeps.all(); !slices.Equal(got, []time.Duration{2128 * time.Millisecond}) {
		t.Fatalf("sleeps %v, want [2.128s]", got)
	}
	if n := len(f.graphRequests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRetryBacksOffWithoutRetryAfter(t *testing.T) {
	f := newFakeTenant(t)
	// Conditional Access answers 429 without Retry-After.
	f.fail(failRule{prefix: "/identity/conditionalAccess", status: 429, body: readFixture(t, "error_429_toomanyrequests_body.json"), times: 3})
	c, sleeps := f.newClient(t)
	c.retry.jitter = func(n int64) int64 { return n - 1 } // the most jitter allowed
	rep, err := c.Diagnose(context.Background(), Target{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range rep.Findings {
		if fd.Check == CheckConditionalAccess && fd.Severity == SeverityWarning {
			t.Fatalf("conditional access not read after retries: %+v", fd)
		}
	}
	want := []time.Duration{1500 * time.Millisecond, 3 * time.Second, 6 * time.Second}
	if got := sleeps.all(); !slices.Equal(got, want) {
		t.Fatalf("sleeps %v, want %v", got, want)
	}
}

func TestRetryBackoffGrowsAndCaps(t *testing.T) {
	h := newRetryHandler(10, 0, time.Now, slog.New(slog.DiscardHandler))
	h.jitter = func(int64) int64 { return 0 }
	var got []time.Duration
	for a := range 8 {
		got = append(got, h.backoff(a))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := newRetryHandler(4, 0, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2", 2 * time.Second, true},
		{"2.128", 2128 * time.Millisecond, true},
		{" 0 ", 0, true},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"86400", maxRetryAfter, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
		{"NaN", 0, false},
	}
	for _, tt := range tests {
		got, ok := h.retryAfter(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRetriedPatchResendsSameBody(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{method: http.MethodPatch, prefix: "/admin/sharepoint", status: 503, times: 2})
	c, sleeps := f.newClient(t)
	it := Item{Kind: KindSharePointLegacyAuth, Before: ValueFalse, After: ValueTrue}
	if err := c.Apply(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	var patches []recorded
	for _, r := range f.graphRequests() {
		if r.Method == http.MethodPatch {
			patches = append(patches, r)
		}
	}
	if len(patches) != 3 {
		t.Fatalf("%d PATCHes, want 3", len(patches))
	}
	for i, p := range patches {
		if string(p.Body) != `{"isLegacyAuthProtocolsEnabled":true}` {
			t.Errorf("PATCH %d body %q", i, p.Body)
		}
		if p.ContentEncoding != "" {
			t.Errorf("PATCH %d Content-Encoding %q", i, p.ContentEncoding)
		}
		if p.Authorization != "Bearer "+testToken {
			t.Errorf("PATCH %d without token", i)
		}
	}
	if len(sleeps.all()) != 2 {
		t.Errorf("sleeps %v", sleeps.all())
	}
	if err := c.Verify(context.Background(), it); err != nil {
		t.Fatal(err)
	}
}

func TestRetryGivesUpThrottled(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{prefix: "/policies", status: 429, retryAfter: "1", body: readFixture(t, "error_429_toomanyrequests_body.json")})
	c, sleeps := f.newClient(t, func(c *Config) { c.MaxRetries = 2 })
	err := c.Apply(context.Background(), Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
	if !IsThrottled(err) {
		t.Fatalf("err %v, want throttled", err)
	}
	ge := AsGraphError(err)
	if ge.Code != "TooManyRequests" || ge.RequestID != "94fb3b52-452a-4535-a601-69e0a90e3aa2" {
		t.Errorf("GraphError %+v", ge)
	}
	if n := len(f.graphRequests()); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
	if got := sleeps.all(); !slices.Equal(got, []time.Duration{time.Second, time.Second}) {
		t.Errorf("sleeps %v", got)
	}
}

func TestRetryGivesUpOnGatewayErrorWithHTML(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{prefix: "/policies", status: 502, body: []byte("<html>Bad gateway</html>"), contentType: "text/html"})
	c, _ := f.newClient(t, func(c *Config) { c.MaxRetries = 1 })
	_, err := c.Snapshot(context.Background(), Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
	ge := AsGraphError(err)
	if ge == nil || ge.Status != http.StatusBadGateway || ge.RequestID != "req-2" {
		t.Fatalf("err %v (%+v)", err, ge)
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{prefix: "/policies", status: 503})
	c, _ := f.newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	c.retry.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepCtx(ctx, d)
	}
	_, err := c.Snapshot(ctx, Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n := len(f.graphRequests()); n != 1 {
		t.Errorf("%d requests after cancel", n)
	}
}

func TestBufferBody(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPatch, "https://graph.example/v1.0/x", nil)
	req.Body = nopReadCloser{bytes.NewReader([]byte(`{"a":1}`))}
	if err := bufferBody(req); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		b, _ := req.GetBody()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(b)
		if buf.String() != `{"a":1}` {
			t.Fatalf("body %q", buf.String())
		}
	}
	if req.ContentLength != 7 {
		t.Errorf("ContentLength %d", req.ContentLength)
	}
}

type nopReadCloser struct{ *bytes.Reader }

func (nopReadCloser) Close() error { return nil }
