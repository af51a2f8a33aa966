package tenant

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant/sandbox"
)

// startCASandbox starts the sandbox with the directory caCases assume and
// returns it with a production client pointed at it.
func startCASandbox(t testing.TB) (*sandbox.Server, *Client) {
	t.Helper()
	srv, err := sandbox.Start(sandbox.Options{Initial: &sandbox.State{P1: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hc := srv.Client()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := New(Config{
		TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret,
		GraphURL: srv.URL(), AuthorityURL: srv.URL(), HTTPClient: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.AddGroup(caGroupDirect, "Backup service accounts"))
	must(srv.AddGroup(caGroupParent, "All staff"))
	must(srv.AddGroup(caGroupOther, "Finance"))
	must(srv.AddMember(caGroupDirect, caToolID))
	must(srv.AddMember(caGroupParent, caGroupDirect))
	must(srv.AddRoleHolder(roleExchangeAdmin, "Exchange Administrator", caToolID))
	must(srv.AddRoleHolder(roleGlobalAdmin, "Global Administrator", caBreakGlass))
	must(srv.AddServicePrincipal(sandbox.ServicePrincipal{ID: caToolSPID, AppID: caToolAppID, DisplayName: "Backup (app registration)"}))
	must(srv.AddServicePrincipal(sandbox.ServicePrincipal{ID: caForeignSPID, AppID: caForeignAppID, DisplayName: "Vendor SaaS", AppOwnerTenantID: caForeignOwner}))
	must(srv.SetUserType(caGuestID, "Guest"))
	return srv, c
}

// TestResolvePrincipals reads the tool account's nested groups and role,
// a guest, and service principals through the production client.
func TestResolvePrincipals(t *testing.T) {
	srv, c := startCASandbox(t)
	srv.SetCAThrottle(false)
	ctx := context.Background()
	who, err := c.ResolveUser(ctx, sandbox.DefaultToolAccount)
	if err != nil {
		t.Fatal(err)
	}
	want := caPrincipal("", AuthDelegated)
	slices.Sort(who.GroupIDs)
	if who.ID != want.ID || who.UserType != "member" || !slices.Equal(who.GroupIDs, want.GroupIDs) || !slices.Equal(who.RoleTemplateIDs, want.RoleTemplateIDs) {
		t.Errorf("tool account %+v, want %+v", who, want)
	}
	if who.GroupNames[caGroupParent] != "All staff" || who.RoleNames[roleExchangeAdmin] != "Exchange Administrator" {
		t.Errorf("names %v %v", who.GroupNames, who.RoleNames)
	}
	g, err := c.ResolveUser(ctx, caGuestID)
	if err != nil || g.UserType != "guest" || len(g.GroupIDs) != 0 {
		t.Errorf("guest %+v, %v", g, err)
	}
	if _, err := c.ResolveUser(ctx, "nobody@contoso.onmicrosoft.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	sp, err := c.ResolveServicePrincipal(ctx, caToolAppID)
	if err != nil || sp.ID != caToolSPID || sp.ForeignApp || sp.Kind != CAPrincipalServicePrincipal {
		t.Errorf("tool sp %+v, %v", sp, err)
	}
	f, err := c.ResolveServicePrincipal(ctx, caForeignAppID)
	if err != nil || !f.ForeignApp {
		t.Errorf("foreign sp %+v, %v", f, err)
	}
	if _, err := c.ResolveServicePrincipal(ctx, "b2000000-0000-4000-8000-0000000000ff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown sp: %v", err)
	}
	if _, err := c.ResolveServicePrincipal(ctx, "x') or (1 eq 1"); err == nil {
		t.Error("a malformed app id was sent")
	}
}

// TestTransitiveMemberOfPaging: a tool account in more groups than one
// page holds (100) is read whole, following @odata.nextLink.
func TestTransitiveMemberOfPaging(t *testing.T) {
	srv, c := startCASandbox(t)
	srv.SetCAThrottle(false)
	for i := 0; i < 230; i++ {
		id := sandboxPolicyID("group " + string(rune('a'+i%26)) + strings.Repeat("x", i/26))
		id = "d" + id[1:]
		if err := srv.AddGroup(id, "g"); err != nil {
			t.Fatal(err)
		}
		if err := srv.AddMember(id, caToolID); err != nil {
			t.Fatal(err)
		}
	}
	who, err := c.ResolveUser(context.Background(), caToolID)
	if err != nil {
		t.Fatal(err)
	}
	if len(who.GroupIDs) != 232 {
		t.Errorf("%d groups, want 232", len(who.GroupIDs))
	}
	pages := 0
	for _, r := range srv.Requests() {
		if strings.Contains(strings.ToLower(r.Path), "/transitivememberof") {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
}

// TestCAShapesAgreeWithWhatIf runs every documented shape through the
// production client against the sandbox: Entra's What If (the sandbox's
// own implementation) and the local evaluator must agree on each, and both
// must give the documented verdict.
func TestCAShapesAgreeWithWhatIf(t *testing.T) {
	srv, c := startCASandbox(t)
	srv.SetCAThrottle(false)
	ctx := context.Background()
	principals := map[string]CAPrincipal{}
	resolve := func(who, auth string) CAPrincipal {
		key := who + "/" + auth
		if p, ok := principals[key]; ok {
			return p
		}
		var p CAPrincipal
		var err error
		switch {
		case auth == AuthApp && who == "foreign":
			p, err = c.ResolveServicePrincipal(ctx, caForeignAppID)
		case auth == AuthApp:
			p, err = c.ResolveServicePrincipal(ctx, caToolAppID)
		case who == "guest":
			p, err = c.ResolveUser(ctx, caGuestID)
		default:
			p, err = c.ResolveUser(ctx, sandbox.DefaultToolAccount)
		}
		if err != nil {
			t.Fatal(err)
		}
		principals[key] = p
		return p
	}
	for _, cs := range caCases() {
		t.Run(cs.name, func(t *testing.T) {
			srv.SetState(sandbox.State{P1: true, Policies: []sandbox.Policy{cs.policy}})
			for _, auth := range caProfiles {
				sis := ToolSignIns(auth)
				ev, err := c.EvaluateConditionalAccess(ctx, resolve(cs.who, auth), sis)
				if err != nil {
					t.Fatal(err)
				}
				if ev.Source != CASourceWhatIf {
					t.Fatalf("%s: source %s (%s)", auth, ev.Source, ev.WhatIfError)
				}
				if cs.policy.State == "disabled" {
					if len(ev.Verdicts) != 0 {
						t.Errorf("%s: a disabled policy was evaluated: %+v", auth, ev.Verdicts)
					}
					continue
				}
				if len(ev.Verdicts) != len(sis) {
					t.Fatalf("%s: %d verdicts", auth, len(ev.Verdicts))
				}
				for _, v := range ev.Verdicts {
					if v.LocalApplies != v.Applies {
						t.Errorf("%s → %s: local %s, What If %s (%s)", auth, appName(v.Application), v.LocalApplies, v.Applies, v.WhatIfReasons)
					}
					if cs.managed && v.ManagedOnFrom.IsZero() {
						t.Errorf("%s: Microsoft-managed without the day it may be switched on", auth)
					}
					if v.WhatIfReasons == "" {
						t.Errorf("%s → %s: no What If answer", auth, appName(v.Application))
					}
					if bad := checkVerdict(cs, cs.wantFor(auth, v.Application), v); len(bad) > 0 {
						t.Errorf("%s → %s: %s (What If %s)\nreasons: %s", auth, appName(v.Application), strings.Join(bad, "; "), v.WhatIfReasons, strings.Join(v.Reasons, " | "))
					}
				}
			}
		})
	}
}

// TestWhatIfRequestShape checks what the client sends: the documented body
// for a user and for a service principal (whose servicePrincipalId is the
// appId), through the same middleware as every Graph call.
func TestWhatIfRequestShape(t *testing.T) {
	srv, c := startCASandbox(t)
	srv.SetCAThrottle(false)
	ctx := context.Background()
	who := caPrincipal("", AuthLegacy)
	if _, err := c.EvaluateConditionalAccess(ctx, who, ToolSignIns(AuthLegacy)[:1]); err != nil {
		t.Fatal(err)
	}
	sp := caPrincipal("", AuthApp)
	if _, err := c.EvaluateConditionalAccess(ctx, sp, ToolSignIns(AuthApp)[1:]); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, r := range srv.Requests() {
		if r.Method == http.MethodPost && strings.EqualFold(r.Path, "/identity/conditionalAccess/evaluate") {
			if !r.Authorized {
				t.Error("What If sent without a token")
			}
			bodies = append(bodies, string(r.Body))
		}
	}
	if len(bodies) != 2 {
		t.Fatalf("%d What If requests", len(bodies))
	}
	for _, want := range []string{`"@odata.type":"#microsoft.graph.userSignIn"`, `"userId":"` + caToolID + `"`,
		`"@odata.type":"#microsoft.graph.applicationContext"`, `"includeApplications":["` + AppExchangeOnline + `"]`,
		`"clientAppType":"other"`, `"appliedPoliciesOnly":false`} {
		if !strings.Contains(bodies[0], want) {
			t.Errorf("user body lacks %s: %s", want, bodies[0])
		}
	}
	for _, want := range []string{`"@odata.type":"#microsoft.graph.servicePrincipalSignIn"`, `"servicePrincipalId":"` + caToolAppID + `"`,
		`"includeApplications":["` + AppSharePointOnline + `"]`} {
		if !strings.Contains(bodies[1], want) {
			t.Errorf("service principal body lacks %s: %s", want, bodies[1])
		}
	}
	if strings.Contains(bodies[1], "clientAppType") {
		t.Errorf("service principal body names a client app type: %s", bodies[1])
	}
}

// TestWhatIfFallback: when What If is refused or unavailable the verdicts
// are the local ones, and say why; a failure to list policies is an error.
func TestWhatIfFallback(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusForbidden, "Authorization_RequestDenied"},
		{http.StatusNotFound, "UnknownError"},
		{http.StatusBadRequest, "BadRequest"},
		{http.StatusInternalServerError, "UnknownError"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv, c := startCASandbox(t)
			srv.SetCAThrottle(false)
			c.retry.sleep = func(context.Context, time.Duration) error { return nil }
			mfaAll := caCases()[4].policy
			srv.SetState(sandbox.State{P1: true, Policies: []sandbox.Policy{mfaAll}})
			srv.Fail(sandbox.FailRule{Method: http.MethodPost, PathPrefix: "/identity/conditionalAccess/evaluate", Status: tc.status, Code: tc.code})
			ev, err := c.EvaluateConditionalAccess(context.Background(), caPrincipal("", AuthDelegated), ToolSignIns(AuthDelegated))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Source != CASourceLocal || !strings.Contains(ev.WhatIfError, tc.code) {
				t.Errorf("source %s, error %q", ev.Source, ev.WhatIfError)
			}
			if len(ev.Verdicts) != 2 || !ev.Verdicts[0].Blocks || ev.Verdicts[0].WhatIfReasons != "" {
				t.Errorf("verdicts %+v", ev.Verdicts)
			}
		})
	}
	t.Run("policies unreadable", func(t *testing.T) {
		srv, c := startCASandbox(t)
		srv.SetCAThrottle(false)
		srv.Fail(sandbox.FailRule{Method: http.MethodGet, PathPrefix: "/identity/conditionalAccess/policies", Status: http.StatusForbidden, Code: "Authorization_RequestDenied"})
		if _, err := c.EvaluateConditionalAccess(context.Background(), caPrincipal("", AuthDelegated), ToolSignIns(AuthDelegated)); err == nil {
			t.Error("no error")
		}
	})
}

// TestWhatIfThrottled: the sandbox throttles Conditional Access at one
// request per second with no Retry-After, like Graph; the client's retry
// handler backs off and every What If still answers.
func TestWhatIfThrottled(t *testing.T) {
	srv, c := startCASandbox(t)
	var slept []time.Duration
	c.retry.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); time.Sleep(d); return nil }
	srv.SetState(sandbox.State{P1: true, Policies: []sandbox.Policy{caCases()[0].policy}})
	ev, err := c.EvaluateConditionalAccess(context.Background(), caPrincipal("", AuthLegacy), ToolSignIns(AuthLegacy))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source != CASourceWhatIf || len(ev.Verdicts) != 2 || !ev.Verdicts[0].Blocks {
		t.Errorf("%+v", ev)
	}
	// Whether a request was throttled depends on the machine's speed; the
	// answers above must come from What If either way.
	t.Logf("%d backoffs", len(slept))
}

// TestMembershipsRefused: without GroupMember.Read.All the account is
// still resolved; policies that hang on groups or roles may apply locally,
// and Entra's What If (which knows the memberships) decides.
func TestMembershipsRefused(t *testing.T) {
	srv, c := startCASandbox(t)
	srv.SetCAThrottle(false)
	ctx := context.Background()
	srv.Fail(sandbox.FailRule{Method: http.MethodGet, PathPrefix: "/users/" + caToolID + "/transitiveMemberOf", Status: http.StatusForbidden, Code: "Authorization_RequestDenied"})
	who, err := c.ResolveUser(ctx, sandbox.DefaultToolAccount)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who.MembershipError, "Authorization_RequestDenied") || len(who.GroupIDs) != 0 {
		t.Fatalf("principal %+v", who)
	}
	cases := caCases()
	byName := func(name string) sandbox.Policy {
		for _, cs := range cases {
			if cs.name == name {
				return cs.policy
			}
		}
		t.Fatalf("no case %q", name)
		return sandbox.Policy{}
	}
	nested := byName("MFA for a group the account is in through a nested group")
	excludedGroup := byName("MFA for all users, the account's group excluded")
	other := byName("MFA for another group")
	srv.SetState(sandbox.State{P1: true, Policies: []sandbox.Policy{nested, excludedGroup, other}})
	si := ToolSignIns(AuthDelegated)[:1]
	want := map[string]CAApplies{nested.ID: CAAppliesYes, excludedGroup.ID: CAAppliesNo, other.ID: CAAppliesNo}
	ev, err := c.EvaluateConditionalAccess(ctx, who, si)
	if err != nil || ev.Source != CASourceWhatIf || len(ev.Verdicts) != 3 {
		t.Fatalf("%+v %v", ev, err)
	}
	for _, v := range ev.Verdicts {
		if v.LocalApplies != CAAppliesMaybe || v.Applies != want[v.PolicyID] {
			t.Errorf("%s: local %s, merged %s (What If %s), want may_apply then %s", v.PolicyName, v.LocalApplies, v.Applies, v.WhatIfReasons, want[v.PolicyID])
		}
	}
	// Locally alone, they may apply, naming groups.
	for _, p := range []sandbox.Policy{nested, excludedGroup} {
		v := EvaluateCAPolicy(toCAPolicy(p), who, si[0])
		if v.Applies != CAAppliesMaybe || !slices.Contains(v.Conditions, "groups") {
			t.Errorf("%s: %s %v", p.DisplayName, v.Applies, v.Conditions)
		}
	}
}

// TestMergeWhatIf: Entra's answer decides Applies; a condition What If
// could not judge keeps the local may_apply, or the local not_applies when
// the local evaluation found a condition that rules the policy out.
func TestMergeWhatIf(t *testing.T) {
	p := toCAPolicy(caCases()[4].policy) // MFA for all users, enabled
	for _, tc := range []struct {
		local   CAApplies
		whatIf  whatIfAnswer
		want    CAApplies
		blocks  bool
		differs bool
	}{
		{CAAppliesYes, whatIfAnswer{applies: CAAppliesYes, reasons: "notSet"}, CAAppliesYes, true, false},
		{CAAppliesYes, whatIfAnswer{applies: CAAppliesNo, reasons: "users"}, CAAppliesNo, false, true},
		{CAAppliesNo, whatIfAnswer{applies: CAAppliesYes, reasons: "notSet"}, CAAppliesYes, true, true},
		{CAAppliesMaybe, whatIfAnswer{applies: CAAppliesMaybe, reasons: "location"}, CAAppliesMaybe, false, false},
		{CAAppliesYes, whatIfAnswer{applies: CAAppliesMaybe, reasons: "signInRisk"}, CAAppliesMaybe, false, true},
		{CAAppliesNo, whatIfAnswer{applies: CAAppliesMaybe, reasons: "location"}, CAAppliesNo, false, false},
		{CAAppliesMaybe, whatIfAnswer{applies: CAAppliesYes, reasons: "notSet"}, CAAppliesYes, true, true},
	} {
		v := EvaluateCAPolicy(p, caPrincipal("", AuthDelegated), ToolSignIns(AuthDelegated)[0])
		v.Applies, v.LocalApplies = tc.local, tc.local
		n := len(v.Reasons)
		mergeWhatIf(&v, p, tc.whatIf)
		differs := len(v.Reasons) > n && strings.Contains(v.Reasons[len(v.Reasons)-1], "What If decides")
		if v.Applies != tc.want || v.Blocks != tc.blocks || differs != tc.differs || v.LocalApplies != tc.local {
			t.Errorf("local %s, What If %+v: got %s blocks %v differs %v, want %s %v %v", tc.local, tc.whatIf, v.Applies, v.Blocks, differs, tc.want, tc.blocks, tc.differs)
		}
		if v.Applies == CAAppliesMaybe && tc.whatIf.reasons == "signInRisk" && !slices.Contains(v.Conditions, "signInRisk") {
			t.Errorf("What If's condition not named: %v", v.Conditions)
		}
	}
	if got := undecided("location,signInRisk"); !slices.Equal(got, []string{"locations", "signInRisk"}) {
		t.Errorf("undecided %v", got)
	}
	if got := undecided("users,location"); got != nil {
		t.Errorf("undecided %v", got)
	}
}
