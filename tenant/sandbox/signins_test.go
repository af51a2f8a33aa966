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

func TestSignInsFollowStateAfterPropagation(t *testing.T) {
	clock := newClock(t0)
	s := startNoThrottle(t, Options{Now: clock.Now, Propagation: time.Hour})
	tok := token(t, s)

	// Blocked by security defaults; the report-only policy shows but does not block.
	p := listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(-2*time.Hour))))
	if len(p.Value) != 8 {
		t.Fatalf("%d sign-ins in two hours, want 8", len(p.Value))
	}
	fx := decode(t, fixture(t, "signins_list_200.json")).(map[string]any)["value"].([]any)[0]
	clients := map[string]int{}
	for _, e := range p.Value {
		sameKeys(t, "sign-in", e, fx)
		st := e["status"].(map[string]any)
		if errorCode(e) != ErrorCodeMFARequired || !strings.Contains(st["failureReason"].(string), "you must use multi-factor authentication to access '") ||
			e["conditionalAccessStatus"] != "notApplied" || e["appDisplayName"] != ToolAppDisplayName {
			t.Fatalf("blocked sign-in %v", e)
		}
		ap := e["appliedConditionalAccessPolicies"].([]any)
		if len(ap) != 1 || ap[0].(map[string]any)["result"] != "reportOnlyFailure" {
			t.Errorf("applied policies %v", ap)
		}
		clients[e["clientAppUsed"].(string)]++
	}
	if clients["Exchange ActiveSync"] != 4 || clients["Other clients"] != 4 {
		t.Errorf("clientAppUsed should alternate: %v", clients)
	}
	if !strings.HasSuffix(p.Value[0]["createdDateTime"].(string), "Z") || len(p.Value[0]["createdDateTime"].(string)) != len("2020-03-13T19:15:41.6195833Z") {
		t.Errorf("createdDateTime format %q", p.Value[0]["createdDateTime"])
	}

	// Enforce the policy now; it bites one hour later.
	if r := call(t, s, "PATCH", "/identity/conditionalAccess/policies/"+DefaultPolicyID, tok, []byte(`{"state":"enabled"}`)); r.status != 204 {
		t.Fatalf("PATCH policy: %d", r.status)
	}
	clock.Add(3 * time.Hour)
	tok = token(t, s) // the first token expired on the sandbox clock
	p = listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(-2*time.Hour))))
	if len(p.Value) != 20 {
		t.Fatalf("%d sign-ins in five hours, want 20", len(p.Value))
	}
	for _, e := range p.Value {
		at := createdAt(t, e)
		switch {
		case at.Before(t0.Add(time.Hour)):
			if errorCode(e) != ErrorCodeMFARequired {
				t.Errorf("%s: before propagation %v, want 50076", at, errorCode(e))
			}
		default:
			st := e["status"].(map[string]any)
			ap := e["appliedConditionalAccessPolicies"].([]any)[0].(map[string]any)
			if errorCode(e) != ErrorCodeBlockedByCA || st["failureReason"] != failureBlockedByCA ||
				e["conditionalAccessStatus"] != "failure" || ap["result"] != "failure" || ap["id"] != DefaultPolicyID {
				t.Errorf("%s: after propagation %v", at, e)
			}
		}
	}

	// The fix: the tool is excluded (through Graph) and security defaults are
	// turned off outside c2bot.
	if r := call(t, s, "PATCH", "/identity/conditionalAccess/policies/"+DefaultPolicyID, tok,
		[]byte(`{"conditions":{"users":{"excludeUsers":["`+DefaultToolAccountID+`"]}}}`)); r.status != 204 {
		t.Fatalf("PATCH exclude: %d", r.status)
	}
	st := s.State()
	st.SecurityDefaults = false
	s.SetState(st)
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
			want = ErrorCodeBlockedByCA
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

func TestSignInsEnabledPolicyBlocksWithoutSecurityDefaults(t *testing.T) {
	clock := newClock(t0)
	initial := DefaultState()
	initial.SecurityDefaults = false
	initial.Policies[0].State = "enabled"
	initial.Policies[0].ClientAppTypes = []string{"exchangeActiveSync"}
	s := startNoThrottle(t, Options{Now: clock.Now, Initial: &initial})
	tok := token(t, s)
	p := listSignInsPage(t, s, tok, signInsURL(toolFilter(s, t0.Add(-time.Hour))))
	if len(p.Value) != 4 {
		t.Fatalf("%d entries", len(p.Value))
	}
	for _, e := range p.Value {
		want := 0.0
		if e["clientAppUsed"] == "Exchange ActiveSync" {
			want = ErrorCodeBlockedByCA
		}
		if errorCode(e) != want {
			t.Errorf("%s: %v, want %v", e["clientAppUsed"], errorCode(e), want)
		}
	}
}

func TestSignInsFilter(t *testing.T) {
	clock := newClock(t0)
	s := startNoThrottle(t, Options{Now: clock.Now})
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
		{"window", "createdDateTime ge " + t0.Add(-time.Hour).Format(time.RFC3339) + " and createdDateTime lt " + t0.Add(-30*time.Minute).Format(time.RFC3339) + " and clientAppUsed eq 'Exchange ActiveSync'", 1, nil},
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
	s := startNoThrottle(t, Options{Now: clock.Now})
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
	s := startNoThrottle(t, Options{Now: clock.Now})
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
