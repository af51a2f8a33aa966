package sandbox

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGraphRequiresToken(t *testing.T) {
	s := start(t, Options{})
	for _, tc := range []struct{ name, tok string }{{"no token", ""}, {"unknown token", "sbx.forged"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, "GET", "/admin/sharepoint/settings", tc.tok, nil)
			if r.status != http.StatusUnauthorized || graphErrorCode(t, r) != "InvalidAuthenticationToken" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}
	// A refused PATCH changes nothing.
	r := call(t, s, "PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", "", []byte(`{"isEnabled":false}`))
	if r.status != http.StatusUnauthorized || !s.State().SecurityDefaults {
		t.Fatalf("unauthorised PATCH: %d, state %+v", r.status, s.State())
	}
	recs := s.Requests()
	if len(recs) != 3 || recs[2].Authorized || recs[2].Method != "PATCH" {
		t.Fatalf("recorded %+v", recs)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	if r := call(t, s, "GET", "/nope/things", tok, nil); r.status != 404 || graphErrorCode(t, r) == "" {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
	if r := call(t, s, "DELETE", "/admin/sharepoint/settings", tok, nil); r.status != 405 || graphErrorCode(t, r) == "" {
		t.Errorf("wrong method: %d %s", r.status, r.body)
	}
	if r := call(t, s, "GET", "/admin/sharepoint/settings", tok, nil, "client-request-id", "abc-123"); r.header.Get("client-request-id") != "abc-123" {
		t.Errorf("client-request-id not echoed: %q", r.header.Get("client-request-id"))
	}
}

func TestSecurityDefaults(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	const path = "/policies/identitySecurityDefaultsEnforcementPolicy"
	r := call(t, s, "GET", path, tok, nil)
	if r.status != 200 {
		t.Fatalf("GET %d", r.status)
	}
	sameKeys(t, "GET", decode(t, r.body), decode(t, fixture(t, "security_defaults_get_200.json")))
	if r.json(t)["isEnabled"] != true {
		t.Fatalf("initial isEnabled %v", r.json(t)["isEnabled"])
	}

	r = call(t, s, "PATCH", path, tok, fixture(t, "security_defaults_patch_request.json"))
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("PATCH: %d %q", r.status, r.body)
	}
	if s.State().SecurityDefaults {
		t.Fatal("State still enabled")
	}
	if r := call(t, s, "GET", path, tok, nil); r.json(t)["isEnabled"] != false {
		t.Fatalf("read back %s", r.body)
	}

	for _, body := range []string{`{"isEnabled":"yes"}`, `{"isEnabledd":true}`, `not json`, ``} {
		if r := call(t, s, "PATCH", path, tok, []byte(body)); r.status != 400 || graphErrorCode(t, r) != "BadRequest" {
			t.Errorf("PATCH %q: %d %s", body, r.status, r.body)
		}
	}
	if s.State().SecurityDefaults {
		t.Error("a rejected PATCH changed the state")
	}
	// An SDK model carries @odata.type; it is accepted.
	if r := call(t, s, "PATCH", path, tok, []byte(`{"@odata.type":"#microsoft.graph.identitySecurityDefaultsEnforcementPolicy","isEnabled":true}`)); r.status != 204 || !s.State().SecurityDefaults {
		t.Errorf("PATCH with @odata.type: %d %s", r.status, r.body)
	}
}

func TestSharePointSettings(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	const path = "/admin/sharepoint/settings"
	r := call(t, s, "GET", path, tok, nil)
	if r.status != 200 {
		t.Fatalf("GET %d", r.status)
	}
	got := r.json(t)
	sameKeys(t, "GET", got, decode(t, fixture(t, "sharepoint_settings_get_200.unwrapped.json")), "@odata.context")
	if _, wrapped := got["value"]; wrapped || got["@odata.context"] == nil {
		t.Errorf("GET must be the entity with @odata.context, not wrapped: %s", r.body)
	}
	if got["isLegacyAuthProtocolsEnabled"] != false || got["isRequireAcceptingUserToMatchInvitedUserEnabled"] != true {
		t.Fatalf("initial values %v %v", got["isLegacyAuthProtocolsEnabled"], got["isRequireAcceptingUserToMatchInvitedUserEnabled"])
	}

	r = call(t, s, "PATCH", path, tok, fixture(t, "sharepoint_settings_patch_request.json"))
	if r.status != 200 {
		t.Fatalf("PATCH %d %s", r.status, r.body)
	}
	got = r.json(t)
	sameKeys(t, "PATCH", got, decode(t, fixture(t, "sharepoint_settings_patch_200.json")), "@odata.context")
	if got["isLegacyAuthProtocolsEnabled"] != true || got["personalSiteDefaultStorageLimitInMB"] != 120000.0 || got["deletedUserPersonalSiteRetentionPeriodInDays"] != 365.0 {
		t.Errorf("PATCH response does not hold the change: %s", r.body)
	}
	if st := s.State(); !st.LegacyAuth || !st.InvitedMatch {
		t.Errorf("state %+v", st)
	}

	r = call(t, s, "PATCH", path, tok, []byte(`{"@odata.type":"#microsoft.graph.sharepointSettings","isRequireAcceptingUserToMatchInvitedUserEnabled":false}`))
	if r.status != 200 || r.json(t)["isRequireAcceptingUserToMatchInvitedUserEnabled"] != false || s.State().InvitedMatch {
		t.Fatalf("PATCH invited match: %d %s", r.status, r.body)
	}
	if r := call(t, s, "GET", path, tok, nil); r.json(t)["isRequireAcceptingUserToMatchInvitedUserEnabled"] != false || r.json(t)["isLegacyAuthProtocolsEnabled"] != true {
		t.Errorf("read back %s", r.body)
	}

	for _, body := range []string{
		`{"isLegacyAuthProtocolsEnabled":"true"}`,
		`{"isLegacyAuthProtocolsEnabled":false,"legacyAuth":true}`,
		`{"isLegacyAuthProtocolsEnabled":false,"personalSiteDefaultStorageLimitInMB":"big"}`,
	} {
		if r := call(t, s, "PATCH", path, tok, []byte(body)); r.status != 400 {
			t.Errorf("PATCH %s: %d", body, r.status)
		}
	}
	if !s.State().LegacyAuth {
		t.Error("a rejected PATCH changed the state")
	}
}

func TestConditionalAccessPolicies(t *testing.T) {
	s := startNoThrottle(t, Options{})
	tok := token(t, s)
	r := call(t, s, "GET", "/identity/conditionalAccess/policies", tok, nil)
	if r.status != 200 {
		t.Fatalf("list %d", r.status)
	}
	list := decode(t, r.body)
	sameKeys(t, "list", list, decode(t, fixture(t, "ca_policies_list_200.json")))
	value := list.(map[string]any)["value"].([]any)
	if len(value) != 1 {
		t.Fatalf("%d policies", len(value))
	}
	p := value[0].(map[string]any)
	cond := p["conditions"].(map[string]any)
	if p["id"] != DefaultPolicyID || p["state"] != "enabledForReportingButNotEnforced" ||
		!equalJSON(cond["clientAppTypes"], []string{"exchangeActiveSync", "other"}) ||
		!equalJSON(cond["applications"].(map[string]any)["includeApplications"], []string{"All"}) ||
		!equalJSON(p["grantControls"].(map[string]any)["builtInControls"], []string{"block"}) {
		t.Errorf("policy %s", r.body)
	}

	path := "/identity/conditionalAccess/policies/" + DefaultPolicyID
	r = call(t, s, "GET", path, tok, nil)
	one := r.json(t)
	if r.status != 200 || one["@odata.context"] == nil {
		t.Fatalf("get %d %s", r.status, r.body)
	}
	sameKeys(t, "get", one, value[0], "@odata.context")

	// The shape msgraph-sdk-go sends for a fresh model holding the changes.
	patch := `{"@odata.type":"#microsoft.graph.conditionalAccessPolicy","state":"enabled","conditions":{"@odata.type":"#microsoft.graph.conditionalAccessConditionSet","users":{"@odata.type":"#microsoft.graph.conditionalAccessUsers","excludeUsers":["` + DefaultToolAccountID + `"]}}}`
	if r := call(t, s, "PATCH", path, tok, []byte(patch)); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("PATCH %d %s", r.status, r.body)
	}
	pol := s.State().Policies[0]
	if pol.State != "enabled" || !equalJSON(pol.ExcludeUsers, []string{DefaultToolAccountID}) || !equalJSON(pol.IncludeUsers, []string{"All"}) {
		t.Fatalf("state after PATCH %+v", pol)
	}
	got := call(t, s, "GET", path, tok, nil).json(t)
	users := got["conditions"].(map[string]any)["users"].(map[string]any)
	if got["state"] != "enabled" || !equalJSON(users["excludeUsers"], []string{DefaultToolAccountID}) || got["modifiedDateTime"] == nil {
		t.Errorf("read back %v", got)
	}

	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"bad state", path, `{"state":"on"}`, 400},
		{"upn instead of id", path, `{"conditions":{"users":{"excludeUsers":["svc-backup@contoso.onmicrosoft.com"]}}}`, 400},
		{"unknown property", path, `{"color":"red"}`, 400},
		{"unknown policy", "/identity/conditionalAccess/policies/11111111-2222-4333-8444-555555555555", `{"state":"disabled"}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := call(t, s, "PATCH", tc.path, tok, []byte(tc.body)); r.status != tc.status {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	if s.State().Policies[0].State != "enabled" {
		t.Error("a rejected PATCH changed the policy")
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestConditionalAccessThrottle(t *testing.T) {
	s := start(t, Options{})
	clock := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.setThrottleClock(clock.Now)
	tok := token(t, s)
	const path = "/identity/conditionalAccess/policies"

	if r := call(t, s, "GET", path, tok, nil); r.status != 200 {
		t.Fatalf("first: %d", r.status)
	}
	clock.Add(999 * time.Millisecond)
	r := call(t, s, "GET", path+"/"+DefaultPolicyID, tok, nil)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second within a second: %d", r.status)
	}
	if ra, ok := r.header["Retry-After"]; ok {
		t.Errorf("Conditional Access 429 carries Retry-After %v", ra)
	}
	sameKeys(t, "429 body", decode(t, r.body), decode(t, fixture(t, "error_429_toomanyrequests_body.json")))
	// Other endpoints are not throttled.
	if r := call(t, s, "GET", "/admin/sharepoint/settings", tok, nil); r.status != 200 {
		t.Errorf("sharepoint throttled: %d", r.status)
	}
	clock.Add(time.Second)
	if r := call(t, s, "GET", path, tok, nil); r.status != 200 {
		t.Fatalf("after a second: %d", r.status)
	}
	s.SetCAThrottle(false)
	for i := 0; i < 3; i++ {
		if r := call(t, s, "GET", path, tok, nil); r.status != 200 {
			t.Fatalf("throttle off, request %d: %d", i, r.status)
		}
	}
}

func TestFailRules(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	s.Fail(FailRule{Method: "PATCH", PathPrefix: "/admin/sharepoint", Status: 429, RetryAfter: "2.128", Times: 2})
	s.Fail(FailRule{PathPrefix: "/policies", Status: 503, RetryAfter: "1"})
	body := []byte(`{"isLegacyAuthProtocolsEnabled":true}`)

	for i := 0; i < 2; i++ {
		r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, body)
		if r.status != 429 || r.header.Get("Retry-After") != "2.128" || graphErrorCode(t, r) != "TooManyRequests" {
			t.Fatalf("attempt %d: %d %q %s", i, r.status, r.header.Get("Retry-After"), r.body)
		}
		sameKeys(t, "429 body", decode(t, r.body), decode(t, fixture(t, "error_429_toomanyrequests_body.json")))
	}
	if s.State().LegacyAuth {
		t.Fatal("a failed request changed the state")
	}
	if r := call(t, s, "GET", "/admin/sharepoint/settings", tok, nil); r.status != 200 {
		t.Errorf("GET matched a PATCH rule: %d", r.status)
	}
	if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, body); r.status != 200 || !s.State().LegacyAuth {
		t.Fatalf("third attempt: %d", r.status)
	}
	for i := 0; i < 3; i++ {
		r := call(t, s, "GET", "/policies/identitySecurityDefaultsEnforcementPolicy", tok, nil)
		if r.status != 503 || r.header.Get("Retry-After") != "1" || graphErrorCode(t, r) == "" {
			t.Fatalf("503 rule, request %d: %d %q", i, r.status, r.header.Get("Retry-After"))
		}
	}
	s.ClearFailures()
	if r := call(t, s, "GET", "/policies/identitySecurityDefaultsEnforcementPolicy", tok, nil); r.status != 200 {
		t.Fatalf("after ClearFailures: %d", r.status)
	}
	s.Fail(FailRule{Status: 403, Code: "Authorization_RequestDenied", Times: 1})
	if r := call(t, s, "GET", "/admin/sharepoint/settings", tok, nil); r.status != 403 || graphErrorCode(t, r) != "Authorization_RequestDenied" {
		t.Fatalf("403 rule: %d %s", r.status, r.body)
	}
}

func TestHold(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	held, release := s.Hold("PATCH", "/admin/sharepoint")
	type out struct {
		status int
	}
	done := make(chan out, 1)
	go func() {
		r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(`{"isLegacyAuthProtocolsEnabled":true}`))
		done <- out{r.status}
	}()
	<-held
	// Held before it is served: other requests pass, the change is not made.
	if r := call(t, s, "PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", tok, []byte(`{"isEnabled":false}`)); r.status != 204 {
		t.Fatalf("unrelated request: %d", r.status)
	}
	if s.State().LegacyAuth {
		t.Fatal("held request was served")
	}
	select {
	case <-done:
		t.Fatal("held request answered before release")
	default:
	}
	release()
	release() // idempotent
	if o := <-done; o.status != 200 || !s.State().LegacyAuth {
		t.Fatalf("after release: %d", o.status)
	}
	// Only the next matching request is held.
	if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(`{"isLegacyAuthProtocolsEnabled":false}`)); r.status != 200 {
		t.Fatalf("second request: %d", r.status)
	}
}

func TestCloseReleasesHeldRequest(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, s)
	held, _ := s.Hold("", "/admin")
	errs := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", s.URL()+"/v1.0/admin/sharepoint/settings", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- nil
	}()
	<-held
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-errs
}

func TestGzipBody(t *testing.T) {
	s := start(t, Options{})
	tok := token(t, s)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"isLegacyAuthProtocolsEnabled":true}`))
	zw.Close()
	r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, buf.Bytes(), "Content-Encoding", "gzip")
	if r.status != 200 || !s.State().LegacyAuth {
		t.Fatalf("gzip PATCH: %d %s", r.status, r.body)
	}
	recs := s.Requests()
	last := recs[len(recs)-1]
	if last.ContentEncoding != "gzip" || string(last.Body) != `{"isLegacyAuthProtocolsEnabled":true}` || !last.Authorized || last.Path != "/admin/sharepoint/settings" {
		t.Fatalf("recorded %+v (body %q)", last, last.Body)
	}
	if r := call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte("not gzip"), "Content-Encoding", "gzip"); r.status != 400 {
		t.Errorf("broken gzip: %d", r.status)
	}
}

func TestUsers(t *testing.T) {
	s := start(t, Options{ToolAccount: "svc-o'backup@fabrikam.onmicrosoft.com"})
	tok := token(t, s)
	for _, path := range []string{
		"/users/svc-o'backup@fabrikam.onmicrosoft.com",
		"/users/" + DefaultToolAccountID,
		"/users('svc-o''backup@fabrikam.onmicrosoft.com')",
	} {
		r := call(t, s, "GET", path+"?$select=id,userPrincipalName,displayName", tok, nil)
		got := r.json(t)
		if r.status != 200 || got["id"] != DefaultToolAccountID || got["userPrincipalName"] != "svc-o'backup@fabrikam.onmicrosoft.com" || got["displayName"] == nil {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		if len(got) != 4 {
			t.Errorf("%s: $select not honoured: %s", path, r.body)
		}
	}
	r := call(t, s, "GET", "/users/nobody@fabrikam.onmicrosoft.com", tok, nil)
	if r.status != 404 || graphErrorCode(t, r) != "Request_ResourceNotFound" {
		t.Fatalf("unknown user: %d %s", r.status, r.body)
	}
	if r := call(t, s, "GET", "/users/"+DefaultToolAccountID+"?$select=shoeSize", tok, nil); r.status != 400 {
		t.Errorf("unknown $select: %d", r.status)
	}
}

func TestSetStateAndConcurrentUse(t *testing.T) {
	s := startNoThrottle(t, Options{})
	tok := token(t, s)
	st := s.State()
	st.Policies[0].ExcludeUsers = append(st.Policies[0].ExcludeUsers, "x")
	if len(s.State().Policies[0].ExcludeUsers) != 0 {
		t.Fatal("State returned shared slices")
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch i % 4 {
			case 0:
				call(t, s, "PATCH", "/admin/sharepoint/settings", tok, []byte(`{"isLegacyAuthProtocolsEnabled":true}`))
			case 1:
				call(t, s, "GET", "/identity/conditionalAccess/policies", tok, nil)
			case 2:
				cur := s.State()
				cur.InvitedMatch = !cur.InvitedMatch
				s.SetState(cur)
				s.SetLatency(0)
			case 3:
				s.Fail(FailRule{PathPrefix: "/nothing", Status: 500})
				s.ClearFailures()
				_ = s.Requests()
				call(t, s, "GET", "/auditLogs/signIns?$top=5", tok, nil)
			}
		}(i)
	}
	wg.Wait()
	if !s.State().LegacyAuth {
		t.Error("concurrent PATCH lost")
	}
	if strings.Count(string(s.CertPEM()), "BEGIN CERTIFICATE") != 1 {
		t.Error("CertPEM")
	}
}
