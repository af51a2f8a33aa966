package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const blockPolicyID = "9d0f9a1c-0000-4000-8000-000000000001"

func patches(f *fakeTenant) []recorded {
	var out []recorded
	for _, r := range f.graphRequests() {
		if r.Method == http.MethodPatch {
			out = append(out, r)
		}
	}
	return out
}

func TestApplyVerifyRestoreBooleans(t *testing.T) {
	tests := []struct {
		item     Item
		wantBody string
		state    func(*fakeTenant) bool
	}{
		{Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse}, `{"isEnabled":false}`,
			func(f *fakeTenant) bool { return f.securityOn }},
		{Item{Kind: KindSharePointLegacyAuth, Before: ValueFalse, After: ValueTrue}, `{"isLegacyAuthProtocolsEnabled":true}`,
			func(f *fakeTenant) bool { return f.legacyAuth }},
		{Item{Kind: KindSharePointInvitedMatch, Before: ValueTrue, After: ValueFalse}, `{"isRequireAcceptingUserToMatchInvitedUserEnabled":false}`,
			func(f *fakeTenant) bool { return f.invitedMatch }},
	}
	for _, tt := range tests {
		t.Run(string(tt.item.Kind), func(t *testing.T) {
			f := newFakeTenant(t)
			c, _ := f.newClient(t)
			ctx := context.Background()
			snap, err := c.Snapshot(ctx, Item{Kind: tt.item.Kind, Before: tt.item.After, After: tt.item.After})
			if err != nil || snap.Before != tt.item.Before {
				t.Fatalf("snapshot %+v, %v", snap, err)
			}
			if err := c.Verify(ctx, tt.item); !errors.Is(err, ErrNotApplied) {
				t.Fatalf("verify before apply: %v", err)
			}
			if err := c.Apply(ctx, tt.item); err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(ctx, tt.item); err != nil {
				t.Fatal(err)
			}
			p := patches(f)
			if len(p) != 1 || string(p[0].Body) != tt.wantBody || p[0].ContentEncoding != "" {
				t.Fatalf("PATCHes %+v, want one with %s", p, tt.wantBody)
			}
			f.mu.Lock()
			applied := tt.state(f)
			f.mu.Unlock()
			if applied != (tt.item.After == ValueTrue) {
				t.Fatal("fake state not changed")
			}

			res, err := c.Restore(ctx, tt.item)
			if err != nil || res.Outcome != Restored || res.Current != tt.item.Before {
				t.Fatalf("restore %+v, %v", res, err)
			}
			// A second restore finds the original value and writes nothing.
			res, err = c.Restore(ctx, tt.item)
			if err != nil || res.Outcome != AlreadyOriginal {
				t.Fatalf("second restore %+v, %v", res, err)
			}
			if n := len(patches(f)); n != 2 {
				t.Fatalf("%d PATCHes, want apply + one restore", n)
			}
		})
	}
}

func TestVerifyReportsValueSeen(t *testing.T) {
	f := newFakeTenant(t)
	// The PATCH is accepted but does not stick.
	f.fail(failRule{method: http.MethodPatch, prefix: "/policies", status: http.StatusNoContent})
	c, _ := f.newClient(t)
	it := Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse}
	if err := c.Apply(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	err := c.Verify(context.Background(), it)
	if !errors.Is(err, ErrNotApplied) || !containsAll(err.Error(), `reads "true"`, `want "false"`) {
		t.Fatalf("verify: %v", err)
	}
}

func TestCAExclusionApplyRestore(t *testing.T) {
	f := newFakeTenant(t)
	f.policies = append(f.policies, caPolicyJSON(blockPolicyID, "Block legacy authentication", "enabled",
		[]string{"exchangeActiveSync", "other"}, []string{"block"}, []string{"All"},
		[]string{"124c5b6a-ffa5-483a-9b88-04c3fce5574a"}, []string{"ba8e7ded-8b0f-4836-ba06-8ff1ecc5c8ba"}))
	c, _ := f.newClient(t)
	ctx := context.Background()
	it := Item{Kind: KindCAExcludeUser, PolicyID: blockPolicyID, PolicyName: "Block legacy authentication",
		UserID: testUserID, UserPrincipalName: testAccount, Before: ValueIncluded, After: ValueExcluded}

	if err := c.Apply(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, it); err != nil {
		t.Fatal(err)
	}
	p := patches(f)
	if len(p) != 1 || p[0].Path != "/identity/conditionalAccess/policies/"+blockPolicyID {
		t.Fatalf("PATCHes %+v", p)
	}
	var body map[string]map[string]map[string][]string
	if err := json.Unmarshal(p[0].Body, &body); err != nil {
		t.Fatalf("PATCH body %s: %v", p[0].Body, err)
	}
	if len(body) != 1 || len(body["conditions"]) != 1 {
		t.Fatalf("PATCH carries more than conditions.users: %s", p[0].Body)
	}
	users := body["conditions"]["users"]
	want := map[string][]string{
		"includeUsers":  {"All"},
		"excludeUsers":  {"124c5b6a-ffa5-483a-9b88-04c3fce5574a", testUserID},
		"includeGroups": {"ba8e7ded-8b0f-4836-ba06-8ff1ecc5c8ba"},
		"excludeGroups": {},
		"includeRoles":  {},
		"excludeRoles":  {"62e90394-69f5-4237-9190-012177145e10"},
	}
	for k, v := range want {
		got, ok := users[k]
		if !ok || !slices.Equal(got, v) {
			t.Errorf("users.%s = %v (present %v), want %v", k, got, ok, v)
		}
	}

	// Applying again is a no-op.
	if err := c.Apply(ctx, it); err != nil {
		t.Fatal(err)
	}
	if n := len(patches(f)); n != 1 {
		t.Fatalf("second apply wrote again (%d PATCHes)", n)
	}

	res, err := c.Restore(ctx, it)
	if err != nil || res.Outcome != Restored || res.Current != ValueIncluded {
		t.Fatalf("restore %+v, %v", res, err)
	}
	p = patches(f)
	var back map[string]map[string]map[string][]string
	_ = json.Unmarshal(p[len(p)-1].Body, &back)
	if got := back["conditions"]["users"]["excludeUsers"]; !slices.Equal(got, []string{"124c5b6a-ffa5-483a-9b88-04c3fce5574a"}) {
		t.Fatalf("restore excludeUsers %v", got)
	}
}

// TestCAServicePrincipalExclusionApplyRestore: the scoped fix for an app
// tool blocked by a workload-identity policy puts its service principal in
// conditions.clientApplications.excludeServicePrincipals and nothing else
// (https://learn.microsoft.com/entra/identity/conditional-access/workload-identity).
func TestCAServicePrincipalExclusionApplyRestore(t *testing.T) {
	const spID = "7d1c3b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	const other = "11111111-2222-4333-8444-555555555555"
	f := newFakeTenant(t)
	pol := caPolicyJSON(blockPolicyID, "Block workload identities outside named locations", "enabled",
		[]string{"all"}, []string{"block"}, []string{"None"}, []string{}, []string{})
	pol["conditions"].(map[string]any)["clientApplications"] = map[string]any{
		"includeServicePrincipals": []any{"ServicePrincipalsInMyTenant"},
		"excludeServicePrincipals": []any{other},
	}
	f.policies = append(f.policies, pol)
	c, _ := f.newClient(t)
	ctx := context.Background()
	it := Item{Kind: KindCAExcludeServicePrincipal, PolicyID: blockPolicyID, ServicePrincipalID: spID,
		AppID: "4a3c8d2e-1b7f-4e6a-9c5d-2f8e0b1a7c3d", Before: ValueIncluded, After: ValueExcluded}
	snap, err := c.Snapshot(ctx, Item{Kind: it.Kind, PolicyID: it.PolicyID, ServicePrincipalID: spID, Before: ValueExcluded, After: ValueExcluded})
	if err != nil || snap.Before != ValueIncluded {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}
	if err := c.Apply(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, it); err != nil {
		t.Fatal(err)
	}
	p := patches(f)
	if len(p) != 1 {
		t.Fatalf("PATCHes %+v", p)
	}
	var body map[string]map[string]map[string][]string
	if err := json.Unmarshal(p[0].Body, &body); err != nil {
		t.Fatalf("PATCH body %s: %v", p[0].Body, err)
	}
	if len(body) != 1 || len(body["conditions"]) != 1 {
		t.Fatalf("PATCH carries more than conditions.clientApplications: %s", p[0].Body)
	}
	ca := body["conditions"]["clientApplications"]
	if !slices.Equal(ca["includeServicePrincipals"], []string{"ServicePrincipalsInMyTenant"}) ||
		!slices.Equal(ca["excludeServicePrincipals"], []string{other, spID}) {
		t.Fatalf("clientApplications %v", ca)
	}
	res, err := c.Restore(ctx, it)
	if err != nil || res.Outcome != Restored || res.Current != ValueIncluded {
		t.Fatalf("restore %+v, %v", res, err)
	}
	p = patches(f)
	var back map[string]map[string]map[string][]string
	_ = json.Unmarshal(p[len(p)-1].Body, &back)
	if got := back["conditions"]["clientApplications"]["excludeServicePrincipals"]; !slices.Equal(got, []string{other}) {
		t.Fatalf("restore excludeServicePrincipals %v", got)
	}
	if res, err := c.Restore(ctx, it); err != nil || res.Outcome != AlreadyOriginal {
		t.Fatalf("second restore %+v, %v", res, err)
	}
	// A policy for users has no clientApplications condition to write.
	f.policies = append(f.policies, caPolicyJSON("users-only", "MFA", "enabled", []string{"all"}, []string{"mfa"}, []string{"All"}, []string{}, []string{}))
	if err := c.Apply(ctx, Item{Kind: it.Kind, PolicyID: "users-only", ServicePrincipalID: spID, Before: ValueIncluded, After: ValueExcluded}); err == nil ||
		!strings.Contains(err.Error(), "not a workload-identity policy") {
		t.Fatalf("apply to a user policy: %v", err)
	}
}

func TestCAExclusionRestoreSendsEmptyList(t *testing.T) {
	f := newFakeTenant(t)
	f.policies = append(f.policies, caPolicyJSON(blockPolicyID, "Block", "enabled",
		[]string{"other"}, []string{"block"}, []string{"All"}, []string{testUserID}, []string{}))
	c, _ := f.newClient(t)
	it := Item{Kind: KindCAExcludeUser, PolicyID: blockPolicyID, UserID: testUserID, Before: ValueIncluded, After: ValueExcluded}
	res, err := c.Restore(context.Background(), it)
	if err != nil || res.Outcome != Restored {
		t.Fatalf("restore %+v, %v", res, err)
	}
	p := patches(f)
	var body map[string]map[string]map[string]*[]string
	_ = json.Unmarshal(p[0].Body, &body)
	if ex := body["conditions"]["users"]["excludeUsers"]; ex == nil || len(*ex) != 0 {
		t.Fatalf("excludeUsers not sent as []: %s", p[0].Body)
	}
}

func TestRestoreDrift(t *testing.T) {
	ctx := context.Background()
	t.Run("changed back outside c2bot", func(t *testing.T) {
		f := newFakeTenant(t) // security defaults on = Before
		c, _ := f.newClient(t)
		res, err := c.Restore(ctx, Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
		if err != nil || res.Outcome != AlreadyOriginal || res.Current != ValueTrue {
			t.Fatalf("restore %+v, %v", res, err)
		}
		if n := len(patches(f)); n != 0 {
			t.Fatalf("%d PATCHes", n)
		}
	})
	t.Run("conditional access policy deleted", func(t *testing.T) {
		f := newFakeTenant(t)
		c, _ := f.newClient(t)
		res, err := c.Restore(ctx, Item{Kind: KindCAExcludeUser, PolicyID: "gone", UserID: testUserID, Before: ValueIncluded, After: ValueExcluded})
		if err != nil || res.Outcome != Drifted || res.Current != policyDeleted {
			t.Fatalf("restore %+v, %v", res, err)
		}
		if n := len(patches(f)); n != 0 {
			t.Fatalf("%d PATCHes", n)
		}
	})
	t.Run("user removed from exclusions by someone else", func(t *testing.T) {
		f := newFakeTenant(t)
		f.policies = append(f.policies, caPolicyJSON(blockPolicyID, "Block", "enabled",
			[]string{"other"}, []string{"block"}, []string{"All"}, []string{}, []string{}))
		c, _ := f.newClient(t)
		res, err := c.Restore(ctx, Item{Kind: KindCAExcludeUser, PolicyID: blockPolicyID, UserID: testUserID, Before: ValueIncluded, After: ValueExcluded})
		if err != nil || res.Outcome != AlreadyOriginal {
			t.Fatalf("restore %+v, %v", res, err)
		}
	})
	t.Run("restore write fails", func(t *testing.T) {
		f := newFakeTenant(t)
		f.securityOn = false
		f.fail(failRule{method: http.MethodPatch, prefix: "/policies", status: 403, body: readFixture(t, "error_403_authorization_requestdenied.json")})
		c, _ := f.newClient(t)
		_, err := c.Restore(ctx, Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
		if !IsForbidden(err) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestInvalidItems(t *testing.T) {
	c, _ := newFakeTenant(t).newClient(t)
	for _, it := range []Item{
		{Kind: "nonsense", Before: ValueTrue, After: ValueFalse},
		{Kind: KindSecurityDefaults, Before: "yes", After: ValueFalse},
		{Kind: KindCAExcludeUser, Before: ValueIncluded, After: ValueExcluded},
		{Kind: KindCAExcludeUser, PolicyID: "p", UserID: "u", Before: ValueTrue, After: ValueFalse},
		{Kind: KindCAExcludeServicePrincipal, PolicyID: "p", Before: ValueIncluded, After: ValueExcluded},
		{Kind: KindCAExcludeServicePrincipal, PolicyID: "p", ServicePrincipalID: "x/../y", Before: ValueIncluded, After: ValueExcluded},
	} {
		if err := c.Apply(context.Background(), it); !errors.Is(err, ErrInvalidItem) {
			t.Errorf("Apply(%+v) = %v", it, err)
		}
		if _, err := c.Restore(context.Background(), it); !errors.Is(err, ErrInvalidItem) {
			t.Errorf("Restore(%+v) = %v", it, err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
