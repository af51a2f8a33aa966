package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/c2bot/c2bot/bot"
	slackbot "github.com/c2bot/c2bot/bot/slack"
	"github.com/c2bot/c2bot/bot/teams"
	"github.com/c2bot/c2bot/bot/web"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// Timeouts of the HTTP server and of shutdown.
const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 15 * time.Second
	commandWorkers    = 8
	commandQueue      = 64
	readyTimeout      = 2 * time.Second
)

// app is a wired c2bot: store, tenants, adapters, core and HTTP server.
type app struct {
	cfg     Config
	log     *slog.Logger
	store   store.Backend
	metrics *metrics
	core    *handlers.Core
	disp    *bot.Dispatcher
	slack   *slackbot.Adapter
	teams   *teams.Adapter
	web     *web.Adapter
	mux     *http.ServeMux
	ready   atomic.Bool
	// closers run after the server stops, before the store closes.
	closers []func()
}

// appOptions are what the demo adds to the configuration.
type appOptions struct {
	// tenants replaces the tenants built from the configuration (the demo's sandbox).
	tenants []handlers.TenantConfig
	// console turns on the console (with its two simulated users).
	console bool
	// now is the clock (tests); nil means time.Now.
	now func() time.Time
}

// httpClient returns a client for Graph and sign-in that also trusts
// C2_CA_FILE; timeout bounds each attempt (C2_GRAPH_TIMEOUT).
func httpClient(caFile string, timeout time.Duration) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{Timeout: timeout}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("C2_CA_FILE: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("C2_CA_FILE %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// buildTenants makes the tenant list from the configuration: the default
// tenant from C2_TENANT_ID and friends, then every tenant of the file.
func buildTenants(cfg Config, log *slog.Logger) ([]handlers.TenantConfig, error) {
	hc, err := httpClient(cfg.CAFile, cfg.GraphTimeout)
	if err != nil {
		return nil, err
	}
	var out []handlers.TenantConfig
	if cfg.TenantID != "" || cfg.ClientID != "" {
		fed, mi := secretless(cfg.ClientSecret, cfg.ClientCert, "", "", cfg)
		cl, err := tenant.New(tenant.Config{
			TenantID: cfg.TenantID, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, CertFile: cfg.ClientCert,
			FederatedTokenFile: fed, ManagedIdentity: mi,
			GraphURL: cfg.GraphURL, AuthorityURL: cfg.AuthorityURL, HTTPClient: hc, Logger: log.With("tenant", cfg.TenantName),
		})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", cfg.TenantName, err)
		}
		out = append(out, handlers.TenantConfig{
			Name: cfg.TenantName, Client: cl, Approvers: cfg.Approvers, AllowSelfApproval: cfg.AllowSelfApproval,
			Channels: cfg.Channels, ToolAccount: cfg.ToolAccount,
			Product: cfg.Product, Version: cfg.Version, ToolAuth: cfg.ToolAuth, ToolAppID: cfg.ToolAppID,
			ApprovalsRequired: cfg.ApprovalsRequired, RequireReason: cfg.RequireReason, RemindBefore: cfg.RemindBefore,
		})
	}
	for _, t := range cfg.Tenants {
		graphURL, authURL := t.GraphURL, t.AuthorityURL
		if graphURL == "" {
			graphURL = cfg.GraphURL
		}
		if authURL == "" {
			authURL = cfg.AuthorityURL
		}
		fed, mi := secretless(t.ClientSecret, t.ClientCert, t.FederatedTokenFile, t.ManagedIdentity, cfg)
		cl, err := tenant.New(tenant.Config{
			TenantID: t.TenantID, ClientID: t.ClientID, ClientSecret: t.ClientSecret, CertFile: t.ClientCert,
			FederatedTokenFile: fed, ManagedIdentity: mi,
			GraphURL: graphURL, AuthorityURL: authURL, HTTPClient: hc, Logger: log.With("tenant", t.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
		}
		approvers := t.Approvers
		if len(approvers) == 0 {
			approvers = cfg.Approvers
		}
		tc := handlers.TenantConfig{
			Name: t.Name, Client: cl, Approvers: approvers, AllowSelfApproval: t.AllowSelfApproval || cfg.AllowSelfApproval,
			Channels: t.Channels, ToolAccount: t.ToolAccount, Product: t.Product, Version: t.Version,
			ToolAuth: t.ToolAuth, ToolAppID: t.ToolAppID,
		}
		tc.ApprovalsRequired, tc.RequireReason, tc.RemindBefore = cfg.governance(t)
		out = append(out, tc)
	}
	if len(out) == 0 {
		return nil, errors.New("no tenant configured: set C2_TENANT_ID, C2_CLIENT_ID and C2_CLIENT_SECRET (or C2_CLIENT_CERT), list tenants in the C2_CONFIG file, or run `c2bot demo` for the sandbox")
	}
	return out, nil
}

// secretless picks the secretless credential of an app that has no secret
// or certificate of its own: its own federated token file or managed
// identity, else the top-level ones (C2_FEDERATED_TOKEN_FILE,
// C2_MANAGED_IDENTITY). An app with a secret or certificate gets none.
func secretless(secret, cert, fed, mi string, cfg Config) (string, string) {
	switch {
	case secret != "" || cert != "":
		return "", ""
	case fed != "" || mi != "":
		return fed, mi
	case cfg.FederatedTokenFile != "":
		return cfg.FederatedTokenFile, ""
	default:
		return "", cfg.ManagedIdentity
	}
}

// opsHosts guards /metrics, /healthz and /readyz. On a loopback listen
// address (a workstation: the console, the Agents Playground) they answer
// only to loopback Host names, so a web page that rebinds its own name to
// 127.0.0.1 cannot read the metrics (tenant names, counts) from the
// operator's browser. Elsewhere Prometheus and probes reach c2bot under
// names c2bot cannot know (a pod IP, a service name), and no Host is
// refused.
func opsHosts(listen string, log *slog.Logger) func(http.Handler) http.Handler {
	if !isLoopback(listen) {
		return func(h http.Handler) http.Handler { return h }
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !bot.IsLoopbackHost(r.Host) {
				log.WarnContext(r.Context(), "request refused: Host is not a loopback name", "host", r.Host, "path", r.URL.Path)
				http.Error(w, "c2bot listens on a loopback address and answers only to localhost, 127.0.0.1 or [::1] (this Host is refused against DNS rebinding)", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// isLoopback reports whether a listen address binds only to loopback.
func isLoopback(addr string) bool {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return false
	}
	return bot.IsLoopbackHost(addr)
}

// newApp wires everything; it opens the database and checks chat credentials.
func newApp(ctx context.Context, cfg Config, opts appOptions, log *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, mux: http.NewServeMux()}
	now := opts.now
	if now == nil {
		now = time.Now
	}
	a.metrics = newMetrics(now)
	tenants := opts.tenants
	if tenants == nil {
		if tenants, err = buildTenants(cfg, log); err != nil {
			return nil, err
		}
	}
	for _, t := range tenants {
		if mc, ok := t.Client.(interface{ UseMetrics(tenant.Metrics) }); ok {
			mc.UseMetrics(graphMetrics{a.metrics})
		}
	}
	var senders []bot.Sender
	if cfg.SlackBotToken != "" {
		a.slack, err = slackbot.New(slackbot.Config{
			BotToken: cfg.SlackBotToken, SigningSecret: cfg.SlackSigningSecret, AppToken: cfg.SlackAppToken,
			APIURL: cfg.SlackAPIURL, TeamIDs: cfg.SlackTeamIDs, Logger: log,
			OnRefused: a.metrics.refusedBy(bot.Slack),
		})
		if err != nil {
			return nil, err
		}
		if err := a.slack.Check(ctx); err != nil {
			return nil, err
		}
		senders = append(senders, a.slack)
		a.mux.Handle("/slack/", a.slack.Handler())
	}
	// Teams is on with a registration, or by explicit opt-in for the
	// Agents Playground; never because an app id is missing.
	if cfg.TeamsAppID != "" || cfg.TeamsUnauthenticated {
		fed, mi := secretless(cfg.TeamsAppPassword, cfg.TeamsAppCert, "", "", cfg)
		a.teams, err = teams.New(teams.Config{
			AppID: cfg.TeamsAppID, AppPassword: cfg.TeamsAppPassword, AppTenantID: cfg.TeamsAppTenantID,
			AppCertFile: cfg.TeamsAppCert, FederatedTokenFile: fed, ManagedIdentity: mi,
			TokenScope: cfg.BotFrameworkScope, Issuer: cfg.BotFrameworkIssuer,
			Unauthenticated: cfg.TeamsUnauthenticated, Tenants: cfg.TeamsTenants,
			AuthorityURL: cfg.AuthorityURL, OpenIDURL: cfg.BotFrameworkOpenIDURL, ListenAddr: cfg.Listen, Logger: log,
			OnTokenFailure: a.metrics.botTokenFailed, OnRefused: a.metrics.refusedBy(bot.Teams),
		})
		if err != nil {
			return nil, err
		}
		senders = append(senders, a.teams)
		a.mux.Handle("/api/messages", a.teams.Handler())
	}
	if cfg.Console || opts.console {
		if !isLoopback(cfg.Listen) {
			return nil, fmt.Errorf("the console has no sign-in, so it is served only on a loopback address; C2_LISTEN is %s", cfg.Listen)
		}
		a.web, err = web.New(web.Config{Logger: log, ListenAddr: cfg.Listen, OnRefused: a.metrics.refusedBy(bot.Web)})
		if err != nil {
			return nil, err
		}
		senders = append(senders, a.web)
		a.mux.Handle("/", a.web.Handler())
		a.closers = append(a.closers, a.web.Close)
	}
	if len(senders) == 0 {
		return nil, errors.New("no chat platform configured: set C2_SLACK_BOT_TOKEN, C2_TEAMS_APP_ID (or C2_TEAMS_UNAUTHENTICATED=true on a loopback address for the Agents Playground), or C2_CONSOLE on a loopback address")
	}

	a.store, err = openStore(context.Background(), cfg.DB, now)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = a.store.Close()
		}
	}()

	a.metrics.watchStore(a.store, log)

	// Crash points exist only in a -tags faultinject build (faultinject.go).
	var st handlers.Store = a.store
	if tenants, st, senders, err = injectFaults(tenants, st, senders, log); err != nil {
		return nil, err
	}
	// Identities are platform-qualified; bare ids resolve against the
	// adapters actually enabled.
	tenants, people, err := qualifyIdentities(tenants, cfg.People, a.slack != nil, a.teams != nil)
	if err != nil {
		return nil, err
	}
	userRate, tenantRate := cfg.rates()
	a.core, err = handlers.New(handlers.Config{
		Tenants: tenants, People: people, UserRate: userRate, TenantRate: tenantRate,
		Senders: senders, Store: st, Logger: log, Now: now,
		DefaultDuration: cfg.DefaultDuration, MinDuration: cfg.MinDuration, MaxDuration: cfg.MaxDuration,
		ApprovalTTL: cfg.ApprovalTTL, RetryBase: cfg.RetryBase,
		WatchInterval: cfg.WatchInterval, Checkpoints: cfg.WatchCheckpoints,
		Metrics: a.metrics,
	})
	if err != nil {
		return nil, err
	}
	if len(cfg.Channels) == 0 && len(cfg.Tenants) == 0 && opts.tenants == nil {
		log.Warn("no channel is bound to the tenant (C2_CHANNELS); commands are accepted from every channel the bot is in")
	}
	ops := opsHosts(cfg.Listen, log)
	a.mux.Handle("/metrics", ops(promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})))
	a.mux.Handle("/healthz", ops(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })))
	a.mux.Handle("/readyz", ops(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		// Not ready while the database is away: a load balancer sends
		// commands to a replica that can answer them.
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := a.store.Ping(ctx); err != nil {
			log.Warn("not ready: database unreachable", "err", err)
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})))
	return a, nil
}

// run serves until ctx ends, then shuts down: the server with a deadline,
// the dispatcher, the scheduler, and the store last.
func (a *app) run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.disp = bot.NewDispatcher(ctx, a.core, commandWorkers, commandQueue)
	if a.slack != nil {
		a.slack.Attach(a.disp)
	}
	if a.teams != nil {
		a.teams.Attach(a.disp)
	}
	if a.web != nil {
		a.web.Attach(a.disp)
	}
	srv := &http.Server{Handler: a.mux, ReadHeaderTimeout: readHeaderTimeout, BaseContext: func(net.Listener) context.Context { return ctx }}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.core.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	if a.slack != nil && a.cfg.SlackAppToken != "" {
		g.Go(func() error { return a.slack.RunSocketMode(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer scancel()
		for _, c := range a.closers {
			c()
		}
		return srv.Shutdown(sctx)
	})
	a.ready.Store(true)
	a.log.Info("c2bot is ready", "listen", ln.Addr().String())
	err := g.Wait()
	a.ready.Store(false)
	a.disp.Close()
	if a.slack != nil {
		a.slack.Close()
	}
	if cerr := a.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	a.log.Info("c2bot stopped")
	return err
}
