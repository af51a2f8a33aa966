package teams

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// formTokenServer is an Entra token endpoint that records every form it is
// sent and answers with short-lived tokens, so MSAL asks again each time.
type formTokenServer struct {
	*httptest.Server
	mu    sync.Mutex
	forms []map[string]string
}

func newFormTokenServer(t *testing.T) *formTokenServer {
	ts := &formTokenServer{}
	ts.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
			json.NewEncoder(w).Encode(map[string]any{
				"token_endpoint":         ts.URL + "/tenant-1/oauth2/v2.0/token",
				"authorization_endpoint": ts.URL + "/tenant-1/oauth2/v2.0/authorize",
				"issuer":                 ts.URL + "/tenant-1/v2.0",
			})
		case r.URL.Path == "/tenant-1/oauth2/v2.0/token":
			r.ParseForm()
			f := map[string]string{}
			for k := range r.PostForm {
				f[k] = r.PostForm.Get(k)
			}
			ts.mu.Lock()
			ts.forms = append(ts.forms, f)
			n := len(ts.forms)
			ts.mu.Unlock()
			// 60 s is inside MSAL's five-minute refresh margin: the next
			// call asks again.
			json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 60, "access_token": "bf-token-" + string(rune('0'+n))})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *formTokenServer) recorded() []map[string]string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]map[string]string(nil), ts.forms...)
}

func writeCertPEM(t *testing.T) (path string, cert *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "c2bot-bot"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	var b strings.Builder
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&b, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	path = filepath.Join(t.TempDir(), "bot.pem")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, cert
}

func TestOutboundTokenWithCertificate(t *testing.T) {
	ts := newFormTokenServer(t)
	fc := newFakeConnector(t)
	certFile, cert := writeCertPEM(t)
	a, err := New(Config{
		AppID: testAppID, AppCertFile: certFile, AppTenantID: "tenant-1",
		AuthorityURL: ts.URL, ListenAddr: ":3978", HTTPClient: ts.Client(), Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL)
	if _, err := a.Post(bg, conv, sampleMsg); err != nil {
		t.Fatal(err)
	}
	forms := ts.recorded()
	if len(forms) != 1 {
		t.Fatalf("token requests = %d, want 1", len(forms))
	}
	f := forms[0]
	if f["client_secret"] != "" || f["client_assertion_type"] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Fatalf("form = %v, want a client assertion and no secret", f)
	}
	tok, err := jwt.Parse(f["client_assertion"], func(*jwt.Token) (any, error) { return cert.PublicKey, nil })
	if err != nil {
		t.Fatalf("assertion not signed by the bot's certificate: %v", err)
	}
	if sub, _ := tok.Claims.GetSubject(); sub != testAppID {
		t.Errorf("assertion sub = %q, want the app id", sub)
	}
	if got := fc.recorded()[0].Authorization; got != "Bearer bf-token-1" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestOutboundTokenWithFederatedFileReadAfresh(t *testing.T) {
	ts := newFormTokenServer(t)
	fc := newFakeConnector(t)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("federated-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		AppID: testAppID, FederatedTokenFile: file, AppTenantID: "tenant-1", TokenScope: "https://api.botframework.us/.default",
		AuthorityURL: ts.URL, ListenAddr: ":3978", HTTPClient: ts.Client(), Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL)
	if _, err := a.Post(bg, conv, sampleMsg); err != nil {
		t.Fatal(err)
	}
	// The platform rotates the file; the next token request must carry the new one.
	if err := os.WriteFile(file, []byte("federated-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Post(bg, conv, sampleMsg); err != nil {
		t.Fatal(err)
	}
	forms := ts.recorded()
	if len(forms) != 2 {
		t.Fatalf("token requests = %d, want 2", len(forms))
	}
	for i, want := range []string{"federated-one", "federated-two"} {
		if forms[i]["client_assertion"] != want {
			t.Errorf("request %d assertion = %q, want %q", i, forms[i]["client_assertion"], want)
		}
		if !strings.Contains(forms[i]["scope"], "https://api.botframework.us/.default") {
			t.Errorf("request %d scope = %q, want the configured cloud's", i, forms[i]["scope"])
		}
	}
}

func TestOutboundTokenWithManagedIdentity(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	mi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != "local-header" {
			http.Error(w, "no identity header", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": "mi-token", "token_type": "Bearer",
			"expires_on": time.Now().Add(time.Hour).Unix(), "resource": r.URL.Query().Get("resource"),
		})
	}))
	defer mi.Close()
	// The App Service managed identity protocol: MSAL reads these.
	t.Setenv("IDENTITY_ENDPOINT", mi.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "local-header")
	fc := newFakeConnector(t)
	a, err := New(Config{
		AppID: testAppID, ManagedIdentity: "11111111-2222-3333-4444-555555555555", AppTenantID: "tenant-1",
		TokenScope: "https://api.botframework.azure.cn/.default",
		ListenAddr: ":3978", HTTPClient: mi.Client(), Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := conversationFor(t, fixture(t, "playground_personal_message.json"), fc.URL)
	if _, err := a.Post(bg, conv, sampleMsg); err != nil {
		t.Fatal(err)
	}
	if got := fc.recorded()[0].Authorization; got != "Bearer mi-token" {
		t.Errorf("Authorization = %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 1 || !strings.Contains(queries[0], "client_id=11111111-2222-3333-4444-555555555555") ||
		!strings.Contains(queries[0], "resource=https%3A%2F%2Fapi.botframework.azure.cn") {
		t.Errorf("managed identity queries = %v", queries)
	}
}

func TestBotNeedsExactlyOneCredential(t *testing.T) {
	for name, cfg := range map[string]Config{
		"none": {AppID: testAppID, AppTenantID: "t", ListenAddr: ":3978"},
		"two":  {AppID: testAppID, AppTenantID: "t", AppPassword: "p", ManagedIdentity: "system", ListenAddr: ":3978"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// In a national cloud the inbound tokens carry that cloud's issuer: the
// public issuer is refused there, and the cloud's is refused in the public
// cloud.
func TestInboundIssuerFollowsTheCloud(t *testing.T) {
	ka, _, _ := testKeys(t)
	ks := newKeyServer(t, map[string]*rsa.PublicKey{"k1": &ka.PublicKey})
	gov, err := New(Config{
		AppID: testAppID, AppPassword: "not-a-real-secret", AppTenantID: playgroundTenant,
		AuthorityURL: "https://127.0.0.1:1", OpenIDURL: ks.URL + "/v1/.well-known/openidconfiguration",
		Issuer: "https://api.botframework.us", TokenScope: "https://api.botframework.us/.default",
		ListenAddr: ":3978", HTTPClient: ks.Client(), Logger: quietLogger(),
		Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	public := newAuthAdapter(t, ks)
	gov.Attach(&recorder{})
	public.Attach(&recorder{})
	govClaims := validClaims()
	govClaims["iss"] = "https://api.botframework.us"
	govToken := "Bearer " + sign(t, ka, "k1", govClaims)
	publicToken := "Bearer " + sign(t, ka, "k1", validClaims())
	if code := post(t, gov, govToken); code != http.StatusOK {
		t.Errorf("usgov adapter refused a usgov token: %d", code)
	}
	if code := post(t, gov, publicToken); code != http.StatusUnauthorized {
		t.Errorf("usgov adapter answered %d to a public-cloud token, want 401", code)
	}
	if code := post(t, public, govToken); code != http.StatusUnauthorized {
		t.Errorf("public adapter answered %d to a usgov token, want 401", code)
	}
}
