package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
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
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
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

// TestSandboxFixAndRevert drives the production client against the sandbox
// tenant: diagnose, apply and verify the plan, restore, and the drift cases.
func TestSandboxFixAndRevert(t *testing.T) {
	srv, c := startSandbox(t, sandbox.Options{})
	// The Conditional Access throttle is exercised in its own test.
	srv.SetCAThrottle(false)
	ctx := context.Background()

	rep, err := c.Diagnose(ctx, tenant.Target{Account: sandbox.DefaultToolAccount})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{tenant.CheckSecurityDefaults, tenant.CheckSharePointLegacyAuth, tenant.CheckSharePointInvitedMatch, tenant.CheckSignIns} {
		if !slices.Contains(blockers(rep), want) {
			t.Errorf("no %s blocker in %+v", want, rep.Findings)
		}
	}
	if len(rep.SignIns.Failed) == 0 || rep.SignIns.Total == rep.SignIns.Succeeded {
		t.Errorf("no failed sign-ins: %+v", rep.SignIns)
	}
	if len(rep.Plan) != 3 {
		t.Fatalf("plan %+v", rep.Plan)
	}
	// The demo's report-only policy is reported, not planned.
	if !slices.ContainsFunc(rep.Findings, func(f tenant.Finding) bool {
		return f.Check == tenant.CheckConditionalAccess && f.Severity == tenant.SeverityInfo
	}) {
		t.Errorf("report-only policy not reported: %+v", rep.Findings)
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
	if st.SecurityDefaults || !st.LegacyAuth || st.InvitedMatch {
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
	rep2, err := c.Diagnose(ctx, tenant.Target{Account: sandbox.DefaultToolAccount})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Plan) != 0 {
		t.Errorf("plan after apply %+v", rep2.Plan)
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
// alternative against an enforced policy, then finds it drifted once the
// policy is gone.
func TestSandboxConditionalAccessExclusion(t *testing.T) {
	st := sandbox.DefaultState()
	st.SecurityDefaults = false
	st.Policies[0].State = "enabled"
	srv, c := startSandbox(t, sandbox.Options{Initial: &st})
	srv.SetCAThrottle(false)
	ctx := context.Background()

	rep, err := c.Diagnose(ctx, tenant.Target{Account: sandbox.DefaultToolAccount})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Plan, func(it tenant.Item) bool { return it.Kind == tenant.KindCAExcludeUser })
	if i < 0 {
		t.Fatalf("no exclusion planned: %+v / %+v", rep.Plan, rep.Findings)
	}
	it := rep.Plan[i]
	if it.PolicyID != sandbox.DefaultPolicyID || it.UserID != sandbox.DefaultToolAccountID {
		t.Fatalf("item %+v", it)
	}
	if slices.ContainsFunc(rep.Plan, func(it tenant.Item) bool { return it.Kind == tenant.KindSecurityDefaults }) {
		t.Errorf("security defaults planned while off: %+v", rep.Plan)
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
