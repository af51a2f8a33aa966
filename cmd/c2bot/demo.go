package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

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
	return c
}

// scenarios are the sandbox tenants `demo --scenario` can start with.
var scenarios = map[string]func() sandbox.State{
	// Security defaults on, SharePoint legacy auth off, invited-account
	// match on, a report-only Conditional Access policy: the vendor's case.
	"security-defaults": sandbox.DefaultState,
	// Security defaults off, an enforced Conditional Access policy that
	// blocks legacy clients for everyone: the fix is the scoped exclusion.
	"conditional-access": func() sandbox.State {
		st := sandbox.DefaultState()
		st.SecurityDefaults = false
		st.Policies[0].State = "enabled"
		return st
	},
	// Nothing blocks the tool.
	"clean": func() sandbox.State {
		st := sandbox.DefaultState()
		st.SecurityDefaults, st.LegacyAuth, st.InvitedMatch = false, true, false
		st.Policies[0].State = "disabled"
		return st
	},
}

func scenarioNames() string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// startSandbox starts the sandbox tenant in the named scenario and a
// production Graph client on it.
func startSandbox(propagation time.Duration, scenario string, cfg Config) (*sandbox.Server, handlers.TenantConfig, error) {
	state, ok := scenarios[scenario]
	if !ok {
		return nil, handlers.TenantConfig{}, usageError{fmt.Sprintf("unknown scenario %q (known: %s)", scenario, scenarioNames())}
	}
	initial := state()
	srv, err := sandbox.Start(sandbox.Options{Propagation: propagation, Initial: &initial})
	if err != nil {
		return nil, handlers.TenantConfig{}, fmt.Errorf("sandbox tenant: %w", err)
	}
	cl, err := tenant.New(tenant.Config{
		TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret,
		GraphURL: srv.URL(), AuthorityURL: srv.URL(), HTTPClient: srv.Client(),
	})
	if err != nil {
		_ = srv.Close()
		return nil, handlers.TenantConfig{}, err
	}
	account := cfg.ToolAccount
	if account == "" {
		account = sandbox.DefaultToolAccount
	}
	return srv, handlers.TenantConfig{
		Name: sandboxTenantName, Client: cl, Approvers: cfg.Approvers, AllowSelfApproval: cfg.AllowSelfApproval,
		Channels: cfg.Channels, ToolAccount: account,
	}, nil
}

func cmdDemo(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var propagation time.Duration
	var scenario string
	cfg, fs, err := parseConfig("demo", argv, stderr, getenv, demoDefaults(), func(fs *flag.FlagSet) {
		fs.DurationVar(&propagation, "propagation", 30*time.Second, "how long the sandbox takes before the tool's sign-ins succeed after a change")
		fs.StringVar(&scenario, "scenario", "security-defaults", "the sandbox tenant to start with: "+scenarioNames())
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
	srv, tc, err := startSandbox(propagation, scenario, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := listen(cfg.Listen)
	if err != nil {
		return err
	}
	cfg.Listen = ln.Addr().String()
	a, err := newApp(ctx, cfg, appOptions{tenants: []handlers.TenantConfig{tc}, console: true}, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "c2bot demo: the sandbox tenant is at %s\n", srv.URL())
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

func cmdDiagnose(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var (
		useSandbox, asJSON                 bool
		account, product, ver, s, scenario string
	)
	base := defaults()
	cfg, fs, err := parseConfig("diagnose", argv, stderr, getenv, base, func(fs *flag.FlagSet) {
		fs.BoolVar(&useSandbox, "sandbox", false, "diagnose the built-in sandbox tenant")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.StringVar(&account, "account", "", "the tool's user principal name (default C2_TOOL_ACCOUNT)")
		fs.StringVar(&product, "product", "", "backup or migration")
		fs.StringVar(&ver, "version", "", "the tool's version, X.Y")
		fs.StringVar(&s, "since", "24h", "how far back to read sign-ins")
		fs.StringVar(&scenario, "scenario", "security-defaults", "with --sandbox, the sandbox tenant to start: "+scenarioNames())
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
	log := newLogger(cfg, stderr)
	var tenants []handlers.TenantConfig
	if useSandbox {
		srv, tc, err := startSandbox(0, scenario, cfg)
		if err != nil {
			return err
		}
		defer srv.Close()
		tenants = []handlers.TenantConfig{tc}
	} else if tenants, err = buildTenants(cfg, log); err != nil {
		return err
	}
	t := tenants[0]
	if fs.NArg() > 1 {
		return usageError{"diagnose takes at most one tenant name"}
	}
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
	tg := tenant.Target{Account: t.ToolAccount, Product: product, Version: ver, Since: since}
	if account != "" {
		tg.Account = account
	}
	if product != "" && product != "backup" && product != "migration" {
		return usageError{"--product must be backup or migration"}
	}
	rep, err := t.Client.Diagnose(ctx, tg)
	if err != nil {
		return fmt.Errorf("diagnose %s: %w", t.Name, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Tenant string `json:"tenant"`
			tenant.Report
		}{t.Name, rep})
	}
	fmt.Fprintln(stdout, handlers.RenderReport(t.Name, tg, rep).PlainText())
	return nil
}
