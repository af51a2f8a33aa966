package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

// binary is the c2bot built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "c2bot-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "c2bot")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build c2bot: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// childEnv is the environment of a child c2bot: the test's, without any C2_
// setting, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "C2_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// proc is a running c2bot.
type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
	url  string
}

func startBot(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	return startBinary(t, binary, env, args...)
}

// startBinary starts bin (the c2bot built for the tests, or another build
// of it) and waits until it is ready.
func startBinary(t *testing.T, bin string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(env)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: logs, done: make(chan error, 1), url: "http://" + env["C2_LISTEN"]}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("c2bot output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("c2bot exited early: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("c2bot did not become ready:\n%s", logs.String())
	return nil
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil
}

// consoleMessage is what the console API returns for one message.
type consoleMessage struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Plain   string `json:"plain"`
	Thread  string `json:"thread"`
	Message struct {
		Title   string `json:"title"`
		Buttons []struct {
			Label   string `json:"label"`
			Command string `json:"command"`
		} `json:"buttons"`
	} `json:"message"`
}

func (p *proc) post(t *testing.T, path string, body any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", p.url+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

func (p *proc) say(t *testing.T, user, text string) {
	t.Helper()
	p.post(t, "/console/api/command", map[string]any{"user": user, "text": text})
}

func (p *proc) messages(t *testing.T, user string) []consoleMessage {
	t.Helper()
	resp, err := http.Get(p.url + "/console/api/messages?user=" + user)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Messages []consoleMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Messages
}

// waitMessage polls the console until a bot message satisfies ok.
func (p *proc) waitMessage(t *testing.T, user string, within time.Duration, ok func(consoleMessage) bool) consoleMessage {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, m := range p.messages(t, user) {
			if m.Kind == "bot" && ok(m) {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var seen []string
	for _, m := range p.messages(t, user) {
		seen = append(seen, m.ID+": "+m.Message.Title)
	}
	t.Fatalf("no such message within %s; console has:\n%s", within, strings.Join(seen, "\n"))
	return consoleMessage{}
}

func (p *proc) click(t *testing.T, user string, m consoleMessage, label string) {
	t.Helper()
	for i, b := range m.Message.Buttons {
		if b.Label == label {
			p.post(t, "/console/api/click", map[string]any{"user": user, "message": m.ID, "button": i})
			return
		}
	}
	t.Fatalf("message %s has no %q button", m.ID, label)
}

func titled(prefix string) func(consoleMessage) bool {
	return func(m consoleMessage) bool { return strings.HasPrefix(m.Message.Title, prefix) }
}

// syncBuffer is a bytes.Buffer safe for the child's two output streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sandboxEnv starts the sandbox tenant of the default scenario (a
// delegated tool blocked by Security defaults, where a temporary change
// helps) and returns the environment that points a child c2bot at it.
func sandboxEnv(t *testing.T) (*sandbox.Server, map[string]string) {
	t.Helper()
	return sandboxScenarioEnvWith(t, defaultScenario, sandbox.Options{})
}

// sandboxEnvWith is sandboxEnv on a sandbox started with opts.
func sandboxEnvWith(t *testing.T, opts sandbox.Options) (*sandbox.Server, map[string]string) {
	t.Helper()
	return sandboxScenarioEnvWith(t, defaultScenario, opts)
}

// sandboxScenarioEnv is sandboxEnv for a named scenario: its tenant, and the
// tool's profile as the child's settings.
func sandboxScenarioEnv(t *testing.T, name string) (*sandbox.Server, map[string]string) {
	t.Helper()
	return sandboxScenarioEnvWith(t, name, sandbox.Options{})
}

func sandboxScenarioEnvWith(t *testing.T, name string, opts sandbox.Options) (*sandbox.Server, map[string]string) {
	t.Helper()
	sc, ok := sandbox.FindScenario(name)
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	if !sc.Date.IsZero() {
		t.Fatalf("scenario %s is dated %s; a child c2bot runs on today's clock", name, sc.Date)
	}
	sb, _, err := sandbox.StartScenario(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	sb.SetCAThrottle(false)
	dir := t.TempDir()
	ca := filepath.Join(dir, "sandbox-ca.pem")
	if err := os.WriteFile(ca, sb.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"C2_LISTEN":           freeAddr(t),
		"C2_DB":               filepath.Join(dir, "c2bot.db"),
		"C2_TENANT_NAME":      "sandbox",
		"C2_TENANT_ID":        sandbox.DefaultTenantID,
		"C2_CLIENT_ID":        sandbox.DefaultClientID,
		"C2_CLIENT_SECRET":    sandbox.DefaultClientSecret,
		"C2_GRAPH_URL":        sb.URL(),
		"C2_AUTHORITY_URL":    sb.URL(),
		"C2_CA_FILE":          ca,
		"C2_TOOL_ACCOUNT":     sandbox.DefaultToolAccount,
		"C2_APPROVERS":        "web:bob",
		"C2_CONSOLE":          "true",
		"C2_MIN_DURATION":     "1s",
		"C2_DEFAULT_DURATION": "1h",
		"C2_LOG_LEVEL":        "debug",
	}
	for k, v := range scenarioSettings(sc) {
		env[k] = v
	}
	return sb, env
}

// sandboxBlocked and sandboxOpened say whether the default scenario's
// tenant holds its original settings or the temporary fix (Security
// defaults off for the delegated tool; nothing else is part of the plan).
func sandboxBlocked(st sandbox.State) bool { return st.SecurityDefaults }
func sandboxOpened(st sandbox.State) bool  { return !st.SecurityDefaults }

// patches counts the PATCH requests the sandbox received on a path.
func patches(sb *sandbox.Server, prefix string) int {
	n := 0
	for _, r := range sb.Requests() {
		if r.Method == "PATCH" && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// auditActions reads the audit log of a stopped c2bot's database.
func auditActions(t *testing.T, db, id string) []string {
	t.Helper()
	st, err := openStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.Audit(context.Background(), 0, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Action)
	}
	return out
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// TestCrashDuringRevert kills c2bot with SIGKILL while the sandbox holds its
// revert PATCH open, restarts it on the same database, and checks that the
// tenant is reverted once and the confirmation is delivered.
func TestCrashDuringRevert(t *testing.T) {
	sb, env := sandboxEnv(t)
	p := startBot(t, env, "serve")
	p.say(t, "alice", "/c2 fix --for 4s")
	card := p.waitMessage(t, "bob", 20*time.Second, titled("Approval needed"))
	held, release := sb.Hold("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy")
	defer release()
	// The first matching PATCH is the apply; let it through, then hold the revert.
	go func() { <-held; release() }()
	p.click(t, "bob", card, "Approve")
	p.waitMessage(t, "bob", 20*time.Second, titled("Applied"))
	if !sandboxOpened(sb.State()) {
		t.Fatalf("not applied: %+v", sb.State())
	}
	held2, release2 := sb.Hold("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy")
	defer release2()
	select {
	case <-held2:
	case <-time.After(30 * time.Second):
		t.Fatal("the revert never reached the tenant")
	}
	if sandboxBlocked(sb.State()) {
		t.Fatal("the test did not catch the revert half-way")
	}
	p.kill(t)
	release2()

	p2 := startBot(t, env, "serve")
	p2.waitMessage(t, "bob", 30*time.Second, titled("Reverted"))
	if !sandboxBlocked(sb.State()) {
		t.Fatalf("tenant not reverted after restart: %+v", sb.State())
	}
	p2.kill(t)
	// The held write may be dropped with the dead connection (then the
	// restarted process writes it: apply + lost write + revert = 3) or still
	// land once released (then the restarted process finds the setting
	// already back and writes nothing: 2). Never more.
	if n := patches(sb, "/policies/identitySecurityDefaultsEnforcementPolicy"); n != 2 && n != 3 {
		t.Fatalf("security defaults PATCHed %d times, want 2 or 3", n)
	}
	// SharePoint's settings do not affect a delegated tool: never written.
	if n := patches(sb, "/admin/sharepoint/settings"); n != 0 {
		t.Fatalf("SharePoint settings PATCHed %d times; they are not part of the plan", n)
	}
	actions := auditActions(t, env["C2_DB"], "r-1")
	if count(actions, "reverted") != 1 || count(actions, "applied") != 1 {
		t.Fatalf("audit = %v", actions)
	}
}

// TestCrashDuringApply kills c2bot while the apply PATCH is held open: after
// a restart the half-made change is rolled back and announced.
func TestCrashDuringApply(t *testing.T) {
	sb, env := sandboxEnv(t)
	p := startBot(t, env, "serve")
	p.say(t, "alice", "/c2 fix --for 1h")
	card := p.waitMessage(t, "bob", 20*time.Second, titled("Approval needed"))
	held, release := sb.Hold("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy")
	defer release()
	p.click(t, "bob", card, "Approve")
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the apply never reached the tenant")
	}
	if !sb.State().SecurityDefaults {
		t.Fatal("security defaults changed before the held write was released")
	}
	p.kill(t)
	// The held write lands after the crash: the tenant is now half-changed
	// behind the dead process's back.
	release()

	p2 := startBot(t, env, "serve")
	m := p2.waitMessage(t, "bob", 30*time.Second, func(m consoleMessage) bool {
		return strings.Contains(m.Plain, "interrupted") && strings.Contains(m.Plain, "reverted")
	})
	eventually(t, 10*time.Second, "interrupted apply rolled back", func() bool { return sandboxBlocked(sb.State()) })
	p2.kill(t)
	if !sandboxBlocked(sb.State()) {
		t.Fatalf("interrupted apply not rolled back: %+v\n%s", sb.State(), m.Plain)
	}
	actions := auditActions(t, env["C2_DB"], "r-1")
	if count(actions, "failed") != 1 || count(actions, "applied") != 0 {
		t.Fatalf("audit = %v", actions)
	}
}

func TestSecondProcessOnSameDatabaseFailsFast(t *testing.T) {
	_, env := sandboxEnv(t)
	startBot(t, env, "serve")
	env2 := map[string]string{}
	for k, v := range env {
		env2[k] = v
	}
	env2["C2_LISTEN"] = freeAddr(t)
	cmd := exec.Command(binary, "serve")
	cmd.Env = childEnv(env2)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("second c2bot on the same database started")
	}
	if !strings.Contains(string(out), env["C2_DB"]) || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("error does not name the file: %s", out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %s to fail", d)
	}
}

func TestDiagnoseCommandOnSandbox(t *testing.T) {
	out, err := exec.Command(binary, "diagnose", "--sandbox", "--json").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitBlocked {
		t.Fatalf("diagnose --sandbox --json: %v, want exit status %d", err, exitBlocked)
	}
	var rep struct {
		Tenant   string `json:"tenant"`
		Findings []struct {
			Check    string `json:"check"`
			Severity string `json:"severity"`
		} `json:"findings"`
		Plan []struct {
			Kind   string `json:"kind"`
			Before string `json:"before"`
			After  string `json:"after"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	severities := map[string]string{}
	for _, f := range rep.Findings {
		severities[f.Check] = f.Severity
	}
	// The default scenario: a delegated tool that cannot do the MFA Security
	// defaults demand. SharePoint's settings do not affect it.
	for check, want := range map[string]string{"security_defaults": "blocker", "signins": "blocker"} {
		if severities[check] != want {
			t.Errorf("%s is %q, want %s: %s", check, severities[check], want, out)
		}
	}
	for _, check := range []string{"sharepoint_legacy_auth", "sharepoint_invited_match"} {
		if severities[check] == "blocker" {
			t.Errorf("%s blocks a delegated tool: %s", check, out)
		}
	}
	if len(rep.Plan) != 1 || rep.Plan[0].Kind != "security_defaults" || rep.Plan[0].Before != "true" || rep.Plan[0].After != "false" {
		t.Fatalf("plan = %+v", rep.Plan)
	}
	text, err := exec.Command(binary, "diagnose", "--sandbox").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitBlocked {
		t.Fatalf("diagnose --sandbox: %v", err)
	}
	for _, want := range []string{"Security defaults are on", "50076", "Request temporary fix", "Sign-in paths today"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"bogus"}, nil, 2, "unknown subcommand"},
		{[]string{"serve"}, map[string]string{"C2_DEFAULT_DURATION": "never"}, 2, "C2_DEFAULT_DURATION"},
		{[]string{"serve"}, map[string]string{"C2_LISTEN": "127.0.0.1:0", "C2_DB": "x.db"}, 1, "no tenant configured"},
		{[]string{"diagnose"}, nil, 1, "no tenant configured"},
		{[]string{"teams-package"}, nil, 2, "C2_TEAMS_APP_ID"},
		{[]string{"audit", "--format", "xml"}, nil, 2, "--format must be json or csv"},
		{[]string{"audit", "--since", "lately"}, nil, 2, "--since"},
		{[]string{"audit"}, map[string]string{"C2_DB": "missing.db"}, 1, "missing.db"},
		{[]string{"serve"}, map[string]string{"C2_LISTEN": "127.0.0.1:0", "C2_DB": "x.db", "C2_TENANT_ID": "t", "C2_CLIENT_ID": "c",
			"C2_CLIENT_SECRET": "hunter2", "C2_TEAMS_APP_ID": "a", "C2_TEAMS_APP_PASSWORD": "hunter2"}, 1, "C2_TEAMS_APP_TENANT_ID"},
		// Teams is never implied by a loopback address without an app id.
		{[]string{"serve"}, map[string]string{"C2_LISTEN": "127.0.0.1:0", "C2_DB": "x.db", "C2_TENANT_ID": "t", "C2_CLIENT_ID": "c",
			"C2_CLIENT_SECRET": "hunter2"}, 1, "no chat platform configured"},
		// Unauthenticated Teams only by opt-in, and only on loopback.
		{[]string{"serve"}, map[string]string{"C2_LISTEN": "0.0.0.0:0", "C2_DB": "x.db", "C2_TENANT_ID": "t", "C2_CLIENT_ID": "c",
			"C2_CLIENT_SECRET": "hunter2", "C2_TEAMS_UNAUTHENTICATED": "true", "C2_TEAMS_TENANTS": "t"}, 1, "not loopback"},
	}
	for _, tt := range tests {
		cmd := exec.Command(binary, tt.args...)
		cmd.Env = childEnv(tt.env)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != tt.code || !strings.Contains(string(out), tt.want) {
			t.Errorf("c2bot %v: err %v, output %q; want exit %d with %q", tt.args, err, out, tt.code, tt.want)
		}
	}
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "c2bot ") {
		t.Fatalf("version: %v %q", err, out)
	}
}
