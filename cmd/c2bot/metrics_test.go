package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/c2bot/c2bot/store"
)

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

func parseMetrics(t *testing.T, r io.Reader) scrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

func scrapeURL(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(t, resp.Body)
}

// value returns the value of the series name{labels}; ok is false when the
// series does not exist. Histograms give their sample count.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	fam, ok := s[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range fam.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		var names []string
		for n := range s {
			if strings.HasPrefix(n, "c2bot_") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		t.Fatalf("series %s%v missing; c2bot families: %v", name, labels, names)
	}
	return v
}

// TestMetricsThroughAWholeCycle scrapes /metrics of the real binary before,
// during and after fix → approve → applied → reverted, and checks that every
// operator series exists from start-up and moves as it should.
func TestMetricsThroughAWholeCycle(t *testing.T) {
	_, env := sandboxEnv(t)
	p := startBot(t, env, "serve")

	start := scrapeURL(t, p.url)
	for _, s := range []struct {
		name   string
		labels []string
	}{
		{"c2bot_requests", []string{"state", "applied"}},
		{"c2bot_requests", []string{"state", "revert_failed"}},
		{"c2bot_pending_reverts", nil},
		{"c2bot_revert_overdue_seconds", nil},
		{"c2bot_revert_lateness_seconds", nil},
		{"c2bot_revert_failures_total", nil},
		{"c2bot_revert_retries_total", nil},
		{"c2bot_outbox_depth", nil},
		{"c2bot_outbox_oldest_age_seconds", nil},
		{"c2bot_graph_requests_total", []string{"op", "update_security_defaults", "class", "2xx"}},
		{"c2bot_graph_requests_total", []string{"op", "update_security_defaults", "class", "5xx"}},
		{"c2bot_graph_throttled_total", []string{"op", "list_conditional_access_policies"}},
		{"c2bot_token_failures_total", []string{"resource", "graph"}},
		{"c2bot_chat_deliveries_total", []string{"platform", "web", "outcome", "delivered"}},
		{"c2bot_commands_total", []string{"verb", "fix", "outcome", "ok"}},
		{"c2bot_commands_total", []string{"verb", "approve", "outcome", "refused"}},
		{"c2bot_inbound_refused_total", []string{"platform", "slack", "reason", "bad_signature"}},
		{"c2bot_events_total", []string{"action", "reverted"}},
	} {
		if v := start.must(t, s.name, s.labels...); v != 0 {
			t.Errorf("at start-up %s%v = %v, want 0", s.name, s.labels, v)
		}
	}
	if _, ok := start.value("c2bot_next_revert_seconds"); ok {
		t.Error("c2bot_next_revert_seconds present with nothing to revert")
	}

	// A DNS-rebinding page's request is refused and counted.
	req, _ := http.NewRequest(http.MethodGet, p.url+"/console/api/messages?user=alice", nil)
	req.Host = "attacker.example"
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rebinding request answered %s", resp.Status)
	}
	if v := scrapeURL(t, p.url).must(t, "c2bot_inbound_refused_total", "platform", "web", "reason", "rebinding"); v != 1 {
		t.Errorf("refused{web,rebinding} = %v, want 1", v)
	}

	p.say(t, "alice", "/c2 fix --for 3s")
	card := p.waitMessage(t, "bob", 20*time.Second, titled("Approval needed"))
	p.click(t, "bob", card, "Approve")
	p.waitMessage(t, "bob", 20*time.Second, titled("Applied"))

	during := scrapeURL(t, p.url)
	if v := during.must(t, "c2bot_pending_reverts"); v != 1 {
		t.Errorf("during the window pending reverts = %v, want 1", v)
	}
	if v := during.must(t, "c2bot_requests", "state", "applied"); v != 1 {
		t.Errorf("during the window requests{applied} = %v, want 1", v)
	}
	if v := during.must(t, "c2bot_next_revert_seconds"); v <= 0 || v > 3 {
		t.Errorf("next revert in %v s, want within the 3 s window", v)
	}

	p.waitMessage(t, "bob", 30*time.Second, titled("Reverted"))
	// The confirmation is delivered once the outbox drains; wait for it.
	var end scrape
	deadline := time.Now().Add(10 * time.Second)
	for {
		end = scrapeURL(t, p.url)
		if v, _ := end.value("c2bot_outbox_depth"); v == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	checks := []struct {
		name   string
		labels []string
		min    float64
		max    float64
	}{
		{"c2bot_requests", []string{"state", "reverted"}, 1, 1},
		{"c2bot_requests", []string{"state", "applied"}, 0, 0},
		{"c2bot_pending_reverts", nil, 0, 0},
		{"c2bot_revert_overdue_seconds", nil, 0, 0},
		{"c2bot_revert_lateness_seconds", nil, 1, 1},
		{"c2bot_revert_failures_total", nil, 0, 0},
		{"c2bot_events_total", []string{"action", "requested"}, 1, 1},
		{"c2bot_events_total", []string{"action", "applied"}, 1, 1},
		{"c2bot_events_total", []string{"action", "reverted"}, 1, 1},
		{"c2bot_commands_total", []string{"verb", "fix", "outcome", "ok"}, 1, 1},
		{"c2bot_commands_total", []string{"verb", "approve", "outcome", "ok"}, 1, 1},
		{"c2bot_graph_requests_total", []string{"op", "update_security_defaults", "class", "2xx"}, 2, 2},
		{"c2bot_graph_requests_total", []string{"op", "get_security_defaults", "class", "2xx"}, 2, 100},
		{"c2bot_graph_request_duration_seconds", []string{"op", "update_security_defaults"}, 2, 2},
		{"c2bot_token_failures_total", []string{"resource", "graph"}, 0, 0},
		{"c2bot_chat_deliveries_total", []string{"platform", "web", "outcome", "delivered"}, 3, 100},
		{"c2bot_chat_deliveries_total", []string{"platform", "web", "outcome", "dropped"}, 0, 0},
		{"c2bot_outbox_depth", nil, 0, 0},
		{"c2bot_outbox_oldest_age_seconds", nil, 0, 0},
	}
	for _, c := range checks {
		if v := end.must(t, c.name, c.labels...); v < c.min || v > c.max {
			t.Errorf("after the cycle %s%v = %v, want %v..%v", c.name, c.labels, v, c.min, c.max)
		}
	}
	// Label values are bounded: no request or user id appears in any series.
	for name, fam := range end {
		for _, m := range fam.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v := lp.GetValue(); strings.HasPrefix(v, "r-") || strings.Contains(v, "alice") || strings.Contains(v, "bob") || strings.Contains(v, "@") {
					t.Errorf("%s has an unbounded label %s=%q", name, lp.GetName(), v)
				}
			}
		}
	}
}

// An applied request whose revert is past due shows in the overdue gauge and
// a negative time to the next revert; an old undelivered notice shows in the
// outbox age.
func TestMetricsShowAnOverdueRevert(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := store.Open(filepath.Join(t.TempDir(), "c2bot.db"), store.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Create(ctx, store.Request{Tenant: "contoso", State: store.Applied, DueAt: now.Add(-90 * time.Second),
		Requester: store.Person{ID: "web:alice"}}, store.Changes{Outbox: []store.OutboxItem{{Platform: "slack", Payload: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	m := newMetrics(clock)
	m.watchStore(st, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	got := scrapeURL(t, srv.URL)
	if v := got.must(t, "c2bot_revert_overdue_seconds"); v != 120 {
		t.Errorf("overdue = %v s, want 120", v)
	}
	if v := got.must(t, "c2bot_next_revert_seconds"); v != -120 {
		t.Errorf("next revert = %v s, want -120", v)
	}
	if v := got.must(t, "c2bot_outbox_oldest_age_seconds"); v != 30 {
		t.Errorf("oldest notice age = %v s, want 30", v)
	}
	if v := got.must(t, "c2bot_store_up"); v != 1 {
		t.Errorf("store_up = %v", v)
	}
	m.RevertStarted(2 * time.Minute)
	got = scrapeURL(t, srv.URL)
	h := got["c2bot_revert_lateness_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 120 {
		t.Errorf("lateness histogram count %d sum %v, want 1 and 120", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() < 120 && b.GetCumulativeCount() != 0 {
			t.Errorf("bucket le=%v counts %d, want 0", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
}
