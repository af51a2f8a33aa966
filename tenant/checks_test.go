package tenant

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEvalConditionalAccess(t *testing.T) {
	const uid = testUserID
	base := caPolicy{
		ID: "p1", Name: "Block legacy", State: "enabled",
		ClientAppTypes: []string{"exchangeActiveSync", "other"}, BuiltInControls: []string{"block"},
		IncludeApplications: []string{"All"}, IncludeUsers: []string{"All"},
	}
	with := func(mod func(*caPolicy)) caPolicy {
		p := base
		mod(&p)
		return p
	}
	tests := []struct {
		name     string
		policy   caPolicy
		userID   string
		want     Severity
		wantItem bool
		title    string
	}{
		{"enabled, all users", base, uid, SeverityBlocker, true, "blocks legacy authentication for " + testAccount},
		{"enabled, user by id", with(func(p *caPolicy) { p.IncludeUsers = []string{strings.ToUpper(uid)} }), uid, SeverityBlocker, true, ""},
		{"enabled, user excluded", with(func(p *caPolicy) { p.ExcludeUsers = []string{uid} }), uid, SeverityOK, false, "excludes"},
		{"report-only", with(func(p *caPolicy) { p.State = "enabledForReportingButNotEnforced" }), uid, SeverityInfo, false, "report-only: would block"},
		{"disabled", with(func(p *caPolicy) { p.State = "disabled" }), uid, SeverityOK, false, "No Conditional Access policy"},
		{"group include", with(func(p *caPolicy) { p.IncludeUsers = nil; p.IncludeGroups = []string{"g1"} }), uid, SeverityWarning, false, "through a group"},
		{"role include, report-only", with(func(p *caPolicy) {
			p.IncludeUsers, p.IncludeRoles, p.State = nil, []string{"r1"}, "enabledForReportingButNotEnforced"
		}), uid, SeverityInfo, false, "not resolved"},
		{"other user only", with(func(p *caPolicy) { p.IncludeUsers = []string{"someone-else"} }), uid, SeverityOK, false, "No Conditional Access policy"},
		{"includes None", with(func(p *caPolicy) { p.IncludeUsers = []string{"None"} }), uid, SeverityOK, false, "No Conditional Access policy"},
		{"mfa, not block", with(func(p *caPolicy) { p.BuiltInControls = []string{"mfa"} }), uid, SeverityOK, false, "No Conditional Access policy"},
		{"browser only", with(func(p *caPolicy) { p.ClientAppTypes = []string{"browser", "mobileAppsAndDesktopClients"} }), uid, SeverityOK, false, "No Conditional Access policy"},
		{"all client apps", with(func(p *caPolicy) { p.ClientAppTypes = []string{"all"} }), uid, SeverityBlocker, true, ""},
		{"only other", with(func(p *caPolicy) { p.ClientAppTypes = []string{"other"} }), uid, SeverityBlocker, true, ""},
		{"no applications", with(func(p *caPolicy) { p.IncludeApplications = []string{"None"} }), uid, SeverityOK, false, "No Conditional Access policy"},
		{"no account, all users", base, "", SeverityBlocker, false, "for all users"},
		{"no account, some users", with(func(p *caPolicy) { p.IncludeUsers = []string{"x"} }), "", SeverityWarning, false, "not checked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r checkResult
			account := ""
			if tt.userID != "" {
				account = testAccount
			}
			evalCA(&r, []caPolicy{tt.policy}, account, tt.userID)
			if len(r.findings) != 1 {
				t.Fatalf("findings %+v", r.findings)
			}
			f := r.findings[0]
			if f.Severity != tt.want || f.Check != CheckConditionalAccess || !strings.Contains(f.Title, tt.title) {
				t.Errorf("finding %s %q, want %s containing %q", f.Severity, f.Title, tt.want, tt.title)
			}
			if got := len(r.plan) == 1; got != tt.wantItem {
				t.Fatalf("plan %+v", r.plan)
			}
			if tt.wantItem {
				want := Item{Kind: KindCAExcludeUser, PolicyID: "p1", PolicyName: "Block legacy", UserID: uid,
					UserPrincipalName: testAccount, Before: ValueIncluded, After: ValueExcluded}
				if r.plan[0] != want {
					t.Errorf("item %+v", r.plan[0])
				}
			}
		})
	}
}

func TestEvalConditionalAccessFixture(t *testing.T) {
	// The documentation's list: a disabled block policy and an mfa one.
	f := newFakeTenant(t)
	c, _ := f.newClient(t)
	pols, err := c.listCAPolicies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 2 || pols[0].State != "disabled" || !slices.Equal(pols[0].BuiltInControls, []string{"block"}) ||
		!slices.Equal(pols[0].ClientAppTypes, []string{"all"}) || !slices.Equal(pols[0].IncludeUsers, []string{"None"}) {
		t.Fatalf("policies %+v", pols)
	}
	var r checkResult
	evalCA(&r, pols, testAccount, testUserID)
	if len(r.findings) != 1 || r.findings[0].Severity != SeverityOK || len(r.plan) != 0 {
		t.Fatalf("findings %+v plan %+v", r.findings, r.plan)
	}
}

func TestSignInFinding(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	failed := []SignInGroup{{ErrorCode: 50076, Count: 3, Explanation: Explain(50076), LastSeen: t0, ClientApps: []string{"IMAP4"}}}
	tests := []struct {
		name   string
		s      SignInSummary
		lastOK time.Time
		want   Severity
		title  string
	}{
		{"unavailable", SignInSummary{Unavailable: "cannot read sign-ins: x"}, time.Time{}, SeverityWarning, "cannot read sign-ins"},
		{"none", SignInSummary{Account: testAccount}, time.Time{}, SeverityInfo, "no sign-ins"},
		{"all ok", SignInSummary{Account: testAccount, Total: 2, Succeeded: 2}, t0, SeverityOK, "all succeeded"},
		{"failing", SignInSummary{Account: testAccount, Total: 4, Succeeded: 1, Failed: failed}, t0.Add(-time.Hour), SeverityBlocker, "3 of 4 sign-ins"},
		{"recovered", SignInSummary{Account: testAccount, Total: 4, Succeeded: 1, Failed: failed}, t0.Add(time.Hour), SeverityWarning, "latest succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := signInFinding(tt.s, tt.lastOK)
			if f.Severity != tt.want || !strings.Contains(f.Title, tt.title) || f.Check != CheckSignIns {
				t.Errorf("finding %s %q", f.Severity, f.Title)
			}
			if tt.want == SeverityBlocker && (len(f.Evidence) != 1 || f.Evidence[0].Name != "error 50076 × 3" || !strings.Contains(f.Evidence[0].Value, "MFA")) {
				t.Errorf("evidence %+v", f.Evidence)
			}
		})
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		product, version string
		want             Severity // 0: no finding
	}{
		{"", "", 0},
		{"backup", "2.2", SeverityBlocker},
		{"backup", "2.3", SeverityOK},
		{"Backup", "v2.10.1", SeverityOK},
		{"backup", "1.99", SeverityBlocker},
		{"migration", "3.1.7", SeverityBlocker},
		{"migration", "3.2", SeverityOK},
		{"migration", "4.0", SeverityOK},
		{"migration", "three", SeverityWarning},
		{"migration", "3", SeverityWarning},
		{"archive", "1.0", SeverityWarning},
		{"backup", "", SeverityWarning},
	}
	for _, tt := range tests {
		r := checkVersion(tt.product, tt.version)
		if tt.want == 0 {
			if len(r.findings) != 0 {
				t.Errorf("%s %s: %+v", tt.product, tt.version, r.findings)
			}
			continue
		}
		if len(r.findings) != 1 || r.findings[0].Severity != tt.want {
			t.Errorf("%s %s: %+v, want %s", tt.product, tt.version, r.findings, tt.want)
			continue
		}
		if tt.want == SeverityBlocker && !strings.Contains(r.findings[0].Title, "update the tool first; a policy change will not fix Exchange Online for this version") {
			t.Errorf("title %q", r.findings[0].Title)
		}
	}
}

func TestExplain(t *testing.T) {
	for code, want := range map[int]string{
		50076:   "MFA required",
		50079:   "legacy protocols cannot do MFA",
		53003:   "Conditional Access",
		50126:   "invalid user name or password",
		50053:   "locked",
		50057:   "disabled",
		50055:   "expired",
		50034:   "not found",
		65001:   "consent",
		7000218: "secret or assertion",
		700016:  "application not found",
		90072:   "see https://login.microsoftonline.com/error?code=90072",
	} {
		if got := Explain(code); !strings.Contains(got, want) {
			t.Errorf("Explain(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestSignInFilter(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -2*3600))
	tests := map[string]string{
		"svc@contoso.com":          "createdDateTime ge 2026-01-02T05:04:05Z and userPrincipalName eq 'svc@contoso.com'",
		"o'brien@contoso.com":      "createdDateTime ge 2026-01-02T05:04:05Z and userPrincipalName eq 'o''brien@contoso.com'",
		"x' or 1 eq 1 or 'a@b.com": "createdDateTime ge 2026-01-02T05:04:05Z and userPrincipalName eq 'x'' or 1 eq 1 or ''a@b.com'",
	}
	for upn, want := range tests {
		if got := signInFilter(upn, since); got != want {
			t.Errorf("signInFilter(%q) = %q, want %q", upn, got, want)
		}
	}
}

func TestGraphErrorText(t *testing.T) {
	e := &GraphError{Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation.", RequestID: "abc"}
	want := "Authorization_RequestDenied (HTTP 403): Insufficient privileges to complete the operation. [request-id abc]"
	if e.Error() != want {
		t.Errorf("Error() = %q", e.Error())
	}
	if got := (&GraphError{Status: 503}).Error(); got != "Service Unavailable (HTTP 503)" {
		t.Errorf("Error() = %q", got)
	}
}
