package tenant_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

func without(all []string, drop ...string) []string {
	var out []string
	for _, r := range all {
		if !slices.Contains(drop, r) {
			out = append(out, r)
		}
	}
	return out
}

func TestTokenRolesAndMissingPermissions(t *testing.T) {
	_, c := startSandbox(t, sandbox.Options{Roles: without(sandbox.AllRoles, "Policy.ReadWrite.SecurityDefaults", "AuditLog.Read.All")})
	roles, err := c.TokenRoles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(roles, "Policy.ReadWrite.SecurityDefaults") || !slices.Contains(roles, "Policy.Read.All") {
		t.Fatalf("roles = %v", roles)
	}
	var missing []string
	for _, n := range tenant.MissingPermissions(roles) {
		missing = append(missing, n.Feature+"/"+string(n.Access)+": "+n.String())
	}
	// Policy.ReadWrite.ConditionalAccess also grants the Security defaults write.
	want := []string{"the tool's sign-ins/read: AuditLog.Read.All"}
	if !slices.Equal(missing, want) {
		t.Fatalf("missing = %v, want %v", missing, want)
	}
	// Every permission the sandbox grants by default is one c2bot asks for.
	if m := tenant.MissingPermissions(sandbox.AllRoles); len(m) != 0 {
		t.Fatalf("AllRoles lacks %v", m)
	}
	if got := tenant.RequiredPermissions(); !slices.Contains(got, "SharePointTenantSettings.ReadWrite.All") || !slices.Contains(got, "Policy.ReadWrite.ConditionalAccess") {
		t.Fatalf("required = %v", got)
	}
}

// TestDiagnoseWarnsOfAMissingWritePermission takes the SharePoint write
// permission away: the plan still proposes the change, marked as one that
// would fail, with a warning finding; and the write is indeed refused.
func TestDiagnoseWarnsOfAMissingWritePermission(t *testing.T) {
	// Today's default scenario (a delegated tool blocked by Security
	// defaults) proposes turning them off; without a write permission for
	// them the item is marked and a warning says so.
	const missing = "Policy.ReadWrite.SecurityDefaults (or Policy.ReadWrite.ConditionalAccess)"
	srv, sc, err := sandbox.StartScenario(sandbox.DefaultScenario, sandbox.Options{
		Roles: without(sandbox.AllRoles, "Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess")})
	if err != nil {
		t.Fatal(err)
	}
	c := clientFor(t, srv, nil)
	srv.SetCAThrottle(false)
	ctx := context.Background()
	target := tenant.Target{Account: sandbox.DefaultToolAccount, Auth: sc.ToolAuth}
	rep, err := c.Diagnose(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	var marked []tenant.Kind
	for _, it := range rep.Plan {
		if it.MissingPermission != "" {
			if it.MissingPermission != missing {
				t.Fatalf("%s: missing %q", it.Kind, it.MissingPermission)
			}
			marked = append(marked, it.Kind)
		}
	}
	if !slices.Equal(marked, []tenant.Kind{tenant.KindSecurityDefaults}) {
		t.Fatalf("marked = %v (plan %+v)", marked, rep.Plan)
	}
	warnings := 0
	for _, f := range rep.Findings {
		if f.Check == tenant.CheckPermissions {
			warnings++
			if f.Severity != tenant.SeverityWarning || !strings.Contains(f.Title, missing) {
				t.Fatalf("finding = %+v", f)
			}
		}
	}
	if warnings != 1 {
		t.Fatalf("%d permission warnings", warnings)
	}
	if err := c.Apply(ctx, rep.Plan[0]); !tenant.IsForbidden(err) {
		t.Fatalf("apply without the permission: %v, want 403", err)
	}
	// With every permission, nothing is marked.
	srv2, _, err := sandbox.StartScenario(sandbox.DefaultScenario, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c2 := clientFor(t, srv2, nil)
	rep2, err := c2.Diagnose(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Plan) == 0 {
		t.Fatal("the scenario proposes nothing")
	}
	for _, it := range rep2.Plan {
		if it.MissingPermission != "" {
			t.Fatalf("%s marked with every permission granted", it.Kind)
		}
	}
}

func TestSandboxSetRolesAppliesToNewTokens(t *testing.T) {
	srv, c := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	if roles, err := c.TokenRoles(ctx); err != nil || !slices.Equal(roles, sandbox.AllRoles) {
		t.Fatalf("default roles = %v, %v", roles, err)
	}
	srv.SetRoles([]string{"Policy.Read.All"})
	c2, err := tenant.New(tenant.Config{TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID,
		ClientSecret: sandbox.DefaultClientSecret, GraphURL: srv.URL(), AuthorityURL: srv.URL(), HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if roles, err := c2.TokenRoles(ctx); err != nil || !slices.Equal(roles, []string{"Policy.Read.All"}) {
		t.Fatalf("roles after SetRoles = %v, %v", roles, err)
	}
	// The first client's cached token keeps its roles, as in Entra ID.
	if roles, _ := c.TokenRoles(ctx); !slices.Equal(roles, sandbox.AllRoles) {
		t.Fatalf("cached token's roles = %v", roles)
	}
	if _, err := c2.SignIns(ctx, sandbox.DefaultToolAccount, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sum, _ := c2.SignIns(ctx, sandbox.DefaultToolAccount, time.Time{})
	if !strings.Contains(sum.Unavailable, "Authorization_RequestDenied") {
		t.Fatalf("sign-ins without AuditLog.Read.All: %+v", sum)
	}
}
