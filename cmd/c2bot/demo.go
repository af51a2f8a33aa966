package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// demoSignInEvery is how often the demo's tool signs in, so that the
// sign-in watch sees the change take effect within the demo's window.
const demoSignInEvery = 10 * time.Second

// sandboxTenantName is the demo tenant's name in commands.
const sandboxTenantName = "sandbox"

// demoDefaults is the configuration of `c2bot demo` before flags, env and file.
func demoDefaults() Config {
	c := defaults()
	c.Listen = "127.0.0.1:3978"
	c.DB = "c2bot-demo.db"
	c.DefaultDuration = 2 * time.Minute
	c.MinDuration = 30 * time.Second
	c.ApprovalTTL = 15 * time.Minute
	c.Approvers = []string{"web:bob"} // the console's Bob; console users are always web: ids
	c.TenantName = sandboxTenantName
	// The demo window is minutes long: watch, remind and check in seconds.
	c.WatchInterval = 10 * time.Second
	c.WatchCheckpoints = []time.Duration{time.Minute}
	c.RemindBefore = 30 * time.Second
	return c
}

// defaultScenario is the sandbox tenant `demo` starts with: one where a
// temporary change still helps today, so the whole flow can be tried.
const defaultScenario = sandbox.DefaultScenario

// scenarioList is one line per scenario, for --help.
func scenarioList() string {
	var b strings.Builder
	for _, sc := range sandbox.Scenarios() {
		mark := ""
		if sc.Name == defaultScenario {
			mark = " (default)"
		}
		fmt.Fprintf(&b, "  %-20s %s%s\n", sc.Name, sc.Description, mark)
	}
	return b.String()
}

// scenarioSettings is the scenario's tool as c2bot settings would describe
// it: its product, version and app id. How it signs in is left for c2bot to
// infer from its sign-ins, as it would be in a tenant nobody configured.
func scenarioSettings(sc sandbox.Scenario) map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{"C2_PRODUCT": sc.Product, "C2_VERSION": sc.Version, "C2_TOOL_APP_ID": sc.ToolAppID} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// sandboxRun is a started sandbox tenant, the tenant entry on it, and the
// clock of the scenario (today's, or one running from the scenario's date).
type sandboxRun struct {
	srv    *sandbox.Server
	tenant handlers.TenantConfig
	sc     sandbox.Scenario
	now    func() time.Time
}

// startSandbox starts the sandbox tenant in the named scenario and a
// production Graph client on it, on the scenario's clock. Settings given
// in cfg win over the scenario's description of its tool.
func startSandbox(propagation time.Duration, name string, cfg Config) (sandboxRun, error) {
	sc, ok := sandbox.FindScenario(name)
	if !ok {
		return sandboxRun{}, usageError{fmt.Sprintf("unknown scenario %q (known: %s)", name, sandbox.ScenarioNames())}
	}
	now := sandbox.ClockFrom(sc.Date)
	srv, sc, err := sandbox.StartScenario(name, sandbox.Options{Propagation: propagation, Now: now, SignInEvery: demoSignInEvery})
	if err != nil {
		return sandboxRun{}, fmt.Errorf("sandbox tenant: %w", err)
	}
	cl, err := tenant.New(tenant.Config{
		TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret,
		GraphURL: srv.URL(), AuthorityURL: srv.URL(), HTTPClient: srv.Client(), Now: now,
	})
	if err != nil {
		_ = srv.Close()
		return sandboxRun{}, err
	}
	account := cmp.Or(cfg.ToolAccount, sandbox.DefaultToolAccount)
	tc := handlers.TenantConfig{
		Name: sandboxTenantName, Client: cl, Approvers: cfg.Approvers, AllowSelfApproval: cfg.AllowSelfApproval,
		Channels: cfg.Channels, ToolAccount: account,
		Product: cmp.Or(cfg.Product, sc.Product), Version: cmp.Or(cfg.Version, sc.Version),
		ToolAuth: cfg.ToolAuth, ToolAppID: cfg.ToolAppID,
		ApprovalsRequired: cfg.ApprovalsRequired, RequireReason: cfg.RequireReason, RemindBefore: cfg.RemindBefore,
	}
	if cfg.ToolAuth == "" || cfg.ToolAuth == authApp {
		tc.ToolAppID = cmp.Or(cfg.ToolAppID, sc.ToolAppID)
	}
	return sandboxRun{srv: srv, tenant: tc, sc: sc, now: now}, nil
}

// demoHelp is the top of `c2bot demo -h`; the scenarios and flags follow it.
const demoHelp = `Usage: c2bot demo [--scenario NAME] [flags]

Starts the built-in sandbox tenant (a local server that answers like
Microsoft Graph and Entra ID, following Microsoft's rules on the scenario's
date: today, unless the scenario names another) and the bot with its local
console. Open the printed address, type "/c2 diagnose" as Alice, ask for the
temporary fix, switch to Bob and approve it: the change is applied and, when
the window ends, reverted. In a scenario where no change can help, the
diagnosis says why and offers no fix.
`

func cmdDemo(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var propagation time.Duration
	var scenario string
	cfg, fs, err := parseConfig("demo", argv, stderr, getenv, demoDefaults(), func(fs *flag.FlagSet) {
		fs.DurationVar(&propagation, "propagation", 30*time.Second, "how long the sandbox takes before the tool's sign-ins succeed after a change")
		fs.StringVar(&scenario, "scenario", defaultScenario, "the sandbox tenant to start with: "+sandbox.ScenarioNames())
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), demoHelp, "\nScenarios (--scenario NAME):\n", scenarioList(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("demo takes no arguments (got %q)", fs.Arg(0))}
	}
	log := newLogger(cfg, stderr)
	sr, err := startSandbox(propagation, scenario, cfg)
	if err != nil {
		return err
	}
	defer sr.srv.Close()
	ln, err := listen(cfg.Listen)
	if err != nil {
		return err
	}
	cfg.Listen = ln.Addr().String()
	a, err := newApp(ctx, cfg, appOptions{tenants: []handlers.TenantConfig{sr.tenant}, console: true, now: sr.now}, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "c2bot demo: scenario %s — %s\n", sr.sc.Name, sr.sc.Description)
	if !sr.sc.Date.IsZero() {
		fmt.Fprintf(stdout, "c2bot demo: the sandbox and c2bot run on a clock that starts at %s\n", sr.sc.Date.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "c2bot demo: the sandbox tenant is at %s\n", sr.srv.URL())
	fmt.Fprintf(stdout, "c2bot demo: open http://%s/ — type /c2 diagnose as Alice, switch to Bob to approve (window %s)\n", ln.Addr(), cfg.DefaultDuration)
	return a.run(ctx, ln)
}

// listen opens the HTTP listener, with a clear error when the port is taken.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (C2_LISTEN): %w", addr, err)
	}
	return ln, nil
}

// Exit statuses of `c2bot diagnose` (a contract for scripts, in README.md).
const (
	exitNotBlocked = 0 // nothing blocks the tool
	exitBlocked    = 3 // at least one finding is a blocker
)

// diagnoseHelp is the top of `c2bot diagnose -h`; the flags follow it.
const diagnoseHelp = `Usage: c2bot diagnose [flags] [tenant]

Runs every check once against a configured tenant (or, with --sandbox, the
built-in sandbox tenant) and prints the findings; nothing is changed.

Exit status: 0 when nothing blocks the tool, 3 when at least one finding is
a blocker, 2 for a mistake on the command line or in the configuration, 1
for any other error (the tenant could not be read).

--json prints the report for scripts. These fields are a contract:
  tenant, tenant_id, checked_at, blocked
  profile{product, version, auth, app_id, inferred, inferred_from}
  platform[]{id, title, state, since, effect, source}
  findings[]{check, severity, title, evidence[]{name, value}, fix, policy_id}
  signins{account, since, total, succeeded, unavailable,
          failed[]{error_code, count, failure_reason, explanation, explained_by}}
  plan[]{kind, before, after, policy_id, ...}   kind: security_defaults,
          ca_exclude_user, ca_exclude_service_principal, ...
  no_fix   why no temporary change can help, when the plan is empty
`

func cmdDiagnose(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var (
		useSandbox, asJSON   bool
		account, s, scenario string
	)
	base := defaults()
	cfg, fs, err := parseConfig("diagnose", argv, stderr, getenv, base, func(fs *flag.FlagSet) {
		fs.BoolVar(&useSandbox, "sandbox", false, "diagnose the built-in sandbox tenant")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON (the fields above are a contract)")
		fs.StringVar(&account, "account", "", "the tool's user principal name (default C2_TOOL_ACCOUNT)")
		fs.StringVar(&s, "since", "24h", "how far back to read sign-ins")
		fs.StringVar(&scenario, "scenario", defaultScenario, "with --sandbox, the sandbox tenant to start: "+sandbox.ScenarioNames())
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), diagnoseHelp, "\nScenarios (--sandbox --scenario NAME):\n", scenarioList(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	since, err := handlers.ParseDuration(s)
	if err != nil {
		return usageError{"--since: " + err.Error()}
	}
	if fs.NArg() > 1 {
		return usageError{"diagnose takes at most one tenant name"}
	}
	log := newLogger(cfg, stderr)
	var tenants []handlers.TenantConfig
	if useSandbox {
		sr, err := startSandbox(0, scenario, cfg)
		if err != nil {
			return err
		}
		defer sr.srv.Close()
		tenants = []handlers.TenantConfig{sr.tenant}
	} else if tenants, err = buildTenants(cfg, log); err != nil {
		return err
	}
	t := tenants[0]
	if fs.NArg() == 1 {
		found := false
		for _, x := range tenants {
			if strings.EqualFold(x.Name, fs.Arg(0)) {
				t, found = x, true
			}
		}
		if !found {
			return usageError{fmt.Sprintf("no tenant named %q", fs.Arg(0))}
		}
	}
	tg := handlers.Target(t)
	tg.Since = since
	if account != "" {
		tg.Account = account
	}
	rep, err := t.Client.Diagnose(ctx, tg)
	if err != nil {
		return fmt.Errorf("diagnose %s: %w", t.Name, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			Tenant  string `json:"tenant"`
			Blocked bool   `json:"blocked"`
			tenant.Report
		}{t.Name, rep.Blocked(), rep})
	} else {
		_, err = fmt.Fprintln(stdout, handlers.RenderReport(t.Name, tg, rep).PlainText())
	}
	if err != nil {
		return err
	}
	if rep.Blocked() {
		return exitStatus(exitBlocked)
	}
	return nil
}
