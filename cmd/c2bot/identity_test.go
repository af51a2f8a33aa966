package main

import (
	"bytes"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/handlers"
)

// Issue 8 item 2: approver and channel ids are platform-qualified; a bare
// id is accepted only when exactly one of Slack and Teams is enabled, and
// start-up otherwise fails naming the ids.
func TestBareIdsResolveOrFailAtStartup(t *testing.T) {
	tenants := func() []handlers.TenantConfig {
		return []handlers.TenantConfig{{Name: "contoso", Approvers: []string{"U024BE7LH", "web:bob", "Teams:6A1B-C"},
			Channels: []string{"C0123", "web:console"}}}
	}
	people := []PersonFile{{Name: "alice", IDs: []string{"slack:U1", "teams:AAD-1", "web:alice"}}}

	got, ps, err := qualifyIdentities(tenants(), people, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"slack:U024BE7LH", "web:bob", "teams:6a1b-c"}; !reflect.DeepEqual(got[0].Approvers, want) {
		t.Fatalf("approvers = %v, want %v", got[0].Approvers, want)
	}
	if want := []string{"slack:C0123", "web:console"}; !reflect.DeepEqual(got[0].Channels, want) {
		t.Fatalf("channels = %v, want %v", got[0].Channels, want)
	}
	if want := []string{"slack:U1", "teams:aad-1", "web:alice"}; len(ps) != 1 || !reflect.DeepEqual(ps[0].IDs, want) {
		t.Fatalf("people = %+v", ps)
	}
	// Teams only: a bare Teams conversation id ("19:…") is a Teams id.
	got, _, err = qualifyIdentities([]handlers.TenantConfig{{Name: "x", Approvers: []string{"6A1B"},
		Channels: []string{"19:abc@thread.tacv2"}}}, nil, false, true)
	if err != nil || got[0].Approvers[0] != "teams:6a1b" || got[0].Channels[0] != "teams:19:abc@thread.tacv2" {
		t.Fatalf("teams only: %+v %v", got, err)
	}
	for _, tc := range []struct {
		name         string
		slack, teams bool
	}{{"both enabled", true, true}, {"neither enabled", false, false}} {
		_, _, err := qualifyIdentities(tenants(), nil, tc.slack, tc.teams)
		if err == nil || !strings.Contains(err.Error(), "U024BE7LH") || !strings.Contains(err.Error(), "slack:U024BE7LH") ||
			!strings.Contains(err.Error(), "contoso") {
			t.Fatalf("%s: err = %v, want a start-up error naming the bare ids", tc.name, err)
		}
		if _, _, err := qualifyIdentities(nil, []PersonFile{{Name: "alice", IDs: []string{"U1"}}}, tc.slack, tc.teams); err == nil ||
			!strings.Contains(err.Error(), "U1") {
			t.Fatalf("%s: bare person id accepted: %v", tc.name, err)
		}
	}
}

func TestPeopleAndRateLimitsFromTheFile(t *testing.T) {
	file := `people:
  - name: alice
    ids: [slack:U1, teams:aad-1, web:alice]
rate_limit_user: 3/1m
`
	cfg, err := loadWith(t, nil, map[string]string{"C2_RATE_LIMIT_TENANT": "off"}, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.People) != 1 || cfg.People[0].Name != "alice" || len(cfg.People[0].IDs) != 3 {
		t.Fatalf("people = %+v", cfg.People)
	}
	u, tn := cfg.rates()
	if u.Events != 3 || u.Per.Minutes() != 1 || !tn.Off() {
		t.Fatalf("rates = %v %v", u, tn)
	}
	if _, err := loadWith(t, []string{"--rate-limit-user", "lots"}, nil, ""); err == nil || !strings.Contains(err.Error(), "C2_RATE_LIMIT_USER") {
		t.Fatalf("bad rate accepted: %v", err)
	}
}

// The real binary: serve stops at start-up naming bare ids it cannot place
// (console only: neither Slack nor Teams), and doctor says the same.
func TestServeRefusesBareApproverIds(t *testing.T) {
	_, env := sandboxEnv(t)
	env["C2_APPROVERS"] = "bob,U024BE7LH"
	for _, sub := range []string{"serve", "doctor"} {
		cmd := exec.Command(binary, sub)
		cmd.Env = childEnv(env)
		out, err := runWithTimeout(t, cmd, 30*time.Second)
		if err == nil || !strings.Contains(out, "bob, U024BE7LH have no platform") || !strings.Contains(out, "web:bob") {
			t.Fatalf("%s with bare approver ids: %v\n%s", sub, err, out)
		}
	}
}

func runWithTimeout(t *testing.T, cmd *exec.Cmd, d time.Duration) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not stop:\n%s", cmd.Path, buf.String())
	}
	return "", nil
}
