package sandbox

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

type signInPage struct {
	Value    []map[string]any
	NextLink string
}

func listSignInsPage(t *testing.T, s *Server, tok, rawURL string) signInPage {
	t.Helper()
	r := call(t, s, "GET", rawURL, tok, nil)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", rawURL, r.status, r.body)
	}
	m := r.json(t)
	var p signInPage
	for _, v := range m["value"].([]any) {
		p.Value = append(p.Value, v.(map[string]any))
	}
	p.NextLink, _ = m["@odata.nextLink"].(string)
	return p
}

func signInsURL(filter string, extra ...string) string {
	q := "/auditLogs/signIns?$filter=" + url.QueryEscape(filter)
	for _, e := range extra {
		q += "&" + e
	}
	return q
}

func toolFilter(s *Server, since time.Time) string {
	return "createdDateTime ge " + since.Format(time.RFC3339) +
		" and userPrincipalName eq '" + strings.ReplaceAll(s.opts.ToolAccount, "'", "''") + "'"
}

func errorCode(e map[string]any) float64 { return e["status"].(map[string]any)["errorCode"].(float64) }

func createdAt(t *testing.T, e map[string]any) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, e["createdDateTime"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// mfaForAll is Microsoft's "Require multifactor authentication for all
// users" template
// (https://learn.microsoft.com/entra/identity/conditional-access/policy-all-users-mfa-strength).
func mfaForAll(state string) Policy {
	p := allUsersMFA()
	p.State = state
	return p
}

// TestSignInsFollowStateAfterPropagation: a delegated tool (modern auth with
// a password) is asked for MFA by Security defaults (50076), then by an
// enforced MFA policy once it propagates, and signs in once it is excluded
// and Security defaults are off.
func TestSignInsFollowStateAfterPropagation(t *testing.T) {
	clock := newClock(t0)
	initial := DefaultState()
	initial.Policies = []Policy{mfaForAll("enabledForReportingButNotEnforced")}
	s := startNoThrottle(t, Options{Now: clock.Now, Propagation: time.Hour, ToolAuth: ToolDelegated, Initial: &initial})
	tok := token(t, s)

	// Security defaults require MFA; the report-only policy shows but does not block.
	p := listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(-2*time.Hour))))
	if len(p.Value) != 8 {
		t.Fatalf("%d sign-ins in two hours, want 8", len(p.Value))
	}
	fx := decode(t, fixture(t, "signins_list_200.json")).(map[string]any)["value"].([]any)[0]
	resources := map[string]int{}
	for _, e := range p.Value {
		sameKeys(t, "sign-in", e, fx)
		st := e["status"].(map[string]any)
		if errorCode(e) != ErrorCodeMFARequired || !strings.Contains(st["failureReason"].(string), "you must use multi-factor authentication to access '") ||
			e["conditionalAccessStatus"] != "notApplied" || e["appDisplayName"] != ToolAppDisplayName || e["clientAppUsed"] != "Mobile Apps and Desktop clients" {
			t.Fatalf("blocked sign-in %v", e)
		}
		ap := e["appliedConditionalAccessPolicies"].([]any)
		if len(ap) != 1 || ap[0].(map[string]any)["result"] != "reportOnlyFailure" {
			t.Errorf("applied policies %v", ap)
		}
		resources[e["resourceDisplayName"].(string)]++
	}
	if resources["Office 365 Exchange Online"] != 4 || resources["Office 365 SharePoint Online"] != 4 {
		t.Errorf("resources should alternate: %v", resources)
	}
	if !strings.HasSuffix(p.Value[0]["createdDateTime"].(string), "Z") || len(p.Value[0]["createdDateTime"].(string)) != len("2020-03-13T19:15:41.6195833Z") {
		t.Errorf("createdDateTime format %q", p.Value[0]["createdDateTime"])
	}

	// Enforce the policy (Security defaults off, as Entra requires): it
	// bites one hour later.
	st := s.State()
	st.SecurityDefaults = false
	st.Policies[0].State = "enabled"
	s.SetState(st)
	clock.Add(3 * time.Hour)
	tok = token(t, s) // the first token expired on the sandbox clock
	p = listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(-2*time.Hour))))
	if len(p.Value) != 20 {
		t.Fatalf("%d sign-ins in five hours, want 20", len(p.Value))
	}
	for _, e := range p.Value {
		at := createdAt(t, e)
		ap := e["appliedConditionalAccessPolicies"].([]any)[0].(map[string]any)
		switch {
		case at.Before(t0.Add(time.Hour)):
			if errorCode(e) != ErrorCodeMFARequired || ap["result"] != "reportOnlyFailure" {
				t.Errorf("%s: before propagation %v", at, e)
			}
		default:
			if errorCode(e) != ErrorCodeMFARequired || e["conditionalAccessStatus"] != "failure" || ap["result"] != "failure" ||
				ap["id"] != DefaultPolicyID || ap["enforcedGrantControls"].([]any)[0] != "Mfa" {
				t.Errorf("%s: after propagation %v", at, e)
			}
		}
	}

	// The fix: the tool is excluded through Graph.
	if r := call(t, s, "PATCH", "/identity/conditionalAccess/policies/"+DefaultPolicyID, tok,
		[]byte(`{"conditions":{"users":{"excludeUsers":["`+DefaultToolAccountID+`"]}}}`)); r.status != 204 {
		t.Fatalf("PATCH exclude: %d", r.status)
	}
	clock.Add(3 * time.Hour)
	tok = token(t, s)
	p = listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(3*time.Hour))))
	if len(p.Value) != 12 {
		t.Fatalf("%d sign-ins, want 12", len(p.Value))
	}
	for _, e := range p.Value {
		at := createdAt(t, e)
		want := 0.0
		if at.Before(t0.Add(4 * time.Hour)) {
			want = ErrorCodeMFARequired
		}
		if errorCode(e) != want {
			t.Errorf("%s: errorCode %v, want %v", at, errorCode(e), want)
		}
		if want == 0 {
			st := e["status"].(map[string]any)
			ap := e["appliedConditionalAccessPolicies"].([]any)[0].(map[string]any)
			if st["failureReason"] != nil || e["conditionalAccessStatus"] != "notApplied" || ap["result"] != "notApplied" {
				t.Errorf("%s: success entry %v", at, e)
			}
		}
	}

	// Ids are stable and entries newest first.
	again := listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(3*time.Hour))))
	for i := range p.Value {
		if p.Value[i]["id"] != again.Value[i]["id"] {
			t.Fatal("sign-in ids change between requests")
		}
		if i > 0 && !createdAt(t, p.Value[i]).Before(createdAt(t, p.Value[i-1])) {
			t.Fatal("not newest first")
		}
	}
}

// toolCodes is the tool's sign-ins in the hour before now: error code →
// count, per clientAppUsed.
func toolCodes(t *testing.T, s *Server, now time.Time) map[string]map[float64]int {
	t.Helper()
	p := listSignInsPage(t, s, token(t, s), signInsURL(toolFilter(s, now.Add(-time.Hour))))
	out := map[string]map[float64]int{}
	for _, e := range p.Value {
		c := e["clientAppUsed"].(string)
		if out[c] == nil {
			out[c] = map[float64]int{}
		}
		out[c][errorCode(e)]++
	}
	return out
}

// TestLegacySignInsOnMicrosoftsDates: the legacy tool's sign-ins follow
// Microsoft's calendar, whatever the tenant sets. Exchange basic auth is off
// from 2022-10-01; SharePoint IDCRL needs isLegacyAuthProtocolsEnabled
// before 2026-02-16, the PowerShell-only AllowLegacyAuthProtocolsEnabledSetting
// as well until 2026-04-30, and works on no setting from 2026-05-01
// (MC1184649). Attempts the service refuses before authentication leave no
// Entra sign-in; Security defaults block the rest with 530035.
func TestLegacySignInsOnMicrosoftsDates(t *testing.T) {
	open := DefaultState()
	open.SecurityDefaults, open.LegacyAuth, open.InvitedMatch = false, true, false
	open.Policies = nil
	tests := []struct {
		name string
		now  time.Time
		mod  func(*State)
		want map[string]map[float64]int
	}{
		{"2022-09: both paths", time.Date(2022, 9, 30, 12, 0, 0, 0, time.UTC), nil,
			map[string]map[float64]int{"Exchange ActiveSync": {0: 2}, "Other clients": {0: 2}}},
		{"2022-09: Security defaults", time.Date(2022, 9, 30, 12, 0, 0, 0, time.UTC), func(st *State) { st.SecurityDefaults = true },
			map[string]map[float64]int{"Exchange ActiveSync": {530035: 2}, "Other clients": {530035: 2}}},
		{"2025-12: Exchange gone, IDCRL works", time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC), nil,
			map[string]map[float64]int{"Other clients": {0: 2}}},
		{"2025-12: SharePoint refuses legacy auth", time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC), func(st *State) { st.LegacyAuth = false },
			map[string]map[float64]int{}},
		{"2025-12: Security defaults", time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC), func(st *State) { st.SecurityDefaults = true },
			map[string]map[float64]int{"Other clients": {530035: 2}}},
		{"2026-03: Graph's setting alone", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), nil,
			map[string]map[float64]int{}},
		{"2026-03: with the PowerShell switch", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), func(st *State) { st.AllowLegacyAuthProtocolsEnabledSetting = true },
			map[string]map[float64]int{"Other clients": {0: 2}}},
		{"2026-12: nothing brings it back", time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), func(st *State) { st.AllowLegacyAuthProtocolsEnabledSetting = true },
			map[string]map[float64]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := copyState(open)
			if tt.mod != nil {
				tt.mod(&st)
			}
			s := startNoThrottle(t, Options{Now: newClock(tt.now).Now, Initial: &st})
			got := toolCodes(t, s, tt.now)
			if len(got) != len(tt.want) {
				t.Fatalf("sign-ins %v, want %v", got, tt.want)
			}
			for c, codes := range tt.want {
				for code, n := range codes {
					if got[c][code] != n {
						t.Errorf("%s %v: %d, want %d (all %v)", c, code, got[c][code], n, got)
					}
				}
			}
		})
	}
}

func TestSignInsEnabledPolicyBlocksWithoutSecurityDefaults(t *testing.T) {
	// On 2025-12-01 only the IDCRL path is left to the legacy tool: a policy
	// for other clients blocks it, one requiring MFA too (a legacy client
	// cannot satisfy any grant control), one for EAS only has nothing left
	// to block.
	now := time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		clients []string
		block   bool
		want    float64
	}{
		{"block other clients", []string{"other"}, true, ErrorCodeBlockedByCA},
		{"mfa for other clients", []string{"other"}, false, ErrorCodeBlockedByCA},
		{"block EAS only", []string{"exchangeActiveSync"}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			initial := DefaultState()
			initial.SecurityDefaults, initial.LegacyAuth = false, true
			initial.Policies[0].State = "enabled"
			initial.Policies[0].ClientAppTypes = tt.clients
			initial.Policies[0].Block = tt.block
			s := startNoThrottle(t, Options{Now: newClock(now).Now, Initial: &initial})
			got := toolCodes(t, s, now)
			if len(got) != 1 || got["Other clients"][tt.want] != 2 {
				t.Errorf("sign-ins %v, want 2 × %v over other clients", got, tt.want)
			}
		})
	}
}

// TestServicePrincipalSignIns: an app tool's sign-ins are service-principal
// sign-ins, on Graph beta only (filtered on signInEventTypes); a
// workload-identity policy blocks them (53003); Security defaults do not.
func TestServicePrincipalSignIns(t *testing.T) {
	clock := newClock(t0)
	initial := DefaultState() // Security defaults on
	initial.Policies = []Policy{{ID: DefaultPolicyID, DisplayName: "Block workload identities", State: "enabled",
		IncludeUsers: []string{"None"}, Block: true,
		PolicyMore: PolicyMore{IncludeServicePrincipals: []string{"ServicePrincipalsInMyTenant"}}}}
	s := startNoThrottle(t, Options{Now: clock.Now, ToolAuth: ToolApp, Initial: &initial})
	tok := token(t, s)
	filter := "createdDateTime ge " + t0.Add(-time.Hour).Format(time.RFC3339) + " and appId eq '" + DefaultToolAppID + "'"
	beta := func(f string) string { return s.URL() + "/beta" + signInsURL(f) }
	spFilter := filter + " and signInEventTypes/any(t: t eq 'servicePrincipal')"

	// Without a service principal for its app, the tool gets 700016.
	p := listSignInsPage(t, s, tok, beta(spFilter))
	if len(p.Value) != 4 || errorCode(p.Value[0]) != ErrorCodeAppNotFound {
		t.Fatalf("sign-ins without a service principal: %v", p.Value)
	}
	if err := s.AddServicePrincipal(ServicePrincipal{ID: "7d1c3b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", AppID: DefaultToolAppID, DisplayName: "Backup app"}); err != nil {
		t.Fatal(err)
	}
	p = listSignInsPage(t, s, tok, beta(spFilter))
	if len(p.Value) != 4 {
		t.Fatalf("%d service-principal sign-ins, want 4", len(p.Value))
	}
	for _, e := range p.Value {
		ap := e["appliedConditionalAccessPolicies"].([]any)[0].(map[string]any)
		if errorCode(e) != ErrorCodeBlockedByCA || ap["result"] != "failure" || e["servicePrincipalId"] != "7d1c3b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d" ||
			e["signInEventTypes"].([]any)[0] != "servicePrincipal" {
			t.Errorf("blocked service-principal sign-in %v", e)
		}
	}
	// Not among user sign-ins, on beta or v1.0; v1.0 has no signInEventTypes.
	if p := listSignInsPage(t, s, tok, beta(filter)); len(p.Value) != 0 {
		t.Errorf("beta without the event filter: %d", len(p.Value))
	}
	if p := listSignInsPage(t, s, tok, signInsURL(filter)); len(p.Value) != 0 {
		t.Errorf("v1.0: %d", len(p.Value))
	}
	if r := call(t, s, "GET", signInsURL(spFilter), tok, nil); r.status != 400 {
		t.Errorf("v1.0 with signInEventTypes: %d", r.status)
	}
	// Excluded from the policy, the app signs in (Security defaults stay on).
	if r := call(t, s, "PATCH", "/identity/conditionalAccess/policies/"+DefaultPolicyID, tok,
		[]byte(`{"conditions":{"clientApplications":{"includeServicePrincipals":["ServicePrincipalsInMyTenant"],"excludeServicePrincipals":["7d1c3b2a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]}}}`)); r.status != 204 {
		t.Fatalf("PATCH exclude: %d %s", r.status, r.body)
	}
	clock.Add(time.Hour)
	tok = token(t, s)
	p = listSignInsPage(t, s, tok, beta("createdDateTime ge "+t0.Format(time.RFC3339)+" and signInEventTypes/any(t: t eq 'servicePrincipal')"))
	if len(p.Value) != 4 {
		t.Fatalf("%d sign-ins after the exclusion", len(p.Value))
	}
	for _, e := range p.Value {
		if errorCode(e) != 0 {
			t.Errorf("after the exclusion: %v", e)
		}
	}
}

func TestSignInsFilter(t *testing.T) {
	clock := newClock(t0)
	s := startNoThrottle(t, Options{Now: clock.Now, ToolAuth: ToolDelegated})
	tok := token(t, s)
	since := "createdDateTime ge " + t0.Add(-24*time.Hour).Format(time.RFC3339)

	all := listSignInsPage(t, s, tok, signInsURL(since))
	users := map[string]int{}
	for _, e := range all.Value {
		users[e["userPrincipalName"].(string)]++
	}
	if len(users) < 3 || users[s.opts.ToolAccount] != 96 {
		t.Fatalf("users in a day: %v", users)
	}
	const obrien = "patrick.o'brien@contoso.onmicrosoft.com"
	if users[obrien] == 0 {
		t.Fatalf("no sign-ins for %s", obrien)
	}

	tests := []struct {
		name, filter string
		want         int
		check        func(map[string]any) bool
	}{
		{"quote escaped", since + " and userPrincipalName eq 'patrick.o''brien@contoso.onmicrosoft.com'", users[obrien],
			func(e map[string]any) bool { return e["userPrincipalName"] == obrien }},
		{"case-insensitive upn", since + " and userPrincipalName eq 'PATRICK.O''BRIEN@contoso.onmicrosoft.com'", users[obrien], nil},
		{"parentheses and userId", "(" + since + ") and (userId eq '" + DefaultToolAccountID + "')", 96, nil},
		{"error code", since + " and status/errorCode eq 0", len(all.Value) - 96,
			func(e map[string]any) bool { return errorCode(e) == 0 }},
		{"window", "createdDateTime ge " + t0.Add(-time.Hour).Format(time.RFC3339) + " and createdDateTime lt " + t0.Add(-30*time.Minute).Format(time.RFC3339) + " and clientAppUsed eq 'Mobile Apps and Desktop clients'", 2, nil},
		{"app", since + " and appDisplayName eq 'Backup tool (legacy)'", 96, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := listSignInsPage(t, s, tok, signInsURL(tc.filter))
			if len(p.Value) != tc.want {
				t.Fatalf("%d entries, want %d", len(p.Value), tc.want)
			}
			for _, e := range p.Value {
				if tc.check != nil && !tc.check(e) {
					t.Errorf("entry does not match: %v", e)
				}
			}
		})
	}

	for _, bad := range []string{
		"userPrincipalName eq 'o'brien@contoso.onmicrosoft.com'",
		"userPrincipalName eq 'unterminated",
		"userPrincipalName eq 'a' or userPrincipalName eq 'b'",
		"shoeSize eq 'x'",
		"createdDateTime ge '2026-03-01T00:00:00Z'",
		"createdDateTime ge yesterday",
		"userPrincipalName gt 'a'",
		"userPrincipalName eq",
	} {
		t.Run("rejects "+bad, func(t *testing.T) {
			r := call(t, s, "GET", signInsURL(bad), tok, nil)
			if r.status != 400 || graphErrorCode(t, r) == "" {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}

func TestSignInsPaging(t *testing.T) {
	clock := newClock(t0)
	s := startNoThrottle(t, Options{Now: clock.Now, ToolAuth: ToolDelegated})
	tok := token(t, s)
	filter := toolFilter(s, t0.Add(-6*time.Hour))
	whole := listSignInsPage(t, s, tok, signInsURL(filter))
	if len(whole.Value) != 24 || whole.NextLink != "" {
		t.Fatalf("unpaged: %d entries, nextLink %q", len(whole.Value), whole.NextLink)
	}

	var got []map[string]any
	next := signInsURL(filter, "$top=5")
	pages := 0
	for next != "" {
		p := listSignInsPage(t, s, tok, next)
		pages++
		if len(p.Value) > 5 {
			t.Fatalf("page of %d", len(p.Value))
		}
		got = append(got, p.Value...)
		if p.NextLink != "" {
			if !strings.HasPrefix(p.NextLink, s.URL()+"/v1.0/auditLogs/signIns?") || !strings.Contains(p.NextLink, "$skiptoken=") {
				t.Fatalf("nextLink %q", p.NextLink)
			}
		}
		next = p.NextLink
		// New sign-ins arriving while paging do not shift the pages.
		clock.Add(20 * time.Minute)
		tok = token(t, s)
	}
	if pages != 5 || len(got) != 24 {
		t.Fatalf("%d pages, %d entries", pages, len(got))
	}
	for i := range got {
		if got[i]["id"] != whole.Value[i]["id"] {
			t.Fatalf("entry %d differs between paged and unpaged", i)
		}
	}

	for _, q := range []string{"$top=0", "$top=1001", "$top=x", "$skiptoken=zz", "$orderby=userId"} {
		if r := call(t, s, "GET", "/auditLogs/signIns?"+q, tok, nil); r.status != 400 {
			t.Errorf("%s: %d", q, r.status)
		}
	}
}

func TestSignInsRetentionCap(t *testing.T) {
	clock := newClock(t0)
	s := startNoThrottle(t, Options{Now: clock.Now, ToolAuth: ToolDelegated})
	tok := token(t, s)
	f := toolFilter(s, t0.Add(-60*24*time.Hour)) + " and createdDateTime lt " + t0.Add(-29*24*time.Hour).Format(time.RFC3339)
	p := listSignInsPage(t, s, tok, signInsURL(f))
	if len(p.Value) != 96 {
		t.Fatalf("%d entries on the oldest day, want 96", len(p.Value))
	}
	if oldest := createdAt(t, p.Value[len(p.Value)-1]); oldest.Before(t0.Add(-30 * 24 * time.Hour)) {
		t.Errorf("entry older than 30 days: %s", oldest)
	}
}

func TestSignInsNeedP1(t *testing.T) {
	initial := DefaultState()
	initial.P1 = false
	s := start(t, Options{Initial: &initial})
	tok := token(t, s)
	r := call(t, s, "GET", "/auditLogs/signIns?$top=1", tok, nil)
	if r.status != http.StatusForbidden || graphErrorCode(t, r) != "Authentication_RequestFromNonPremiumTenantOrB2CTenant" ||
		!strings.Contains(string(r.body), "Tenant does not have a SKU required for this feature.") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	st := s.State()
	st.P1 = true
	s.SetState(st)
	if r := call(t, s, "GET", "/auditLogs/signIns?$top=1", tok, nil); r.status != 200 {
		t.Fatalf("with P1: %d", r.status)
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	s.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/v1.0/admin/sharepoint/settings", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	errs := make(chan error, 1)
	go func() {
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	// The request is recorded on arrival and then waits out the latency.
	for len(s.Requests()) == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-errs:
		t.Fatalf("answered despite an hour of latency: %v", err)
	default:
	}
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	s.SetLatency(0)
	if r := call(t, s, "GET", "/admin/sharepoint/settings", tok, nil); r.status != 200 {
		t.Fatalf("after latency reset: %d", r.status)
	}
}

// TestPowerShellSwitchNotInGraph: SharePoint's AllowLegacyAuthProtocolsEnabledSetting
// is a Set-SPOTenant parameter only (MC1184649); Graph's sharepointSettings
// has no such property, so a PATCH naming it is refused and changes nothing,
// and isLegacyAuthProtocolsEnabled alone does not bring IDCRL back on
// 2026-03-01.
func TestPowerShellSwitchNotInGraph(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := newClock(now)
	initial := DefaultState()
	initial.SecurityDefaults, initial.Policies = false, nil
	s := startNoThrottle(t, Options{Now: clock.Now, Initial: &initial})
	tok := token(t, s)
	r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(`{"allowLegacyAuthProtocolsEnabledSetting":true,"isLegacyAuthProtocolsEnabled":true}`))
	if r.status != 400 || !strings.Contains(string(r.body), "allowLegacyAuthProtocolsEnabledSetting") {
		t.Fatalf("PATCH with the PowerShell switch: %d %s", r.status, r.body)
	}
	if st := s.State(); st.LegacyAuth || st.AllowLegacyAuthProtocolsEnabledSetting {
		t.Fatalf("state changed: %+v", st)
	}
	if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(`{"isLegacyAuthProtocolsEnabled":true}`)); r.status != 200 {
		t.Fatalf("PATCH isLegacyAuthProtocolsEnabled: %d", r.status)
	}
	clock.Add(time.Hour)
	if got := toolCodes(t, s, clock.Now()); len(got) != 0 {
		t.Errorf("IDCRL sign-ins with Graph's setting alone: %v", got)
	}
	// The admin runs Set-SPOTenant -AllowLegacyAuthProtocolsEnabledSetting $true.
	st := s.State()
	st.AllowLegacyAuthProtocolsEnabledSetting = true
	s.SetState(st)
	clock.Add(time.Hour)
	if got := toolCodes(t, s, clock.Now()); got["Other clients"][0] != 2 {
		t.Errorf("IDCRL sign-ins with both switches: %v", got)
	}
}
