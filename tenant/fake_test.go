package tenant

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testTenantID = "11111111-2222-4333-8444-555555555555"
	testClientID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	testSecret   = "s3cr3t-value-never-shown"
	testAccount  = "svc-backup@contoso.com"
	testUserID   = "26be570a-ae82-4189-b4e2-a37c6808512d"
	testToken    = "fake-access-token"
)

// recorded is one request the fake Graph received.
type recorded struct {
	Method          string
	Path            string // after /v1.0
	Query           url.Values
	Body            []byte
	ContentEncoding string
	Authorization   string
}

// failRule makes matching Graph requests fail.
type failRule struct {
	method, prefix string
	status         int
	retryAfter     string
	body           []byte
	contentType    string
	times          int // <= 0: always
}

// fakeTenant is an httptest TLS server speaking the Entra endpoints MSAL
// uses and the Graph endpoints the client uses, with state built from the
// official fixtures.
type fakeTenant struct {
	t   *testing.T
	srv *httptest.Server

	// certificate the app may sign its client assertion with
	cert *x509.Certificate

	mu             sync.Mutex
	securityOn     bool
	legacyAuth     bool
	invitedMatch   bool
	policies       []map[string]any
	signIns        []map[string]any
	users          map[string]string // upn (lower case) → id
	requests       []recorded
	tokenRequests  []url.Values
	fails          []*failRule
	signInPageSize int
	nextLinkHost   string // when set, paging links point there
	// federated are the workload identity tokens accepted as client
	// assertions (a federated credential of the app).
	federated map[string]bool
	// tokenLifetime is expires_in of issued tokens; zero means 3599.
	tokenLifetime int
	// echoToken makes the token endpoint refuse every request and quote
	// it back — headers and raw body — as a careless authority or a proxy's
	// error page might.
	echoToken bool
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureMap(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func newFakeTenant(t *testing.T) *fakeTenant {
	t.Helper()
	f := &fakeTenant{
		t:            t,
		securityOn:   true,
		legacyAuth:   false,
		invitedMatch: true,
		users:        map[string]string{strings.ToLower(testAccount): testUserID},
	}
	for _, p := range fixtureMap(t, "ca_policies_list_200.json")["value"].([]any) {
		f.policies = append(f.policies, p.(map[string]any))
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	// Handshakes cut short when the test closes the server are expected.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTenant) URL() string { return f.srv.URL }

// config is a client configuration pointing at the fake, with a secret.
func (f *fakeTenant) config() Config {
	return Config{
		TenantID:     testTenantID,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		GraphURL:     f.srv.URL,
		AuthorityURL: f.srv.URL,
		HTTPClient:   f.srv.Client(),
	}
}

// newClient builds a client whose retry sleeps are recorded, not slept.
func (f *fakeTenant) newClient(t *testing.T, mod ...func(*Config)) (*Client, *sleepRecorder) {
	t.Helper()
	cfg := f.config()
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sleepRecorder{}
	c.retry.sleep = rec.sleep
	c.retry.jitter = func(int64) int64 { return 0 }
	return c, rec
}

type sleepRecorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

func (f *fakeTenant) fail(r failRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, &r)
}

func (f *fakeTenant) graphRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeTenant) serve(w http.ResponseWriter, r *http.Request) {
	if path, ok := strings.CutPrefix(r.URL.Path, "/v1.0"); ok {
		f.serveGraph(w, r, path)
		return
	}
	f.serveEntra(w, r)
}

// serveEntra answers what MSAL fetches with instance discovery off: the
// tenant's OpenID configuration, then the token endpoint.
func (f *fakeTenant) serveEntra(w http.ResponseWriter, r *http.Request) {
	base := f.srv.URL + "/" + testTenantID
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/"+testTenantID+"/v2.0/.well-known/openid-configuration":
		writeJSONTest(w, http.StatusOK, map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+testTenantID+"/oauth2/v2.0/token" && f.echoTokenOn():
		raw, _ := io.ReadAll(r.Body)
		var hdr strings.Builder
		_ = r.Header.Write(&hdr)
		writeJSONTest(w, http.StatusBadRequest, map[string]any{
			"error":             "invalid_request",
			"error_description": "AADSTS900144: could not parse the request: " + string(raw) + "\n" + hdr.String(),
			"error_codes":       []int{900144},
			"request_body":      string(raw),
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+testTenantID+"/oauth2/v2.0/token":
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.tokenRequests = append(f.tokenRequests, r.PostForm)
		f.mu.Unlock()
		if msg := f.checkClient(r.PostForm, base+"/oauth2/v2.0/token"); msg != "" {
			writeJSONTest(w, http.StatusUnauthorized, map[string]any{
				"error":             "invalid_client",
				"error_description": "AADSTS7000215: " + msg,
				"error_codes":       []int{7000215},
			})
			return
		}
		f.mu.Lock()
		lifetime := f.tokenLifetime
		f.mu.Unlock()
		if lifetime == 0 {
			lifetime = 3599
		}
		writeJSONTest(w, http.StatusOK, map[string]any{
			"token_type":   "Bearer",
			"expires_in":   lifetime,
			"access_token": testToken,
		})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeTenant) echoTokenOn() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.echoToken
}

// checkClient validates the client credentials; "" means accepted.
func (f *fakeTenant) checkClient(form url.Values, tokenURL string) string {
	if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != testClientID {
		return "bad grant or client id"
	}
	// MSAL adds openid, offline_access and profile.
	if want := f.srv.URL + "/.default"; !slices.Contains(strings.Fields(form.Get("scope")), want) {
		return fmt.Sprintf("scope %q, want %q", form.Get("scope"), want)
	}
	if s := form.Get("client_secret"); s != "" {
		if s != testSecret {
			// Echoes what it was sent, so that tests see the client redact it.
			return "Invalid client secret provided: " + s
		}
		return ""
	}
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return "no credential"
	}
	f.mu.Lock()
	federated := f.federated[form.Get("client_assertion")]
	f.mu.Unlock()
	if federated {
		return ""
	}
	if f.cert == nil {
		return "no credential"
	}
	tok, err := jwt.Parse(form.Get("client_assertion"), func(*jwt.Token) (any, error) {
		return f.cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithAudience(tokenURL), jwt.WithIssuer(testClientID))
	if err != nil || !tok.Valid {
		return fmt.Sprintf("bad client assertion: %v", err)
	}
	return ""
}

func writeJSONTest(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeTenant) serveGraph(w http.ResponseWriter, r *http.Request, path string) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, recorded{
		Method: r.Method, Path: path, Query: r.URL.Query(), Body: body,
		ContentEncoding: r.Header.Get("Content-Encoding"), Authorization: r.Header.Get("Authorization"),
	})
	w.Header().Set("request-id", fmt.Sprintf("req-%d", len(f.requests)))
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		writeJSONTest(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
			"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
		return
	}
	for _, fr := range f.fails {
		if fr.times == -1 || (fr.method != "" && fr.method != r.Method) || !strings.HasPrefix(path, fr.prefix) {
			continue
		}
		if fr.times > 0 {
			fr.times--
			if fr.times == 0 {
				fr.times = -1
			}
		}
		if fr.retryAfter != "" {
			w.Header().Set("Retry-After", fr.retryAfter)
		}
		ct := fr.contentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(fr.status)
		_, _ = w.Write(fr.body)
		return
	}
	switch {
	case path == "/policies/identitySecurityDefaultsEnforcementPolicy":
		f.securityDefaults(w, r, body)
	case path == "/admin/sharepoint/settings":
		f.sharepoint(w, r, body)
	case path == "/identity/conditionalAccess/policies" && r.Method == http.MethodGet:
		writeJSONTest(w, http.StatusOK, map[string]any{"value": f.policies})
	case strings.HasPrefix(path, "/identity/conditionalAccess/policies/"):
		f.policy(w, r, strings.TrimPrefix(path, "/identity/conditionalAccess/policies/"), body)
	case strings.HasPrefix(path, "/users/") && strings.HasSuffix(path, "/transitiveMemberOf") && r.Method == http.MethodGet:
		// The tool account is in no group and holds no role.
		writeJSONTest(w, http.StatusOK, map[string]any{"value": []any{}})
	case strings.HasPrefix(path, "/users/") && r.Method == http.MethodGet:
		upn, _ := url.PathUnescape(strings.TrimPrefix(path, "/users/"))
		id, ok := f.users[strings.ToLower(upn)]
		if !ok {
			writeJSONTest(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "Request_ResourceNotFound", "message": "not found"}})
			return
		}
		writeJSONTest(w, http.StatusOK, map[string]any{"id": id, "userPrincipalName": upn})
	case path == "/auditLogs/signIns" && r.Method == http.MethodGet:
		f.signInPage(w, r)
	default:
		writeJSONTest(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "BadRequest", "message": "no route " + path}})
	}
}

func (f *fakeTenant) securityDefaults(w http.ResponseWriter, r *http.Request, body []byte) {
	switch r.Method {
	case http.MethodGet:
		m := fixtureMap(f.t, "security_defaults_get_200.json")
		m["isEnabled"] = f.securityOn
		writeJSONTest(w, http.StatusOK, m)
	case http.MethodPatch:
		var req struct {
			IsEnabled *bool `json:"isEnabled"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.IsEnabled == nil {
			writeJSONTest(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "BadRequest"}})
			return
		}
		f.securityOn = *req.IsEnabled
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeTenant) sharepoint(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method == http.MethodPatch {
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSONTest(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "BadRequest"}})
			return
		}
		if v, ok := req["isLegacyAuthProtocolsEnabled"].(bool); ok {
			f.legacyAuth = v
		}
		if v, ok := req["isRequireAcceptingUserToMatchInvitedUserEnabled"].(bool); ok {
			f.invitedMatch = v
		}
	}
	// The documentation example, malformed GUID included.
	m := fixtureMap(f.t, "sharepoint_settings_get_200.unwrapped.json")
	m["isLegacyAuthProtocolsEnabled"] = f.legacyAuth
	m["isRequireAcceptingUserToMatchInvitedUserEnabled"] = f.invitedMatch
	writeJSONTest(w, http.StatusOK, m)
}

func (f *fakeTenant) policy(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	for _, p := range f.policies {
		if p["id"] != id {
			continue
		}
		switch r.Method {
		case http.MethodGet:
			writeJSONTest(w, http.StatusOK, p)
		case http.MethodPatch:
			var req struct {
				Conditions struct {
					Users              map[string]any `json:"users"`
					ClientApplications map[string]any `json:"clientApplications"`
				} `json:"conditions"`
			}
			if err := json.Unmarshal(body, &req); err != nil || (req.Conditions.Users == nil) == (req.Conditions.ClientApplications == nil) {
				writeJSONTest(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "BadRequest"}})
				return
			}
			cond := p["conditions"].(map[string]any)
			for name, sent := range map[string]map[string]any{"users": req.Conditions.Users, "clientApplications": req.Conditions.ClientApplications} {
				if sent == nil {
					continue
				}
				cur, _ := cond[name].(map[string]any)
				if cur == nil {
					cur = map[string]any{}
					cond[name] = cur
				}
				for k, v := range sent {
					cur[k] = v // Graph replaces each list it is sent
				}
			}
			w.WriteHeader(http.StatusNoContent)
		}
		return
	}
	writeJSONTest(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "ResourceNotFound", "message": "no policy"}})
}

// signInPage serves sign-ins matching the filter's account, paged with a
// skiptoken like Graph.
func (f *fakeTenant) signInPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := f.signInPageSize
	if size <= 0 {
		size = len(f.signIns) + 1
	}
	start := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		fmt.Sscanf(tok, "%d", &start)
	} else if !strings.Contains(q.Get("$filter"), "userPrincipalName eq ") {
		writeJSONTest(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "BadRequest", "message": "no filter"}})
		return
	}
	end := min(start+size, len(f.signIns))
	page := map[string]any{"value": f.signIns[start:end]}
	if end < len(f.signIns) {
		host := f.srv.URL
		if f.nextLinkHost != "" {
			host = f.nextLinkHost
		}
		page["@odata.nextLink"] = fmt.Sprintf("%s/v1.0/auditLogs/signIns?$top=%d&$skiptoken=%d", host, size, end)
	}
	writeJSONTest(w, http.StatusOK, page)
}

// signIn builds a sign-in entry from the documentation example.
func signIn(t *testing.T, at time.Time, code int, reason, app, ca string) map[string]any {
	t.Helper()
	m := fixtureMap(t, "signins_list_200.json")["value"].([]any)[0].(map[string]any)
	m["createdDateTime"] = at.UTC().Format(time.RFC3339Nano)
	m["userPrincipalName"] = testAccount
	m["clientAppUsed"] = app
	m["conditionalAccessStatus"] = ca
	status := map[string]any{"errorCode": code, "failureReason": nil, "additionalDetails": nil}
	if reason != "" {
		status["failureReason"] = reason
	}
	m["status"] = status
	return m
}

// caPolicyJSON builds a policy in Graph's shape.
func caPolicyJSON(id, name, state string, clientApps, controls, includeUsers, excludeUsers, includeGroups []string) map[string]any {
	b, _ := json.Marshal(map[string]any{
		"id": id, "displayName": name, "state": state,
		"conditions": map[string]any{
			"clientAppTypes": clientApps,
			"applications":   map[string]any{"includeApplications": []string{"All"}, "excludeApplications": []string{}},
			"users": map[string]any{
				"includeUsers": includeUsers, "excludeUsers": excludeUsers,
				"includeGroups": includeGroups, "excludeGroups": []string{},
				"includeRoles": []string{}, "excludeRoles": []string{"62e90394-69f5-4237-9190-012177145e10"},
			},
		},
		"grantControls": map[string]any{"operator": "OR", "builtInControls": controls},
	})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// writeCertPEM writes a self-signed certificate and its key to a PEM file
// and returns the path and the certificate.
func writeCertPEM(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "c2bot test app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, cert
}
