package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/c2bot/c2bot/store"
)

// exportedSeries gathers the metric family names a fresh c2bot exports.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	m := newMetrics(time.Now)
	st, err := store.Open(filepath.Join(t.TempDir(), "c2bot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Create(context.Background(), store.Request{Tenant: "t", State: store.Applied, DueAt: time.Now().Add(time.Hour),
		Requester: store.Person{ID: "web:a"}}, store.Changes{}); err != nil {
		t.Fatal(err)
	}
	m.watchStore(st, slog.New(slog.DiscardHandler))
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
	}
	return out
}

var seriesName = regexp.MustCompile(`\bc2bot_[a-z_]+\b`)

// checkNames fails for every c2bot series src names that c2bot does not export.
func checkNames(t *testing.T, what, src string, exported map[string]bool) {
	t.Helper()
	names := seriesName.FindAllString(src, -1)
	if len(names) == 0 {
		t.Fatalf("%s names no c2bot series", what)
	}
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if strings.HasSuffix(n, suf) && exported[strings.TrimSuffix(n, suf)] {
				base = strings.TrimSuffix(n, suf)
			}
		}
		if !exported[base] {
			t.Errorf("%s uses %s, which c2bot does not export", what, n)
		}
	}
}

// The alert rules and the dashboard use only series c2bot exports, and
// every alert has a promtool test case.
func TestDeployedRulesAndDashboardMatchTheMetrics(t *testing.T) {
	exported := exportedSeries(t)
	raw, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("../../deploy/prometheus/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			checkNames(t, "alert "+r.Alert, r.Expr, exported)
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no case in alerts_test.yaml", r.Alert)
			}
		}
	}
	if n < 6 {
		t.Fatalf("only %d alert rules", n)
	}
	raw, err = os.ReadFile("../../deploy/grafana/c2bot-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			checkNames(t, "panel "+p.Title, tg.Expr, exported)
		}
	}
}
