package tenant

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// day is midnight UTC of a date.
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// vendorTenant is the tenant of the vendor's knowledge-base article: Security
// defaults on, SharePoint legacy auth off, invited-account match on, a
// report-only "block legacy authentication" policy.
func vendorTenant(now time.Time, auth string) gathered {
	g := gathered{
		now:    now,
		target: Target{Account: testAccount, Product: "backup", Version: "2.4", Auth: auth},
		sd:     securityDefaults{ID: "00000000-0000-0000-0000-000000000005", Name: "Security Defaults", Enabled: true},
		sp:     sharepointSettings{LegacyAuth: false, InvitedMatch: true},
		user:   &signInRead{sum: SignInSummary{Account: testAccount}},
	}
	g.profile = inferProfile(g.target, g.user, nil)
	g.principal = &CAPrincipal{Kind: CAPrincipalUser, ID: testUserID, UserPrincipalName: testAccount, UserType: "member"}
	g.signIns = caSignInsFor(g.profile.Auth)
	ev := CAEvaluation{Source: CASourceLocal}
	for _, si := range g.signIns {
		v := CAVerdict{PolicyID: "p-legacy", PolicyName: "Block legacy authentication", State: "enabledForReportingButNotEnforced",
			Application: si.Application, ClientAppType: si.ClientAppType, Applies: CAAppliesNo, ReportOnly: true}
		if si.Auth == AuthLegacy {
			v.Applies, v.Controls = CAAppliesYes, []string{"block"}
		}
		ev.Verdicts = append(ev.Verdicts, v)
	}
	g.ca = &ev
	return g
}

func kinds(items []Item) []Kind {
	var out []Kind
	for _, it := range items {
		out = append(out, it.Kind)
	}
	return out
}

func finding(t *testing.T, rep Report, check string) Finding {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no %s finding in %+v", check, rep.Findings)
	return Finding{}
}

// TestVendorTenantOnThreeDates diagnoses the same tenant, for the same legacy
// tool, on three dates and gets Microsoft's three answers (MC1184649):
//   - 2025-12-01: IDCRL still works when isLegacyAuthProtocolsEnabled is on,
//     so turning it on (and Security defaults off) helps; Exchange basic auth
//     is retired since 2022-10-01 whatever is set;
//   - 2026-03-01: IDCRL is blocked by default; only the PowerShell switch
//     AllowLegacyAuthProtocolsEnabledSetting (not in Graph) can bring it back
//     until 2026-04-30: no plan, the finding names the switch;
//   - 2026-12-01: IDCRL is retired: nothing can help, update the tool.
func TestVendorTenantOnThreeDates(t *testing.T) {
	tests := []struct {
		now       time.Time
		plan      []Kind
		spTitle   string
		spFix     string
		sd        Severity
		noFix     string
		idcrlFact string
	}{
		{day(2025, 12, 1), []Kind{KindSecurityDefaults, KindSharePointLegacyAuth}, "refuses legacy authentication", "isLegacyAuthProtocolsEnabled to true", SeverityBlocker, "", StateAvailable},
		{day(2026, 3, 1), nil, "blocks IDCRL (legacy) authentication by default since 2026-02-16", "Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting $true", SeverityWarning, "only PowerShell", StatePhasingOut},
		{day(2026, 12, 1), nil, "retired on 2026-05-01", "Update the backup tool to 2.3 or later and connect it with its own app registration", SeverityInfo, "retired", StateRetired},
	}
	for _, tt := range tests {
		t.Run(tt.now.Format(time.DateOnly), func(t *testing.T) {
			rep, _, _ := assess(vendorTenant(tt.now, ""))
			if !slices.Equal(kinds(rep.Plan), tt.plan) {
				t.Errorf("plan %v, want %v", kinds(rep.Plan), tt.plan)
			}
			if rep.Profile.Auth != AuthLegacy || !rep.Profile.Inferred || rep.Profile.InferredFrom == "" {
				t.Errorf("profile %+v", rep.Profile)
			}
			sp := finding(t, rep, CheckSharePointLegacyAuth)
			if sp.Severity != SeverityBlocker || !strings.Contains(sp.Title, tt.spTitle) || !strings.Contains(sp.Fix, tt.spFix) {
				t.Errorf("sharepoint finding %s %q fix %q", sp.Severity, sp.Title, sp.Fix)
			}
			if f := finding(t, rep, CheckSecurityDefaults); f.Severity != tt.sd {
				t.Errorf("security defaults %s %q, want %s", f.Severity, f.Title, tt.sd)
			}
			ex := finding(t, rep, CheckExchangeBasicAuth)
			if ex.Severity != SeverityBlocker || !strings.Contains(ex.Title, "2022-10-01") ||
				!slices.Contains(ex.Evidence, Evidence{Name: "source", Value: SourceExchangeBasicAuth}) {
				t.Errorf("exchange finding %+v", ex)
			}
			// The invited-account match is information, never a plan item.
			if f := finding(t, rep, CheckSharePointInvitedMatch); f.Severity != SeverityInfo || f.Fix != "" {
				t.Errorf("invited match %+v", f)
			}
			if tt.noFix == "" && rep.NoFix != "" || !strings.Contains(rep.NoFix, tt.noFix) {
				t.Errorf("no_fix %q, want %q", rep.NoFix, tt.noFix)
			}
			if !rep.Blocked() {
				t.Error("not blocked")
			}
			var idcrl string
			for _, f := range rep.Platform {
				if f.ID == FactSharePointIDCRL {
					idcrl = f.State
				}
			}
			if idcrl != tt.idcrlFact {
				t.Errorf("platform %s = %q, want %q", FactSharePointIDCRL, idcrl, tt.idcrlFact)
			}
			for _, it := range rep.Plan {
				if it.Propagation != 24*time.Hour {
					t.Errorf("%s propagation %s", it.Kind, it.Propagation)
				}
			}
		})
	}
}

func TestAssessProfiles(t *testing.T) {
	now := day(2026, 12, 1)
	si := func(auth, app string) CASignIn {
		for _, s := range caSignInsFor(auth) {
			if s.Application == app {
				return s
			}
		}
		return CASignIn{}
	}
	enforced := func(id string, s CASignIn, applies CAApplies, controls ...string) CAVerdict {
		return CAVerdict{PolicyID: id, PolicyName: "Policy " + id, State: "enabled", Application: s.Application,
			ClientAppType: s.ClientAppType, Applies: applies, Blocks: applies != CAAppliesNo, Controls: controls}
	}
	tests := []struct {
		name    string
		auth    string
		version string
		sdOn    bool
		verdict []CAVerdict
		failed  []SignInGroup // the tool's failed sign-ins
		plan    []Kind
		check   string // a finding to look at
		sev     Severity
		title   string
		noFix   string
	}{
		{name: "delegated, Security defaults", auth: AuthDelegated, sdOn: true,
			plan: []Kind{KindSecurityDefaults}, check: CheckSecurityDefaults, sev: SeverityBlocker, title: "50076"},
		{name: "delegated, Security defaults, latest sign-in succeeded", auth: AuthDelegated, sdOn: true,
			check: CheckSecurityDefaults, sev: SeverityWarning, title: "latest sign-in succeeded"},
		{name: "app, Security defaults", auth: AuthApp, sdOn: true,
			check: CheckSecurityDefaults, sev: SeverityOK, title: "do not affect an app"},
		{name: "legacy after the dates, Security defaults", auth: AuthLegacy, sdOn: true,
			check: CheckSecurityDefaults, sev: SeverityInfo, title: "cannot help", noFix: "retired"},
		{name: "delegated, MFA policy", auth: AuthDelegated,
			verdict: []CAVerdict{enforced("mfa", si(AuthDelegated, AppExchangeOnline), CAAppliesYes, "mfa")},
			plan:    []Kind{KindCAExcludeUser}, check: CheckConditionalAccess, sev: SeverityBlocker, title: "blocks " + testAccount},
		{name: "delegated, MFA policy and Security defaults: scoped fix only", auth: AuthDelegated, sdOn: true,
			verdict: []CAVerdict{enforced("mfa", si(AuthDelegated, AppExchangeOnline), CAAppliesYes, "mfa")},
			plan:    []Kind{KindCAExcludeUser}, check: CheckConditionalAccess, sev: SeverityBlocker},
		{name: "legacy, block policy after the dates", auth: AuthLegacy,
			verdict: []CAVerdict{enforced("blk", si(AuthLegacy, AppSharePointOnline), CAAppliesYes, "block")},
			check:   CheckConditionalAccess, sev: SeverityBlocker, title: "blocks", noFix: "retired"},
		{name: "app, workload-identity policy", auth: AuthApp,
			verdict: []CAVerdict{enforced("wid", si(AuthApp, AppSharePointOnline), CAAppliesYes, "block")},
			plan:    []Kind{KindCAExcludeServicePrincipal}, check: CheckConditionalAccess, sev: SeverityBlocker, title: "the tool's app"},
		{name: "delegated, location policy may apply", auth: AuthDelegated,
			verdict: []CAVerdict{func() CAVerdict {
				v := enforced("loc", si(AuthDelegated, AppExchangeOnline), CAAppliesMaybe, "mfa")
				v.Conditions = []string{"locations"}
				return v
			}()},
			check: CheckConditionalAccess, sev: SeverityWarning, title: "depending on locations"},
		{name: "delegated, location policy the log shows failing", auth: AuthDelegated,
			verdict: []CAVerdict{func() CAVerdict {
				v := enforced("loc", si(AuthDelegated, AppExchangeOnline), CAAppliesMaybe, "mfa")
				v.Conditions = []string{"locations"}
				return v
			}()},
			failed: []SignInGroup{{ErrorCode: 53003, Count: 2, ExplainedBy: []string{"loc"}, LastSeen: now.Add(-time.Hour)}},
			plan:   []Kind{KindCAExcludeUser}, check: CheckConditionalAccess, sev: SeverityBlocker},
		{name: "Microsoft-managed report-only", auth: AuthDelegated,
			verdict: []CAVerdict{func() CAVerdict {
				v := enforced("mm", si(AuthDelegated, AppExchangeOnline), CAAppliesYes, "mfa")
				v.State, v.Blocks, v.ReportOnly, v.MicrosoftManaged = "enabledForReportingButNotEnforced", false, true, true
				return v
			}()},
			check: CheckConditionalAccess, sev: SeverityWarning, title: "Microsoft will switch it on"},
		{name: "old version stops the fix", auth: AuthDelegated, version: "2.2", sdOn: true,
			check: CheckVersion, sev: SeverityBlocker, title: "update the tool first", noFix: "update the tool: update the backup tool to 2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := vendorTenant(now, tt.auth)
			g.sd.Enabled = tt.sdOn
			g.sp = sharepointSettings{LegacyAuth: true}
			if tt.version != "" {
				g.target.Version = tt.version
				g.profile.Version = tt.version
			}
			if tt.auth == AuthApp {
				g.target.AppID = "4a3c8d2e-1b7f-4e6a-9c5d-2f8e0b1a7c3d"
				g.profile.AppID = g.target.AppID
				g.app = &signInRead{sum: SignInSummary{Account: g.target.AppID}}
				g.principal = &CAPrincipal{Kind: CAPrincipalServicePrincipal, ID: "sp-1", AppID: g.target.AppID, DisplayName: "Backup app"}
			}
			if r := g.toolSignInsFor(); r != nil {
				r.sum.Failed = tt.failed
				r.sum.Total = 4
				r.sum.Succeeded = 4
				for _, f := range tt.failed {
					r.sum.Succeeded -= f.Count
				}
				if strings.Contains(tt.name, "latest sign-in succeeded") {
					r.sum.Failed = []SignInGroup{{ErrorCode: 50076, Count: 1, LastSeen: now.Add(-2 * time.Hour)}}
					r.lastOK = now.Add(-time.Hour)
				}
			}
			g.ca = &CAEvaluation{Source: CASourceWhatIf, Verdicts: tt.verdict}
			rep, _, _ := assess(g)
			if !slices.Equal(kinds(rep.Plan), tt.plan) {
				t.Errorf("plan %v, want %v", kinds(rep.Plan), tt.plan)
			}
			f := finding(t, rep, tt.check)
			if f.Severity != tt.sev || !strings.Contains(f.Title, tt.title) {
				t.Errorf("%s finding %s %q, want %s with %q", tt.check, f.Severity, f.Title, tt.sev, tt.title)
			}
			if tt.check == CheckConditionalAccess && f.PolicyID == "" {
				t.Errorf("no policy id: %+v", f)
			}
			if !strings.Contains(rep.NoFix, tt.noFix) || tt.noFix == "" && rep.NoFix != "" {
				t.Errorf("no_fix %q, want %q", rep.NoFix, tt.noFix)
			}
			for _, it := range rep.Plan {
				if it.Kind == KindCAExcludeServicePrincipal && (it.ServicePrincipalID != "sp-1" || it.PolicyID != "wid") {
					t.Errorf("item %+v", it)
				}
				if it.Kind == KindCAExcludeUser && it.UserID != testUserID {
					t.Errorf("item %+v", it)
				}
			}
		})
	}
}

// TestAppRegistration: an app tool whose service principal is missing, or
// whose sign-ins fail for its credentials, is told so; no plan item.
func TestAppRegistration(t *testing.T) {
	now := day(2026, 12, 1)
	base := func() gathered {
		g := vendorTenant(now, AuthApp)
		g.sd.Enabled = false
		g.target.AppID = "4a3c8d2e-1b7f-4e6a-9c5d-2f8e0b1a7c3d"
		g.profile.AppID = g.target.AppID
		g.principal = &CAPrincipal{Kind: CAPrincipalServicePrincipal, ID: "sp-1", AppID: g.target.AppID, DisplayName: "Backup app"}
		g.app = &signInRead{sum: SignInSummary{Account: g.target.AppID, Total: 2}}
		g.ca = &CAEvaluation{Source: CASourceWhatIf}
		return g
	}
	t.Run("healthy", func(t *testing.T) {
		rep, _, _ := assess(base())
		if f := finding(t, rep, CheckAppRegistration); f.Severity != SeverityOK || rep.Blocked() {
			t.Errorf("finding %+v, blockers %v", f, rep.Findings)
		}
	})
	t.Run("no service principal", func(t *testing.T) {
		g := base()
		g.principal, g.ca = nil, nil
		g.principalErr = fmt.Errorf("look up service principal: %w", ErrNotFound)
		rep, _, _ := assess(g)
		f := finding(t, rep, CheckAppRegistration)
		if f.Severity != SeverityBlocker || !strings.Contains(f.Title, "no service principal") || !strings.Contains(f.Fix, "consent") || len(rep.Plan) != 0 {
			t.Errorf("finding %+v, plan %+v", f, rep.Plan)
		}
	})
	t.Run("expired secret", func(t *testing.T) {
		g := base()
		g.app.sum.Failed = []SignInGroup{{ErrorCode: 7000222, Count: 2, LastSeen: now.Add(-time.Minute)}}
		g.app.sum.Succeeded = 0
		rep, _, _ := assess(g)
		f := finding(t, rep, CheckAppRegistration)
		if f.Severity != SeverityBlocker || !strings.Contains(f.Title, "expired") || len(rep.Plan) != 0 {
			t.Errorf("finding %+v, plan %+v", f, rep.Plan)
		}
		if got := rep.SignIns.Failed[0].ExplainedBy; !slices.Equal(got, []string{CheckAppRegistration}) {
			t.Errorf("explained by %v", got)
		}
	})
}

// toolSignInsFor is toolSignIns on a gathered (tests).
func (g *gathered) toolSignInsFor() *signInRead {
	if g.profile.Auth == AuthApp {
		return g.app
	}
	return g.user
}

func TestInferProfile(t *testing.T) {
	read := func(apps map[string]int) *signInRead {
		return &signInRead{sum: SignInSummary{Total: 1, clientApps: apps}}
	}
	tests := []struct {
		name      string
		target    Target
		user, app *signInRead
		want      string
		inferred  bool
		from      string
	}{
		{"configured", Target{Auth: AuthDelegated}, read(map[string]int{"Exchange ActiveSync": 3}), nil, AuthDelegated, false, ""},
		{"legacy clients", Target{Account: testAccount}, read(map[string]int{"Exchange ActiveSync": 3, "Other clients": 1, "Browser": 1}), nil, AuthLegacy, true, "Exchange ActiveSync × 3"},
		{"modern clients", Target{Account: testAccount}, read(map[string]int{"Mobile Apps and Desktop clients": 5}), nil, AuthDelegated, true, "Mobile Apps and Desktop clients × 5"},
		{"service principal sign-ins", Target{Account: testAccount, AppID: "a"}, read(map[string]int{"Other clients": 1}), &signInRead{sum: SignInSummary{Total: 2}}, AuthApp, true, "service-principal sign-ins"},
		{"nothing to go on", Target{}, nil, nil, AuthLegacy, true, "assumed legacy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := inferProfile(tt.target, tt.user, tt.app)
			if p.Auth != tt.want || p.Inferred != tt.inferred || !strings.Contains(p.InferredFrom, tt.from) {
				t.Errorf("profile %+v", p)
			}
		})
	}
}

func TestExplainedBy(t *testing.T) {
	g := vendorTenant(day(2025, 12, 1), AuthLegacy)
	a := &assessment{gathered: g, blockingPolicies: []blockingPolicy{{id: "p-enforced", controls: []string{"mfa"}}}}
	tests := []struct {
		g    SignInGroup
		want []string
	}{
		{SignInGroup{ErrorCode: 530035, ClientApps: []string{"Other clients"}}, []string{CheckSecurityDefaults}},
		{SignInGroup{ErrorCode: 53003, ClientApps: []string{"Other clients"}, ExplainedBy: []string{"p-log"}}, []string{"p-log"}},
		// A legacy client fails an MFA policy like a block one.
		{SignInGroup{ErrorCode: 53003, ClientApps: []string{"Other clients"}}, []string{"p-enforced"}},
		{SignInGroup{ErrorCode: 50076, ClientApps: []string{"Other clients"}}, []string{CheckSecurityDefaults, "p-enforced"}},
		{SignInGroup{ErrorCode: 50126, ClientApps: []string{"IMAP4"}}, []string{CheckExchangeBasicAuth}},
	}
	for _, tt := range tests {
		if got := a.explainedBy(tt.g); !slices.Equal(got, tt.want) {
			t.Errorf("%d: explained by %v, want %v", tt.g.ErrorCode, got, tt.want)
		}
	}
	a.now = day(2026, 12, 1)
	if got := a.explainedBy(SignInGroup{ErrorCode: 50126, ClientApps: []string{"Other clients"}}); !slices.Equal(got, []string{CheckSharePointLegacyAuth}) {
		t.Errorf("after retirement: %v", got)
	}
}

func TestPlanOnly(t *testing.T) {
	rep := Report{Plan: []Item{{Kind: KindSecurityDefaults}, {Kind: KindCAExcludeUser, PolicyID: "a"}, {Kind: KindCAExcludeUser, PolicyID: "b"}}}
	got, err := rep.PlanOnly([]Kind{KindCAExcludeUser})
	if err != nil || len(got) != 2 || got[0].PolicyID != "a" || got[1].PolicyID != "b" {
		t.Fatalf("PlanOnly = %+v, %v", got, err)
	}
	if got, err := rep.PlanOnly(nil); err != nil || len(got) != 3 {
		t.Fatalf("PlanOnly(nil) = %+v, %v", got, err)
	}
	_, err = rep.PlanOnly([]Kind{"sharepoint"})
	if !errors.Is(err, ErrInvalidItem) || !strings.Contains(err.Error(), "valid: security_defaults, sharepoint_legacy_auth, sharepoint_invited_match, ca_exclude_user, ca_exclude_service_principal") {
		t.Errorf("unknown kind: %v", err)
	}
	_, err = rep.PlanOnly([]Kind{KindSharePointLegacyAuth})
	if !errors.Is(err, ErrInvalidItem) || !strings.Contains(err.Error(), "it has: security_defaults, ca_exclude_user") {
		t.Errorf("kind not in plan: %v", err)
	}
}

func TestItemJSONPropagation(t *testing.T) {
	it := Item{Kind: KindCAExcludeServicePrincipal, PolicyID: "p", ServicePrincipalID: "s", AppID: "a",
		Before: ValueIncluded, After: ValueExcluded, Propagation: 24 * time.Hour}
	b, err := json.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"propagation":86400`) || !strings.Contains(string(b), `"service_principal_id":"s"`) {
		t.Errorf("json %s", b)
	}
	var back Item
	if err := json.Unmarshal(b, &back); err != nil || back != it {
		t.Errorf("round trip %+v, %v", back, err)
	}
	// Items stored before propagation existed still decode.
	if err := json.Unmarshal([]byte(`{"kind":"security_defaults","before":"true","after":"false"}`), &back); err != nil || back.Propagation != 0 {
		t.Errorf("old item %+v, %v", back, err)
	}
}

func TestPlatformFacts(t *testing.T) {
	states := func(now time.Time) map[string]string {
		m := map[string]string{}
		for _, f := range PlatformFacts(now) {
			if f.Source == "" || f.Effect == "" || f.Title == "" {
				t.Errorf("fact %+v lacks a field", f)
			}
			m[f.ID] = f.State
		}
		return m
	}
	for _, tt := range []struct {
		now           time.Time
		exchange, spo string
	}{
		{day(2022, 9, 30), StatePhasingOut, StateAvailable},
		{day(2022, 10, 1), StateRetired, StateAvailable},
		{day(2026, 2, 15), StateRetired, StateAvailable},
		{day(2026, 2, 16), StateRetired, StatePhasingOut},
		{day(2026, 4, 30).Add(23 * time.Hour), StateRetired, StatePhasingOut},
		{day(2026, 5, 1), StateRetired, StateRetired},
	} {
		m := states(tt.now)
		if m[FactExchangeBasicAuth] != tt.exchange || m[FactSharePointIDCRL] != tt.spo || m[FactSharePointInvited] != StateDeprecated {
			t.Errorf("%s: %v", tt.now, m)
		}
	}
	b, err := json.Marshal(PlatformFacts(day(2026, 3, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, f := range back {
		since, ok := f["since"]
		if !ok || len(f) != 6 || !strings.HasPrefix(f["source"].(string), "https://") {
			t.Errorf("fact json %v", f)
		}
		switch f["id"] {
		case FactSharePointIDCRL:
			if since != "2026-02-16T00:00:00Z" {
				t.Errorf("since %v", since)
			}
		case FactSecurityDefaults:
			if since != nil {
				t.Errorf("undated fact since %v", since)
			}
		}
	}
	for _, f := range PlatformFacts(day(2026, 3, 1)) {
		if f.ID == FactSharePointIDCRL && (!f.Since.Equal(SharePointIDCRLBlocked) || !strings.Contains(f.Effect, "AllowLegacyAuthProtocolsEnabledSetting")) {
			t.Errorf("fact %+v", f)
		}
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

// TestExplain checks the codes the tool really gets, as Microsoft lists them
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
func TestExplain(t *testing.T) {
	for code, want := range map[int]string{
		50076:   "MFA required",
		50079:   "cannot do MFA",
		530035:  "Security defaults",
		530032:  "security policy",
		7000215: "invalid client secret",
		700027:  "certificate",
		7000112: "disabled",
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
