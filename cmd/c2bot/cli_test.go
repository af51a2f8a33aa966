package main

import (
	"archive/zip"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

func TestDoctorOnSandbox(t *testing.T) {
	sb, env := sandboxEnv(t)
	cmd := exec.Command(binary, "doctor")
	cmd.Env = childEnv(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"ok   database", "ok   tenant sandbox", sandboxTenantIDPrefix} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), env["C2_CLIENT_SECRET"]) {
		t.Fatal("doctor printed the client secret")
	}
	if n := patches(sb, ""); n != 0 {
		t.Fatalf("doctor wrote to the tenant %d times", n)
	}

	// Two approvals with one approver can never be met.
	env["C2_APPROVALS_REQUIRED"] = "2"
	cmd = exec.Command(binary, "doctor")
	cmd.Env = childEnv(env)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FAIL   approvals: 2 approvals required but only 1 approver(s)") {
		t.Fatalf("doctor with too few approvers: %v\n%s", err, out)
	}
	delete(env, "C2_APPROVALS_REQUIRED")

	// Without an approver, doctor says nobody can approve.
	env["C2_APPROVERS"] = ""
	delete(env, "C2_APPROVERS")
	cmd = exec.Command(binary, "doctor")
	cmd.Env = childEnv(env)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FAIL   approvers") {
		t.Fatalf("doctor without approvers: %v\n%s", err, out)
	}
}

const sandboxTenantIDPrefix = "signed in to c2b0c2b0"

func TestHealthMetricsAndGracefulStop(t *testing.T) {
	_, env := sandboxEnv(t)
	p := startBot(t, env, "serve")
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(p.url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	// On its loopback address a rebinding page's name is refused (the
	// metrics name tenants), loopback names are not.
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		for host, want := range map[string]int{"rebind.attacker.example": http.StatusForbidden, "localhost": http.StatusOK, "127.0.0.1": http.StatusOK} {
			req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s with Host %s: %s, want %d", path, host, resp.Status, want)
			}
		}
	}
	p.say(t, "alice", "/c2 fix --for 1h")
	p.waitMessage(t, "bob", 20*time.Second, titled("Approval needed"))
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `c2bot_events_total{action="requested"} 1`) {
		t.Fatalf("metrics lack the request:\n%s", body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("c2bot exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("c2bot did not stop after SIGTERM")
	}
	if !strings.Contains(p.logs.String(), "c2bot stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.logs.String())
	}
	// The database was closed: another process can open it at once.
	if actions := auditActions(t, env["C2_DB"], "r-1"); count(actions, "requested") != 1 {
		t.Fatalf("audit = %v", actions)
	}
}

// TestDemoScenarios: demo --help lists every scenario with its description,
// and an unknown one is refused with the list.
func TestDemoScenarios(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--help")
	cmd.Env = childEnv(nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo --help: %v\n%s", err, out)
	}
	for _, sc := range sandbox.Scenarios() {
		line := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(sc.Name) + ` +` + regexp.QuoteMeta(sc.Description))
		if sc.Description == "" || !line.Match(out) {
			t.Errorf("demo --help does not describe %s on one line:\n%s", sc.Name, out)
		}
	}
	if !strings.Contains(string(out), defaultScenario+" ") || !strings.Contains(string(out), "(default)") {
		t.Errorf("demo --help does not name the default scenario:\n%s", out)
	}
	for _, name := range []string{"vendor-2025", "vendor-today", "mfa-nested-group", "security-defaults", "workload-identity", "clean"} {
		if _, ok := sandbox.FindScenario(name); !ok {
			t.Errorf("no scenario %s", name)
		}
	}
	cmd = exec.Command(binary, "demo", "--scenario", "nope")
	cmd.Env = childEnv(map[string]string{"C2_LISTEN": freeAddr(t), "C2_DB": t.TempDir() + "/x.db"})
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "unknown scenario") || !strings.Contains(string(out), "vendor-today") {
		t.Fatalf("demo --scenario nope: %v %s", err, out)
	}
}

func TestTeamsPackageIsReproducible(t *testing.T) {
	run := func() []byte {
		cmd := exec.Command(binary, "teams-package", "-o", "-")
		cmd.Env = childEnv(map[string]string{"C2_TEAMS_APP_ID": "6f3c2b0a-1111-4222-8333-944455556666"})
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("teams-package: %v", err)
		}
		return out
	}
	a, b := run(), run()
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("two runs differ (%d and %d bytes)", len(a), len(b))
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "color.png,manifest.json,outline.png" {
		t.Fatalf("package holds %v", names)
	}
}

// TestOpsHostsOnlyOnLoopback: off loopback, Prometheus and probes use names
// c2bot cannot know, so no Host is refused there.
func TestOpsHostsOnlyOnLoopback(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for listen, want := range map[string]int{":3978": http.StatusNoContent, "10.0.0.5:3978": http.StatusNoContent,
		"127.0.0.1:3978": http.StatusForbidden, "localhost:3978": http.StatusForbidden, "[::1]:3978": http.StatusForbidden} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Host = "c2bot-0.c2bot.monitoring.svc:3978"
		opsHosts(listen, slog.New(slog.DiscardHandler))(ok).ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("listen %s, Host %s: %d, want %d", listen, req.Host, rec.Code, want)
		}
	}
}

// TestDoctorWarnsOfMissingHistoryScopes: doctor reads the token's scopes
// from auth.test and says what a missing *:history scope costs, without
// failing.
func TestDoctorWarnsOfMissingHistoryScopes(t *testing.T) {
	sb, env := sandboxEnv(t)
	r := slackRigOn(t, sb, env, false)
	run := func() string {
		cmd := exec.Command(binary, "doctor")
		cmd.Env = childEnv(env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "ok   slack") || strings.Contains(out, "warn slack scopes") {
		t.Fatalf("doctor with the manifest's scopes:\n%s", out)
	}
	r.fake.SetScopes("commands", "chat:write", "app_mentions:read", "channels:history")
	if out := run(); !strings.Contains(out, "warn slack scopes: the bot token lacks groups:history, im:history") {
		t.Fatalf("doctor without two history scopes:\n%s", out)
	}
}
