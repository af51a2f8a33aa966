package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewValidatesConfig(t *testing.T) {
	good := Config{TenantID: testTenantID, ClientID: testClientID, ClientSecret: testSecret}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"http authority", func(c *Config) { c.AuthorityURL = "http://login.example.com" }, "must be https"},
		{"http graph", func(c *Config) { c.GraphURL = "http://graph.example.com" }, "must be https"},
		{"no tenant", func(c *Config) { c.TenantID = "" }, "tenant id"},
		{"tenant with path", func(c *Config) { c.TenantID = "x/../common" }, "tenant id"},
		{"no client", func(c *Config) { c.ClientID = "" }, "client id"},
		{"no credential", func(c *Config) { c.ClientSecret = "" }, "a client secret, a certificate file, a federated token file or a managed identity"},
		{"missing cert file", func(c *Config) { c.ClientSecret, c.CertFile = "", "/nonexistent/app.pem" }, "read client certificate"},
		{"graph url with query", func(c *Config) { c.GraphURL = "https://graph.example.com/?x=1" }, "https://host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatal("error shows the secret")
			}
		})
	}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.GraphURL != DefaultGraphURL || c.cfg.AuthorityURL != DefaultAuthorityURL || c.cfg.MaxRetries != 4 {
		t.Fatalf("defaults not filled: %+v", c.cfg)
	}
	if got := c.adapter.GetBaseUrl(); got != "https://graph.microsoft.com/v1.0" {
		t.Fatalf("base url %q", got)
	}
}

func severities(fs []Finding) map[string][]Severity {
	out := map[string][]Severity{}
	for _, f := range fs {
		out[f.Check] = append(out[f.Check], f.Severity)
	}
	return out
}

func TestDiagnoseBlockedTenant(t *testing.T) {
	f := newFakeTenant(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.signIns = []map[string]any{
		signIn(t, now.Add(-10*time.Minute), 50076, "Due to a configuration change made by your administrator, you must use multi-factor authentication.", "IMAP4", "notApplied"),
		signIn(t, now.Add(-40*time.Minute), 50076, "older reason", "Exchange ActiveSync", "notApplied"),
		signIn(t, now.Add(-70*time.Minute), 53003, "Access has been blocked by Conditional Access policies.", "Other clients", "failure"),
		signIn(t, now.Add(-5*time.Hour), 0, "", "Browser", "notApplied"),
	}
	f.policies = append(f.policies, caPolicyJSON("9d0f9a1c-0000-4000-8000-000000000001", "Block legacy authentication", "enabled",
		[]string{"exchangeActiveSync", "other"}, []string{"block"}, []string{"All"}, []string{}, []string{}))
	c, _ := f.newClient(t, func(c *Config) { c.Now = func() time.Time { return now } })

	rep, err := c.Diagnose(context.Background(), Target{Account: testAccount, Product: "backup", Version: "2.1"})
	if err != nil {
		t.Fatal(err)
	}
	// On 2026-11-25 a legacy tool (its sign-ins are mostly IMAP4, EAS and
	// other clients) finds Exchange basic auth retired (2022-10-01) and
	// SharePoint IDCRL retired (2026-05-01): the blockers stand whatever is
	// set, and the old version stops the fix. Security defaults and the
	// Conditional Access policy do block, but lifting them cannot help; the
	// invited-account match is information only.
	got := severities(rep.Findings)
	want := map[string][]Severity{
		CheckExchangeBasicAuth:      {SeverityBlocker},
		CheckSecurityDefaults:       {SeverityInfo},
		CheckSharePointLegacyAuth:   {SeverityBlocker},
		CheckSharePointInvitedMatch: {SeverityInfo},
		CheckConditionalAccess:      {SeverityBlocker},
		CheckSignIns:                {SeverityBlocker},
		CheckVersion:                {SeverityBlocker},
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: severities %v, want %v (findings %+v)", k, got[k], v, rep.Findings)
		}
	}
	var order []string
	for _, fd := range rep.Findings {
		order = append(order, fd.Check)
	}
	wantOrder := []string{CheckExchangeBasicAuth, CheckSecurityDefaults, CheckSharePointLegacyAuth, CheckSharePointInvitedMatch, CheckConditionalAccess, CheckSignIns, CheckVersion}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("order %v, want %v", order, wantOrder)
	}
	if f := rep.Findings[1]; !strings.Contains(f.Title, "turning them off cannot help") ||
		!slices.Contains(f.Evidence, Evidence{Name: "isEnabled", Value: "true"}) {
		t.Errorf("security defaults finding %+v", f)
	}
	if f := rep.Findings[4]; f.PolicyID != "9d0f9a1c-0000-4000-8000-000000000001" || !strings.Contains(f.Fix, "would not help") {
		t.Errorf("conditional access finding %+v", f)
	}
	if !rep.Blocked() {
		t.Error("report not blocked")
	}
	if rep.Profile.Auth != AuthLegacy || !rep.Profile.Inferred || !strings.Contains(rep.Profile.InferredFrom, "IMAP4 × 1") {
		t.Errorf("profile %+v", rep.Profile)
	}
	if len(rep.Plan) != 0 || !strings.Contains(rep.NoFix, "backup 2.1 is too old") || !strings.Contains(rep.NoFix, "2.3 or later") {
		t.Errorf("plan %+v, no_fix %q", rep.Plan, rep.NoFix)
	}

	s := rep.SignIns
	if s.Total != 4 || s.Succeeded != 1 || len(s.Failed) != 2 {
		t.Fatalf("sign-ins %+v", s)
	}
	g := s.Failed[0]
	if g.ErrorCode != 50076 || g.Count != 2 || !strings.HasPrefix(g.FailureReason, "Due to a configuration") ||
		!slices.Equal(g.ClientApps, []string{"Exchange ActiveSync", "IMAP4"}) || !g.LastSeen.Equal(now.Add(-10*time.Minute)) ||
		!strings.Contains(g.Explanation, "MFA") || g.CAStatus != "notApplied" {
		t.Errorf("group 50076 %+v", g)
	}
	if s.Failed[1].ErrorCode != 53003 || s.Failed[1].CAStatus != "failure" {
		t.Errorf("group 53003 %+v", s.Failed[1])
	}
	// What explains each group: Security defaults and Exchange's retired
	// basic auth for the 50076s over IMAP4 and EAS; the policy (the only
	// enforced one) and SharePoint's retired IDCRL for the 53003 over other
	// clients.
	if want := []string{CheckSecurityDefaults, CheckExchangeBasicAuth}; !slices.Equal(g.ExplainedBy, want) {
		t.Errorf("50076 explained by %v, want %v", g.ExplainedBy, want)
	}
	if want := []string{"9d0f9a1c-0000-4000-8000-000000000001", CheckSharePointLegacyAuth}; !slices.Equal(s.Failed[1].ExplainedBy, want) {
		t.Errorf("53003 explained by %v, want %v", s.Failed[1].ExplainedBy, want)
	}

	for _, r := range f.graphRequests() {
		if r.Authorization != "Bearer "+testToken {
			t.Errorf("%s %s went without the token", r.Method, r.Path)
		}
	}
	f.mu.Lock()
	tokens := len(f.tokenRequests)
	f.mu.Unlock()
	if tokens < 1 || tokens > 5 {
		t.Errorf("%d token requests", tokens)
	}
	// A second run is served from MSAL's token cache.
	if _, err := c.Diagnose(context.Background(), Target{Account: testAccount}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if len(f.tokenRequests) != tokens {
		t.Errorf("token fetched again: %d → %d", tokens, len(f.tokenRequests))
	}
	f.mu.Unlock()
}

func TestDiagnoseRefusesUnknownAuth(t *testing.T) {
	f := newFakeTenant(t)
	c, _ := f.newClient(t)
	_, err := c.Diagnose(context.Background(), Target{Account: testAccount, Auth: "basic"})
	if err == nil || !strings.Contains(err.Error(), `tool auth "basic": want legacy, delegated or app`) {
		t.Fatalf("err %v", err)
	}
	if n := len(f.graphRequests()); n != 0 {
		t.Errorf("%d Graph requests for a bad target", n)
	}
}

func TestDiagnoseWithoutAccount(t *testing.T) {
	f := newFakeTenant(t)
	f.policies = append(f.policies, caPolicyJSON("p1", "Block legacy", "enabled",
		[]string{"other"}, []string{"block"}, []string{"All"}, []string{}, []string{}))
	c, _ := f.newClient(t)
	rep, err := c.Diagnose(context.Background(), Target{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range rep.Plan {
		if it.Kind == KindCAExcludeUser {
			t.Errorf("exclusion planned without an account: %+v", it)
		}
	}
	// Nothing to infer from: the vendor's case, legacy, is assumed and said.
	if rep.Profile.Auth != AuthLegacy || !strings.Contains(rep.Profile.InferredFrom, "assumed legacy") {
		t.Errorf("profile %+v", rep.Profile)
	}
	// An app tool without its app id: user policies are not about it.
	app, err := c.Diagnose(context.Background(), Target{Auth: AuthApp})
	if err != nil {
		t.Fatal(err)
	}
	if f := app.Findings[slices.IndexFunc(app.Findings, func(f Finding) bool { return f.Check == CheckConditionalAccess })]; f.Severity != SeverityInfo ||
		!strings.Contains(f.Title, "Conditional Access not evaluated") || len(app.Plan) != 0 {
		t.Errorf("app tool without app id: %+v, plan %+v", f, app.Plan)
	}
	var sawCA, sawSignIns bool
	for _, fd := range rep.Findings {
		if fd.Check == CheckConditionalAccess && fd.Severity == SeverityBlocker {
			sawCA = true
		}
		if fd.Check == CheckSignIns && fd.Severity == SeverityInfo && fd.Title == "no tool account given; sign-ins not checked" {
			sawSignIns = true
		}
	}
	if !sawCA || !sawSignIns {
		t.Errorf("findings %+v", rep.Findings)
	}
	for _, r := range f.graphRequests() {
		if strings.HasPrefix(r.Path, "/auditLogs") || strings.HasPrefix(r.Path, "/users") {
			t.Errorf("unexpected request %s", r.Path)
		}
	}
}

func TestCertificateCredential(t *testing.T) {
	f := newFakeTenant(t)
	path, cert := writeCertPEM(t)
	f.cert = cert
	c, _ := f.newClient(t, func(c *Config) { c.ClientSecret, c.CertFile = "", path })
	if _, err := c.Snapshot(context.Background(), Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokenRequests) != 1 {
		t.Fatalf("%d token requests", len(f.tokenRequests))
	}
	form := f.tokenRequests[0]
	if form.Get("client_assertion") == "" || form.Get("client_secret") != "" {
		t.Fatalf("token request did not use the certificate: %v", form)
	}
}

func TestBadCredentials(t *testing.T) {
	f := newFakeTenant(t)
	const wrong = "wrong-secret-value-xyz"
	c, _ := f.newClient(t, func(c *Config) { c.ClientSecret = wrong })
	_, err := c.Diagnose(context.Background(), Target{Account: testAccount})
	if err == nil {
		t.Fatal("Diagnose succeeded with a wrong secret")
	}
	if !errors.Is(err, ErrAuthentication) || !IsAuthError(err) {
		t.Fatalf("error %v does not wrap ErrAuthentication", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("error shows the secret: %v", err)
	}
	if !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("error lacks the sign-in code: %v", err)
	}
	if n := len(f.graphRequests()); n != 0 {
		t.Errorf("%d Graph requests without a token", n)
	}
}

func TestCheckFailureBecomesWarning(t *testing.T) {
	f := newFakeTenant(t)
	f.fail(failRule{prefix: "/admin/sharepoint", status: http.StatusForbidden, body: readFixture(t, "error_403_authorization_requestdenied.json")})
	c, _ := f.newClient(t)
	rep, err := c.Diagnose(context.Background(), Target{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, fd := range rep.Findings {
		if fd.Check == CheckSharePointLegacyAuth {
			found = true
			if fd.Severity != SeverityWarning || !strings.HasPrefix(fd.Title, "could not check SharePoint settings:") ||
				!strings.Contains(fd.Title, "Authorization_RequestDenied (HTTP 403)") {
				t.Errorf("finding %+v", fd)
			}
		}
		if fd.Check == CheckSharePointInvitedMatch {
			t.Errorf("invited-match graded without settings: %+v", fd)
		}
	}
	if !found {
		t.Fatal("no sharepoint finding")
	}
	// A delegated tool on Security defaults still gets the one change that
	// helps it although SharePoint could not be read.
	rep, err = c.Diagnose(context.Background(), Target{Auth: AuthDelegated})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan) != 1 || rep.Plan[0].Kind != KindSecurityDefaults || rep.Plan[0].Propagation != PropagationSecurityDefaults {
		t.Errorf("plan %+v", rep.Plan)
	}
}

func TestTypedErrors(t *testing.T) {
	tests := []struct {
		name        string
		rule        failRule
		wantStatus  int
		wantCode    string
		wantReq     string
		forbidden   bool
		throttled   bool
		wantInError []string
	}{
		{
			name:        "403 fixture",
			rule:        failRule{status: 403, body: nil},
			wantStatus:  403,
			wantCode:    "Authorization_RequestDenied",
			wantReq:     "<guid>",
			forbidden:   true,
			wantInError: []string{"Authorization_RequestDenied", "403", "<guid>", "Insufficient privileges"},
		},
		{
			name:        "html 404 from a proxy",
			rule:        failRule{status: 404, body: []byte("<html>not here</html>"), contentType: "text/html"},
			wantStatus:  404,
			wantReq:     "req-1",
			wantInError: []string{"HTTP 404", "req-1"},
		},
	}
	tests[0].rule.body = readFixture(t, "error_403_authorization_requestdenied.json")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTenant(t)
			tt.rule.prefix = "/policies"
			f.fail(tt.rule)
			c, _ := f.newClient(t)
			_, err := c.Snapshot(context.Background(), Item{Kind: KindSecurityDefaults, Before: ValueTrue, After: ValueFalse})
			ge := AsGraphError(err)
			if ge == nil {
				t.Fatalf("error %v (%T) is not a GraphError", err, err)
			}
			if ge.Status != tt.wantStatus || ge.Code != tt.wantCode || ge.RequestID != tt.wantReq {
				t.Errorf("GraphError %+v", ge)
			}
			if IsForbidden(err) != tt.forbidden || IsThrottled(err) != tt.throttled {
				t.Errorf("IsForbidden %v IsThrottled %v", IsForbidden(err), IsThrottled(err))
			}
			for _, s := range tt.wantInError {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestSignInsForbiddenIsUnavailable(t *testing.T) {
	for _, code := range []string{"Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Authorization_RequestDenied"} {
		t.Run(code, func(t *testing.T) {
			f := newFakeTenant(t)
			body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": "Neither tenant is B2C or tenant doesn't have premium license",
				"innerError": map[string]any{"date": "2020-08-18T12:51:51", "request-id": "r-1"}}})
			f.fail(failRule{prefix: "/auditLogs", status: 403, body: body})
			c, _ := f.newClient(t)
			s, err := c.SignIns(context.Background(), testAccount, time.Now().Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want := "cannot read sign-ins: " + code + ": needs AuditLog.Read.All + Directory.Read.All and an Entra ID P1 licence"
			if s.Unavailable != want || s.Total != 0 {
				t.Fatalf("summary %+v", s)
			}
			rep, err := c.Diagnose(context.Background(), Target{Account: testAccount})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rep.Findings, func(fd Finding) bool {
				return fd.Check == CheckSignIns && fd.Title == want && fd.Severity == SeverityWarning
			}) {
				t.Errorf("findings %+v", rep.Findings)
			}
		})
	}
}

func TestSignInsFilterQuotingAndPaging(t *testing.T) {
	f := newFakeTenant(t)
	const odd = "o'brien@contoso.com"
	since := time.Date(2026, 11, 24, 10, 30, 0, 0, time.FixedZone("CET", 3600))
	for i := range 5 {
		f.signIns = append(f.signIns, signIn(t, since.Add(time.Duration(i+1)*time.Minute), 50126, "Invalid username or password", "IMAP4", "notApplied"))
	}
	f.signInPageSize = 2
	c, _ := f.newClient(t)
	s, err := c.SignIns(context.Background(), odd, since)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 5 || len(s.Failed) != 1 || s.Failed[0].Count != 5 || !strings.HasPrefix(s.Failed[0].Explanation, "invalid user name or password") {
		t.Fatalf("summary %+v", s)
	}
	reqs := f.graphRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 pages", len(reqs))
	}
	wantFilter := "createdDateTime ge 2026-11-24T09:30:00Z and userPrincipalName eq 'o''brien@contoso.com'"
	if got := reqs[0].Query.Get("$filter"); got != wantFilter {
		t.Errorf("$filter %q, want %q", got, wantFilter)
	}
	if reqs[1].Query.Get("$skiptoken") != "2" || reqs[2].Query.Get("$skiptoken") != "4" {
		t.Errorf("paging queries %v %v", reqs[1].Query, reqs[2].Query)
	}
}

func TestPagingLinkToOtherHostRefused(t *testing.T) {
	f := newFakeTenant(t)
	for i := range 3 {
		f.signIns = append(f.signIns, signIn(t, time.Now().Add(-time.Duration(i)*time.Minute), 0, "", "Browser", "notApplied"))
	}
	f.signInPageSize = 1
	f.nextLinkHost = "https://graph.microsoft.com"
	c, _ := f.newClient(t)
	_, err := c.SignIns(context.Background(), testAccount, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "unexpected host") {
		t.Fatalf("err %v", err)
	}
	if n := len(f.graphRequests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestSignInsRejectsBadAccount(t *testing.T) {
	c, _ := newFakeTenant(t).newClient(t)
	for _, acct := range []string{"", "a b@c.com", "x\n@y.com"} {
		if _, err := c.SignIns(context.Background(), acct, time.Now()); err == nil {
			t.Errorf("account %q accepted", acct)
		}
	}
}
