package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenWithSecret(t *testing.T) {
	clock := newClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	s := start(t, Options{Now: clock.Now})
	status, out := postForm(t, s, s.opts.TenantID, secretForm(s))
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, out)
	}
	if out["token_type"] != "Bearer" || out["expires_in"] != 3599.0 || out["ext_expires_in"] != 3599.0 {
		t.Errorf("token response %v", out)
	}
	tok, _ := out["access_token"].(string)
	if tok == "" {
		t.Fatal("no access_token")
	}
	if r := call(t, s, "GET", "/policies/identitySecurityDefaultsEnforcementPolicy", tok, nil); r.status != http.StatusOK {
		t.Fatalf("Graph with the issued token: %d %s", r.status, r.body)
	}
	// The token expires 3599 s after issue on the sandbox clock.
	clock.Add(3599 * time.Second)
	r := call(t, s, "GET", "/policies/identitySecurityDefaultsEnforcementPolicy", tok, nil)
	if r.status != http.StatusUnauthorized || graphErrorCode(t, r) != "InvalidAuthenticationToken" {
		t.Fatalf("expired token: %d %s", r.status, r.body)
	}
}

func TestTokenErrors(t *testing.T) {
	s := start(t, Options{})
	with := func(k, v string) url.Values {
		f := secretForm(s)
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		err    string
		code   float64
	}{
		{"bad secret", s.opts.TenantID, with("client_secret", "nope"), 401, "invalid_client", 7000215},
		{"no credential", s.opts.TenantID, with("client_secret", ""), 401, "invalid_client", 7000218},
		{"unknown tenant", "11111111-2222-4333-8444-555555555555", secretForm(s), 400, "invalid_request", 90002},
		{"unknown client", s.opts.TenantID, with("client_id", "11111111-2222-4333-8444-555555555555"), 400, "unauthorized_client", 700016},
		{"scope without .default", s.opts.TenantID, with("scope", s.URL()+"/Policy.Read.All"), 400, "invalid_scope", 1002012},
		{"unknown resource", s.opts.TenantID, with("scope", "https://vault.azure.net/.default"), 400, "invalid_resource", 500011},
		{"wrong grant", s.opts.TenantID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003},
		{"missing client_id", s.opts.TenantID, with("client_id", ""), 400, "invalid_request", 900144},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postForm(t, s, tc.tenant, tc.form)
			if status != tc.status || out["error"] != tc.err {
				t.Fatalf("got %d %v, want %d %s", status, out["error"], tc.status, tc.err)
			}
			codes, _ := out["error_codes"].([]any)
			if len(codes) != 1 || codes[0] != tc.code {
				t.Errorf("error_codes %v, want [%v]", out["error_codes"], tc.code)
			}
			for _, k := range []string{"error_description", "timestamp", "trace_id", "correlation_id"} {
				if _, ok := out[k]; !ok {
					t.Errorf("missing %s", k)
				}
			}
			if _, leaked := out["access_token"]; leaked {
				t.Error("access_token in an error")
			}
		})
	}
	// The secret never comes back in an error.
	_, out := postForm(t, s, s.opts.TenantID, with("client_secret", "nope"))
	if desc, _ := out["error_description"].(string); containsAny(desc, s.opts.ClientSecret, "nope") {
		t.Errorf("error_description echoes a secret: %s", desc)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if x != "" && strings.Contains(s, x) {
			return true
		}
	}
	return false
}

type testCert struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "c2bot app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The app's PEM file holds key and certificate; the sandbox finds the certificate.
	return testCert{key: key, cert: c, certPEM: append(keyPEM, certPEM...)}
}

func assertion(t *testing.T, tc testCert, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	sum := sha256.Sum256(tc.cert.Raw)
	tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	signed, err := tok.SignedString(tc.key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestTokenWithCertificateAssertion(t *testing.T) {
	app := newTestCert(t)
	other := newTestCert(t)
	s := start(t, Options{ClientCertPEM: app.certPEM})
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"aud": s.URL() + "/" + s.opts.TenantID + "/oauth2/v2.0/token",
			"iss": s.opts.ClientID,
			"sub": s.opts.ClientID,
			"jti": newGUID(),
			"nbf": time.Now().Unix(),
			"exp": time.Now().Add(10 * time.Minute).Unix(),
		}
		if change != nil {
			change(c)
		}
		return c
	}
	// A signature by another key that claims the app certificate's thumbprint.
	forged := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodPS256, claims(nil))
		sum := sha256.Sum256(app.cert.Raw)
		tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
		signed, err := tok.SignedString(other.key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}()
	tests := []struct {
		name      string
		assertion string
		status    int
		code      float64
	}{
		{"PS256", assertion(t, app, jwt.SigningMethodPS256, claims(nil)), 200, 0},
		{"RS256", assertion(t, app, jwt.SigningMethodRS256, claims(nil)), 200, 0},
		{"audience is the issuer", assertion(t, app, jwt.SigningMethodPS256, claims(func(c jwt.MapClaims) { c["aud"] = s.issuer() })), 200, 0},
		{"unregistered certificate", assertion(t, other, jwt.SigningMethodPS256, claims(nil)), 401, 700027},
		{"forged signature", forged, 401, 700027},
		{"expired", assertion(t, app, jwt.SigningMethodPS256, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), 401, 700024},
		{"no exp", assertion(t, app, jwt.SigningMethodPS256, claims(func(c jwt.MapClaims) { delete(c, "exp") })), 401, 700024},
		{"wrong audience", assertion(t, app, jwt.SigningMethodPS256, claims(func(c jwt.MapClaims) { c["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token" })), 401, 700212},
		{"wrong issuer", assertion(t, app, jwt.SigningMethodPS256, claims(func(c jwt.MapClaims) { c["iss"] = "someone-else" })), 401, 700021},
		{"HS256", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte("k"))
			return s
		}(), 401, 700027},
		{"garbage", "not.a.jwt", 401, 50027},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{
				"grant_type":            {"client_credentials"},
				"client_id":             {s.opts.ClientID},
				"scope":                 {"https://graph.microsoft.com/.default"},
				"client_assertion_type": {assertionType},
				"client_assertion":      {tc.assertion},
			}
			status, out := postForm(t, s, s.opts.TenantID, form)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			if tc.status == 200 {
				tok, _ := out["access_token"].(string)
				if r := call(t, s, "GET", "/admin/sharepoint/settings", tok, nil); r.status != 200 {
					t.Fatalf("Graph with assertion token: %d", r.status)
				}
				return
			}
			if out["error"] != "invalid_client" {
				t.Errorf("error %v", out["error"])
			}
			if codes, _ := out["error_codes"].([]any); len(codes) != 1 || codes[0] != tc.code {
				t.Errorf("error_codes %v, want [%v]", out["error_codes"], tc.code)
			}
		})
	}

	t.Run("no certificate registered", func(t *testing.T) {
		s2 := start(t, Options{})
		form := url.Values{
			"grant_type":            {"client_credentials"},
			"client_id":             {s2.opts.ClientID},
			"scope":                 {s2.URL() + "/.default"},
			"client_assertion_type": {assertionType},
			"client_assertion":      {assertion(t, app, jwt.SigningMethodPS256, claims(nil))},
		}
		if status, out := postForm(t, s2, s2.opts.TenantID, form); status != 401 || out["error"] != "invalid_client" {
			t.Fatalf("got %d %v", status, out)
		}
	})
}

func TestOpenIDConfiguration(t *testing.T) {
	s := start(t, Options{})
	get := func(path string) (int, map[string]any) {
		resp, err := s.Client().Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	status, doc := get("/" + s.opts.TenantID + "/v2.0/.well-known/openid-configuration")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	want := map[string]string{
		"issuer":                 s.URL() + "/" + s.opts.TenantID + "/v2.0",
		"token_endpoint":         s.URL() + "/" + s.opts.TenantID + "/oauth2/v2.0/token",
		"authorization_endpoint": s.URL() + "/" + s.opts.TenantID + "/oauth2/v2.0/authorize",
		"jwks_uri":               s.URL() + "/" + s.opts.TenantID + "/discovery/v2.0/keys",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %s", k, doc[k], v)
		}
	}
	if status, keys := get("/" + s.opts.TenantID + "/discovery/v2.0/keys"); status != 200 || keys["keys"] == nil {
		t.Errorf("jwks: %d %v", status, keys)
	}
	if status, doc := get("/common/v2.0/.well-known/openid-configuration"); status != 200 || doc["issuer"] != s.URL()+"/{tenantid}/v2.0" {
		t.Errorf("common: %d %v", status, doc["issuer"])
	}
	if status, doc := get("/11111111-2222-4333-8444-555555555555/v2.0/.well-known/openid-configuration"); status != 400 || doc["error"] != "invalid_tenant" {
		t.Errorf("unknown tenant: %d %v", status, doc)
	}
	status, disc := get("/common/discovery/instance?api-version=1.1&authorization_endpoint=" +
		url.QueryEscape(s.URL()+"/"+s.opts.TenantID+"/oauth2/v2.0/authorize"))
	if status != 200 || disc["tenant_discovery_endpoint"] != s.URL()+"/"+s.opts.TenantID+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("instance discovery: %d %v", status, disc)
	}
}
