package teams

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testAppID      = "11111111-2222-3333-4444-555555555555"
	testServiceURL = "http://localhost:56150/_connector"
)

var (
	keyOnce          sync.Once
	keyA, keyB, keyC *rsa.PrivateKey
)

func testKeys(t testing.TB) (a, b, c *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&keyA, &keyB, &keyC} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
	return keyA, keyB, keyC
}

// keyServer serves OpenID metadata and a JWKS, counting fetches of each.
type keyServer struct {
	*httptest.Server
	metadataHits atomic.Int32
	jwksHits     atomic.Int32
	mu           sync.Mutex
	keys         map[string]*rsa.PublicKey
	// endorsements overrides a key's endorsements (default: msteams).
	endorsements map[string][]string
}

func newKeyServer(t testing.TB, keys map[string]*rsa.PublicKey) *keyServer {
	ks := &keyServer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/.well-known/openidconfiguration", func(w http.ResponseWriter, r *http.Request) {
		ks.metadataHits.Add(1)
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                "https://api.botframework.com",
			"authorization_endpoint":                "https://invalid.botframework.com",
			"jwks_uri":                              ks.URL + "/v1/.well-known/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		})
	})
	mux.HandleFunc("/v1/.well-known/keys", func(w http.ResponseWriter, r *http.Request) {
		ks.jwksHits.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		var keys []map[string]any
		for kid, pub := range ks.keys {
			endorsements, ok := ks.endorsements[kid]
			if !ok {
				endorsements = []string{"msteams"}
			}
			keys = append(keys, map[string]any{
				"kty": "RSA", "use": "sig", "kid": kid,
				"n":            base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
				"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
				"endorsements": endorsements,
			})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	ks.Server = httptest.NewServer(mux)
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) setKeys(keys map[string]*rsa.PublicKey) {
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
}

// testNow is the fixed clock of the JWT tests.
var testNow = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func newAuthAdapter(t *testing.T, ks *keyServer) *Adapter {
	t.Helper()
	a, err := New(Config{
		AppID: testAppID, AppPassword: "not-a-real-secret", AppTenantID: playgroundTenant,
		AuthorityURL: "https://127.0.0.1:1", OpenIDURL: ks.URL + "/v1/.well-known/openidconfiguration",
		ListenAddr: ":3978", HTTPClient: ks.Client(), Logger: quietLogger(),
		Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        "https://api.botframework.com",
		"aud":        testAppID,
		"exp":        testNow.Add(time.Hour).Unix(),
		"nbf":        testNow.Add(-time.Minute).Unix(),
		"serviceurl": testServiceURL,
	}
}

func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// post sends the personal-message fixture (text "c2 status") with the
// given Authorization header to the adapter's handler.
func post(t *testing.T, a *Adapter, authz string) int {
	t.Helper()
	body := withFields(t, fixture(t, "playground_personal_message.json"), map[string]any{"text": "c2 status", "serviceUrl": testServiceURL})
	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	return rec.Code
}

func TestInboundJWT(t *testing.T) {
	kA, _, kC := testKeys(t)
	modified := func(f func(c jwt.MapClaims)) jwt.MapClaims {
		c := validClaims()
		f(c)
		return c
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: func() []byte {
		b, _ := x509.MarshalPKIXPublicKey(&kA.PublicKey)
		return b
	}()})
	hs256 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims())
		tok.Header["kid"] = "kA"
		s, err := tok.SignedString(pubPEM)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims())
		tok.Header["kid"] = "kA"
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tampered := func() string {
		s := sign(t, kA, "kA", validClaims())
		parts := strings.Split(s, ".")
		// Change the payload, keep the signature.
		c := validClaims()
		c["aud"] = testAppID
		c["serviceurl"] = "https://evil.example/"
		payload, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}
	flipped := func() string {
		s := sign(t, kA, "kA", validClaims())
		b := []byte(s)
		i := len(b) - 5
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name  string
		authz string
		want  int
	}{
		{"valid", "Bearer " + sign(t, kA, "kA", validClaims()), http.StatusOK},
		{"valid within leeway", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Minute).Unix() })), http.StatusOK},
		{"no header", "", http.StatusUnauthorized},
		{"not bearer", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"wrong audience", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), http.StatusUnauthorized},
		{"no audience", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { delete(c, "aud") })), http.StatusUnauthorized},
		{"wrong issuer", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/tenant/" })), http.StatusUnauthorized},
		{"expired", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Hour).Unix() })), http.StatusUnauthorized},
		{"no expiry", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { delete(c, "exp") })), http.StatusUnauthorized},
		{"not yet valid", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Hour).Unix() })), http.StatusUnauthorized},
		{"serviceurl mismatch", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { c["serviceurl"] = "https://evil.example/_connector" })), http.StatusUnauthorized},
		{"no serviceurl", "Bearer " + sign(t, kA, "kA", modified(func(c jwt.MapClaims) { delete(c, "serviceurl") })), http.StatusUnauthorized},
		{"alg none", "Bearer " + none(), http.StatusUnauthorized},
		{"HS256 with the public key", "Bearer " + hs256(), http.StatusUnauthorized},
		{"tampered payload", "Bearer " + tampered(), http.StatusUnauthorized},
		{"flipped signature", "Bearer " + flipped(), http.StatusUnauthorized},
		{"signed by another key under a known kid", "Bearer " + sign(t, kC, "kA", validClaims()), http.StatusUnauthorized},
		{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, map[string]*rsa.PublicKey{"kA": &kA.PublicKey})
			a := newAuthAdapter(t, ks)
			rec := &recorder{}
			a.Attach(rec)
			if got := post(t, a, tc.authz); got != tc.want {
				t.Fatalf("status = %d, want %d", got, tc.want)
			}
			n := len(rec.commands())
			if tc.want == http.StatusOK && n != 1 {
				t.Fatalf("accepted request dispatched %d commands, want 1", n)
			}
			if tc.want != http.StatusOK && n != 0 {
				t.Fatalf("refused request dispatched %d commands", n)
			}
		})
	}
}

func TestInboundKeysCachedAndRefreshedOnUnknownKID(t *testing.T) {
	kA, kB, _ := testKeys(t)
	ks := newKeyServer(t, map[string]*rsa.PublicKey{"kA": &kA.PublicKey})
	a := newAuthAdapter(t, ks)
	rec := &recorder{}
	a.Attach(rec)

	good := "Bearer " + sign(t, kA, "kA", validClaims())
	for i := 0; i < 20; i++ {
		if got := post(t, a, good); got != http.StatusOK {
			t.Fatalf("request %d: status %d", i, got)
		}
	}
	if m, k := ks.metadataHits.Load(), ks.jwksHits.Load(); m != 1 || k != 1 {
		t.Fatalf("20 requests fetched metadata %d times and keys %d times, want 1 and 1", m, k)
	}

	// A kid the cached set does not know: one refresh, then 401.
	unknown := "Bearer " + sign(t, kB, "kB", validClaims())
	if got := post(t, a, unknown); got != http.StatusUnauthorized {
		t.Fatalf("unknown kid: status %d, want 401", got)
	}
	if k := ks.jwksHits.Load(); k != 2 {
		t.Fatalf("unknown kid: keys fetched %d times in all, want 2 (one refresh)", k)
	}
	// More unknown kids within the rate limit: no more fetches.
	for i := 0; i < 5; i++ {
		if got := post(t, a, unknown); got != http.StatusUnauthorized {
			t.Fatalf("unknown kid again: status %d", got)
		}
	}
	if k := ks.jwksHits.Load(); k != 2 {
		t.Fatalf("repeated unknown kids fetched keys %d times in all, want still 2", k)
	}
	if got := post(t, a, good); got != http.StatusOK {
		t.Fatalf("known kid after refresh: status %d", got)
	}
	if n := len(rec.commands()); n != 21 {
		t.Fatalf("dispatched %d commands, want 21", n)
	}
}

func TestInboundKeyRotation(t *testing.T) {
	kA, kB, _ := testKeys(t)
	ks := newKeyServer(t, map[string]*rsa.PublicKey{"kA": &kA.PublicKey})
	a := newAuthAdapter(t, ks)
	a.Attach(&recorder{})
	if got := post(t, a, "Bearer "+sign(t, kA, "kA", validClaims())); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	// The Bot Framework rotates to a new key: the first token signed with
	// it triggers a refresh and is accepted.
	ks.setKeys(map[string]*rsa.PublicKey{"kB": &kB.PublicKey})
	if got := post(t, a, "Bearer "+sign(t, kB, "kB", validClaims())); got != http.StatusOK {
		t.Fatalf("rotated key: status %d, want 200", got)
	}
	// The old key is gone from the refreshed set.
	if got := post(t, a, "Bearer "+sign(t, kA, "kA", validClaims())); got != http.StatusUnauthorized {
		t.Fatalf("removed key: status %d, want 401", got)
	}
}

func TestInboundKeysUnavailable(t *testing.T) {
	kA, _, _ := testKeys(t)
	ks := newKeyServer(t, nil)
	a := newAuthAdapter(t, ks)
	rec := &recorder{}
	a.Attach(rec)
	ks.Close()
	if got := post(t, a, "Bearer "+sign(t, kA, "kA", validClaims())); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
	if len(rec.commands()) != 0 {
		t.Fatal("dispatched without verification")
	}
}
