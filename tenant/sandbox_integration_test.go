package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

func startSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Server, *tenant.Client) {
	t.Helper()
	srv, err := sandbox.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, clientFor(t, srv, opts.Now)
}

// clientFor is the production client on the sandbox, on the given clock.
func clientFor(t *testing.T, srv *sandbox.Server, now func() time.Time) *tenant.Client {
	t.Helper()
	t.Cleanup(func() { _ = srv.Close() })
	hc := srv.Client()
	// Runs before Close: idle keep-alive connections would hold up shutdown.
	t.Cleanup(hc.CloseIdleConnections)
	c, err := tenant.New(tenant.Config{
		TenantID:     sandbox.DefaultTenantID,
		ClientID:     sandbox.DefaultClientID,
		ClientSecret: sandbox.DefaultClientSecret,
		GraphURL:     srv.URL(),
		AuthorityURL: srv.URL(),
		HTTPClient:   hc,
		Now:          now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clock is a fake clock shared by the sandbox and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// today is the date the tests take for "today".
var today = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// testPropagation is how long the sandbox takes to apply a change to the
// tool's sign-ins in these tests (Microsoft documents up to 24 hours; the
// sandbox's access tokens live an hour on its clock, so tests stay below).
const testPropagation = 10 * time.Minute

// startScenario starts a named scenario on a fake clock at now.
func startScenario(t *testing.T, name string, now time.Time) (*sandbox.Server, *tenant.Client, *clock, sandbox.Scenario) {
	t.Helper()
	clk := newClock(now)
	srv, sc, err := sandbox.StartScenario(name, sandbox.Options{Now: clk.Now, Propagation: testPropagation})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCAThrottle(false)
	return srv, clientFor(t, srv, clk.Now), clk, sc
}

func target(sc sandbox.Scenario) tenant.Target {
	return tenant.Target{Account: sandbox.DefaultToolAccount, Product: sc.Product, Version: sc.Version, AppID: sc.ToolAppID, Since: time.Hour}
}

func blockers(rep tenant.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Severity == tenant.SeverityBlocker {
			out = append(out, f.Check)
		}
	}
	return out
}

func planKinds(items []tenant.Item) []tenant.Kind {
	var out []tenant.Kind
	for _, it := range items {
		out = append(out, it.Kind)
	}
	return out
}

func findingOf(rep tenant.Report, check string) (tenant.Finding, bool) {
	i := slices.IndexFunc(rep.Findings, func(f tenant.Finding) bool { return f.Check == check })
	if i < 0 {
		return tenant.Finding{}, false
	}
	return rep.Findings[i], true
}

// TestSandboxScenarios diagnoses every scenario with the production client,
// with the tool's profile inferred from its sign-ins, applies the plan,
// waits for it to propagate, checks the tool's sign-ins now succeed, and
// restores everything.
func TestSandboxScenarios(t *testing.T) {
	tests := []struct {
		name    string
		auth    string
		plan    []tenant.Kind
		noFix   string
		blocked bool // still blocked once the plan is applied
	}{
		{"vendor-2025", tenant.AuthLegacy, []tenant.Kind{tenant.KindSecurityDefaults, tenant.KindSharePointLegacyAuth}, "", true},
		{"vendor-today", tenant.AuthLegacy, nil, "update the tool", true},
		{"mfa-nested-group", tenant.AuthDelegated, []tenant.Kind{tenant.KindCAExcludeUser}, "", false},
		{"security-defaults", tenant.AuthDelegated, []tenant.Kind{tenant.KindSecurityDefaults}, "", false},
		{"workload-identity", tenant.AuthApp, []tenant.Kind{tenant.KindCAExcludeServicePrincipal}, "", false},
		{"conditional-access", tenant.AuthDelegated, []tenant.Kind{tenant.KindCAExcludeUser}, "", false},
		{"mfa-policies", tenant.AuthDelegated, []tenant.Kind{tenant.KindCAExcludeUser, tenant.KindCAExcludeUser, tenant.KindCAExcludeUser}, "", false},
		{"clean", tenant.AuthDelegated, nil, "", false},
	}
	if len(tests) != len(sandbox.Scenarios()) {
		t.Fatalf("%d scenarios tested, %d exist", len(tests), len(sandbox.Scenarios()))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, _ := sandbox.FindScenario(tt.name)
			now := today
			if !sc.Date.IsZero() {
				now = sc.Date
			}
			srv, c, clk, sc := startScenario(t, tt.name, now)
			ctx := context.Background()
			rep, err := c.Diagnose(ctx, target(sc))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Profile.Auth != tt.auth || !rep.Profile.Inferred {
				t.Errorf("profile %+v, want %s inferred", rep.Profile, tt.auth)
			}
			if tt.auth == tenant.AuthApp {
				// Service-principal sign-ins come from Graph beta, filtered on
				// signInEventTypes, with the same token.
				if !slices.ContainsFunc(srv.Requests(), func(r sandbox.Recorded) bool {
					return r.Version == "beta" && r.Authorized && strings.HasPrefix(r.Path, "/auditLogs/signIns?") &&
						strings.Contains(r.Path, "signInEventTypes%2Fany%28t%3A%20t%20eq%20%27servicePrincipal%27%29")
				}) {
					t.Errorf("no beta service-principal sign-in read in %+v", srv.Requests())
				}
			}
			if !slices.Equal(planKinds(rep.Plan), tt.plan) {
				t.Fatalf("plan %v, want %v (findings %+v)", planKinds(rep.Plan), tt.plan, rep.Findings)
			}
			if !strings.Contains(rep.NoFix, tt.noFix) || tt.noFix == "" && rep.NoFix != "" {
				t.Errorf("no_fix %q, want %q", rep.NoFix, tt.noFix)
			}
			if len(rep.Plan) == 0 {
				if rep.Blocked() != tt.blocked {
					t.Errorf("blocked %v (%v)", rep.Blocked(), blockers(rep))
				}
				return
			}
			// The failures name what explains them.
			for _, g := range rep.SignIns.Failed {
				if len(g.ExplainedBy) == 0 {
					t.Errorf("sign-ins failing with %d explained by nothing", g.ErrorCode)
				}
			}
			initial := srv.State()
			for _, it := range rep.Plan {
				if it.Propagation != 24*time.Hour {
					t.Errorf("%s: propagation %s", it.Kind, it.Propagation)
				}
				snap, err := c.Snapshot(ctx, it)
				if err != nil || snap.Before != it.Before {
					t.Fatalf("snapshot %+v, %v", snap, err)
				}
				if err := c.Apply(ctx, it); err != nil {
					t.Fatal(err)
				}
				if err := c.Verify(ctx, it); err != nil {
					t.Fatal(err)
				}
			}
			// Past propagation, two attempts: one to each service.
			clk.Add(4 * testPropagation)
			after, err := c.Diagnose(ctx, tenant.Target{Account: sandbox.DefaultToolAccount, Product: sc.Product, Version: sc.Version,
				AppID: sc.ToolAppID, Since: 3 * testPropagation})
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Plan) != 0 || after.Blocked() != tt.blocked {
				t.Errorf("after the change: plan %v, blockers %v", planKinds(after.Plan), blockers(after))
			}
			if f, _ := findingOf(after, tenant.CheckSignIns); f.Severity != tenant.SeverityOK || after.SignIns.Total == 0 {
				t.Errorf("sign-ins after the change: %+v (%+v)", f, after.SignIns)
			}
			for _, it := range rep.Plan {
				res, err := c.Restore(ctx, it)
				if err != nil || res.Outcome != tenant.Restored {
					t.Fatalf("restore %s: %+v, %v", it.Kind, res, err)
				}
			}
			if got := srv.State(); got.SecurityDefaults != initial.SecurityDefaults || got.LegacyAuth != initial.LegacyAuth ||
				len(got.Policies) != len(initial.Policies) || len(got.Policies) > 0 &&
				(!slices.Equal(got.Policies[0].ExcludeUsers, initial.Policies[0].ExcludeUsers) ||
					!slices.Equal(got.Policies[0].ExcludeServicePrincipals, initial.Policies[0].ExcludeServicePrincipals)) {
				t.Errorf("state after restore %+v, want %+v", got, initial)
			}
		})
	}
}

// TestSandboxVendorTenantOnThreeDates diagnoses the vendor's tenant (a
// legacy tool; Security defaults on, SharePoint legacy auth off) on three
// dates and gets Microsoft's three answers (MC1184649):
//   - 2025-12-01: turning Security defaults off and SharePoint legacy auth
//     on helps, and the tool's IDCRL sign-ins then succeed;
//   - 2026-03-01: only the PowerShell switch Graph cannot set can bring IDCRL
//     back (until 2026-04-30): no plan; with it, the sign-ins succeed;
//   - 2026-12-01: nothing can: no plan, update the tool; even with every
//     switch on, no sign-in succeeds.
func TestSandboxVendorTenantOnThreeDates(t *testing.T) {
	tests := []struct {
		now   time.Time
		plan  []tenant.Kind
		spFix string
		noFix string
		// opened: the tool's sign-ins succeed once the tenant is opened by
		// every switch, PowerShell's included.
		opened bool
	}{
		{time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC), []tenant.Kind{tenant.KindSecurityDefaults, tenant.KindSharePointLegacyAuth},
			"isLegacyAuthProtocolsEnabled to true", "", true},
		{time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), nil,
			"Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting $true", "until 2026-04-30 only PowerShell", true},
		{today, nil, "Update the backup tool", "no tenant setting brings it back", false},
	}
	for _, tt := range tests {
		t.Run(tt.now.Format(time.DateOnly), func(t *testing.T) {
			srv, c, clk, sc := startScenario(t, "vendor-today", tt.now)
			ctx := context.Background()
			rep, err := c.Diagnose(ctx, target(sc))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(planKinds(rep.Plan), tt.plan) {
				t.Errorf("plan %v, want %v", planKinds(rep.Plan), tt.plan)
			}
			if f, ok := findingOf(rep, tenant.CheckSharePointLegacyAuth); !ok || f.Severity != tenant.SeverityBlocker || !strings.Contains(f.Fix, tt.spFix) {
				t.Errorf("sharepoint finding %+v", f)
			}
			if !strings.Contains(rep.NoFix, tt.noFix) || tt.noFix == "" && rep.NoFix != "" {
				t.Errorf("no_fix %q, want %q", rep.NoFix, tt.noFix)
			}
			if f, ok := findingOf(rep, tenant.CheckSharePointInvitedMatch); !ok || f.Severity != tenant.SeverityInfo {
				t.Errorf("invited match %+v", f)
			}
			// Open everything, PowerShell's switch included (an outside change:
			// Graph cannot set it).
			st := srv.State()
			st.SecurityDefaults, st.LegacyAuth, st.AllowLegacyAuthProtocolsEnabledSetting = false, true, true
			srv.SetState(st)
			// Past propagation, two attempts: one to each service.
			clk.Add(4 * testPropagation)
			s, err := c.SignIns(ctx, sandbox.DefaultToolAccount, clk.Now().Add(-3*testPropagation))
			if err != nil {
				t.Fatal(err)
			}
			if opened := s.Total > 0 && s.Succeeded == s.Total; opened != tt.opened {
				t.Errorf("sign-ins with every switch on: %+v, want opened %v", s, tt.opened)
			}
		})
	}
}

// TestSandboxFixAndRevert drives the production client against the sandbox
// tenant: diagnose, apply and verify the plan, restore, and the drift cases,
// on 2025-12-01, when the vendor's procedure still helped a legacy tool.
func TestSandboxFixAndRevert(t *testing.T) {
	srv, c, clk, sc := startScenario(t, "vendor-2025", time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()

	rep, err := c.Diagnose(ctx, target(sc))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{tenant.CheckExchangeBasicAuth, tenant.CheckSecurityDefaults, tenant.CheckSharePointLegacyAuth} {
		if !slices.Contains(blockers(rep), want) {
			t.Errorf("no %s blocker in %+v", want, rep.Findings)
		}
	}
	// The invited-account match is information, never planned; the
	// report-only policy is a warning, not planned.
	if f, _ := findingOf(rep, tenant.CheckSharePointInvitedMatch); f.Severity != tenant.SeverityInfo {
		t.Errorf("invited match %+v", f)
	}
	if f, _ := findingOf(rep, tenant.CheckConditionalAccess); f.Severity != tenant.SeverityWarning || f.PolicyID != sandbox.DefaultPolicyID ||
		!strings.Contains(f.Title, "report-only") {
		t.Errorf("report-only policy %+v", f)
	}
	if len(rep.Plan) != 2 {
		t.Fatalf("plan %+v", rep.Plan)
	}

	for _, it := range rep.Plan {
		snap, err := c.Snapshot(ctx, it)
		if err != nil || snap.Before != it.Before {
			t.Fatalf("snapshot %v: %+v", err, snap)
		}
		if err := c.Apply(ctx, it); err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	st := srv.State()
	if st.SecurityDefaults || !st.LegacyAuth || !st.InvitedMatch {
		t.Fatalf("state after apply %+v", st)
	}
	for _, r := range srv.Requests() {
		if !r.Authorized {
			t.Errorf("%s %s went without a valid token", r.Method, r.Path)
		}
		if r.Method == http.MethodPatch && r.ContentEncoding != "" {
			t.Errorf("PATCH %s with Content-Encoding %q", r.Path, r.ContentEncoding)
		}
	}
	clk.Add(4 * testPropagation)
	tg := target(sc)
	tg.Since = 3 * testPropagation
	rep2, err := c.Diagnose(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	// The IDCRL sign-ins now succeed; Exchange basic auth stays retired.
	if len(rep2.Plan) != 0 || !slices.Equal(blockers(rep2), []string{tenant.CheckExchangeBasicAuth}) ||
		rep2.SignIns.Total == 0 || rep2.SignIns.Succeeded != rep2.SignIns.Total || !strings.Contains(rep2.NoFix, "Exchange Online basic auth") {
		t.Errorf("after apply: plan %+v, blockers %v, sign-ins %+v, no_fix %q", rep2.Plan, blockers(rep2), rep2.SignIns, rep2.NoFix)
	}
	if rep2.Profile.Auth != tenant.AuthLegacy || !strings.Contains(rep2.Profile.InferredFrom, "Other clients") {
		t.Errorf("profile %+v", rep2.Profile)
	}

	for _, it := range rep.Plan {
		res, err := c.Restore(ctx, it)
		if err != nil || res.Outcome != tenant.Restored || res.Current != it.Before {
			t.Fatalf("restore %s: %+v, %v", it.Kind, res, err)
		}
	}
	if st := srv.State(); !st.SecurityDefaults || st.LegacyAuth || !st.InvitedMatch {
		t.Fatalf("state after restore %+v", st)
	}

	// Someone puts one setting back and keeps another changed, by hand.
	sd, sp := rep.Plan[0], rep.Plan[1]
	if err := c.Apply(ctx, sd); err != nil {
		t.Fatal(err)
	}
	st = srv.State()
	st.SecurityDefaults = true
	srv.SetState(st)
	res, err := c.Restore(ctx, sd)
	if err != nil || res.Outcome != tenant.AlreadyOriginal {
		t.Fatalf("restore after outside revert: %+v, %v", res, err)
	}
	n := len(srv.Requests())
	if res, err := c.Restore(ctx, sp); err != nil || res.Outcome != tenant.AlreadyOriginal {
		t.Fatalf("restore of untouched item: %+v, %v", res, err)
	}
	for _, r := range srv.Requests()[n:] {
		if r.Method == http.MethodPatch {
			t.Errorf("restore wrote %s", r.Path)
		}
	}
}

// TestSandboxConditionalAccessExclusion plans, applies and restores the scoped
// alternative against an MFA policy that reaches the delegated tool through
// a nested group, then finds it drifted once the policy is gone.
func TestSandboxConditionalAccessExclusion(t *testing.T) {
	srv, c, clk, sc := startScenario(t, "mfa-nested-group", today)
	ctx := context.Background()

	rep, err := c.Diagnose(ctx, target(sc))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(planKinds(rep.Plan), []tenant.Kind{tenant.KindCAExcludeUser}) {
		t.Fatalf("plan %+v / %+v", rep.Plan, rep.Findings)
	}
	it := rep.Plan[0]
	if it.PolicyID != sandbox.MFAPolicyID || it.UserID != sandbox.DefaultToolAccountID {
		t.Fatalf("item %+v", it)
	}
	f, _ := findingOf(rep, tenant.CheckConditionalAccess)
	if f.Severity != tenant.SeverityBlocker || f.PolicyID != sandbox.MFAPolicyID {
		t.Errorf("finding %+v", f)
	}
	// The sign-ins fail with 50076 and name the policy.
	if len(rep.SignIns.Failed) != 1 || rep.SignIns.Failed[0].ErrorCode != 50076 ||
		!slices.Equal(rep.SignIns.Failed[0].ExplainedBy, []string{sandbox.MFAPolicyID}) {
		t.Errorf("failed sign-ins %+v", rep.SignIns.Failed)
	}
	if err := c.Apply(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, it); err != nil {
		t.Fatal(err)
	}
	if got := srv.State().Policies[0].ExcludeUsers; !slices.Contains(got, sandbox.DefaultToolAccountID) {
		t.Fatalf("excludeUsers %v", got)
	}
	res, err := c.Restore(ctx, it)
	if err != nil || res.Outcome != tenant.Restored {
		t.Fatalf("restore %+v, %v", res, err)
	}
	if got := srv.State().Policies[0].ExcludeUsers; slices.Contains(got, sandbox.DefaultToolAccountID) {
		t.Fatalf("excludeUsers after restore %v", got)
	}

	// Applied again, then the policy is deleted outside c2bot.
	if err := c.Apply(ctx, it); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	cur := srv.State()
	cur.Policies = nil
	srv.SetState(cur)
	res, err = c.Restore(ctx, it)
	if err != nil || res.Outcome != tenant.Drifted {
		t.Fatalf("restore of deleted policy %+v, %v", res, err)
	}
}

// TestSandboxThrottledConditionalAccess reads Conditional Access twice in a
// row with the sandbox's 1 request/second limit on (429 without
// Retry-After): the client backs off and both reads succeed.
func TestSandboxThrottledConditionalAccess(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the Conditional Access rate limit")
	}
	srv, c := startSandbox(t, sandbox.Options{})
	it := tenant.Item{Kind: tenant.KindCAExcludeUser, PolicyID: sandbox.DefaultPolicyID, UserID: sandbox.DefaultToolAccountID,
		Before: tenant.ValueIncluded, After: tenant.ValueExcluded}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if _, err := c.Snapshot(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Requests()); n < 3 {
		t.Errorf("%d requests: the second read was not throttled and retried", n)
	}
}

func TestSandboxWithoutLicenceOrPermission(t *testing.T) {
	st := sandbox.DefaultState()
	st.P1 = false
	srv, c := startSandbox(t, sandbox.Options{Initial: &st})
	srv.SetCAThrottle(false)
	s, err := c.SignIns(context.Background(), sandbox.DefaultToolAccount, time.Time{})
	if err != nil || s.Unavailable == "" {
		t.Fatalf("summary %+v, %v", s, err)
	}
	srv.Fail(sandbox.FailRule{PathPrefix: "/policies", Status: http.StatusForbidden, Code: "Authorization_RequestDenied"})
	err = c.Apply(context.Background(), tenant.Item{Kind: tenant.KindSecurityDefaults, Before: tenant.ValueTrue, After: tenant.ValueFalse})
	if !tenant.IsForbidden(err) {
		t.Fatalf("err %v", err)
	}
	var ge *tenant.GraphError
	if !errors.As(err, &ge) || ge.Code != "Authorization_RequestDenied" || ge.RequestID == "" {
		t.Fatalf("GraphError %+v", ge)
	}
}

func TestSandboxWrongSecret(t *testing.T) {
	srv, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hc := srv.Client()
	defer hc.CloseIdleConnections()
	c, err := tenant.New(tenant.Config{
		TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID, ClientSecret: "not-the-secret",
		GraphURL: srv.URL(), AuthorityURL: srv.URL(), HTTPClient: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Diagnose(context.Background(), tenant.Target{Account: sandbox.DefaultToolAccount})
	if !errors.Is(err, tenant.ErrAuthentication) {
		t.Fatalf("err %v", err)
	}
}

// TestSandboxAppWithoutServicePrincipal: an app tool whose app was never
// consented in the tenant fails with 700016; diagnose says so, names it as
// the explanation, and plans nothing.
func TestSandboxAppWithoutServicePrincipal(t *testing.T) {
	clk := newClock(today)
	sc, _ := sandbox.FindScenario("workload-identity")
	srv, err := sandbox.Start(sc.Options(sandbox.Options{Now: clk.Now}))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCAThrottle(false)
	c := clientFor(t, srv, clk.Now)
	rep, err := c.Diagnose(context.Background(), target(sc))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := findingOf(rep, tenant.CheckAppRegistration)
	if !ok || f.Severity != tenant.SeverityBlocker || !strings.Contains(f.Title, "no service principal") || len(rep.Plan) != 0 {
		t.Fatalf("finding %+v, plan %+v", f, rep.Plan)
	}
	if rep.Profile.Auth != tenant.AuthApp || len(rep.SignIns.Failed) != 1 || rep.SignIns.Failed[0].ErrorCode != 700016 ||
		!slices.Equal(rep.SignIns.Failed[0].ExplainedBy, []string{tenant.CheckAppRegistration}) {
		t.Errorf("profile %+v, sign-ins %+v", rep.Profile, rep.SignIns)
	}
}
