package tenant

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A federated token file is read on every token request: Kubernetes and
// GitHub rotate it, so the second request must carry the new token.
func TestFederatedTokenFileReadOnEveryTokenRequest(t *testing.T) {
	f := newFakeTenant(t)
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte("workload-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.federated = map[string]bool{"workload-token-1": true, "workload-token-2": true}
	f.tokenLifetime = 60 // inside MSAL's refresh margin: every call asks again
	f.mu.Unlock()
	c, _ := f.newClient(t, func(cfg *Config) { cfg.ClientSecret = ""; cfg.FederatedTokenFile = file })
	ctx := context.Background()
	if _, err := c.getSecurityDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("workload-token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.getSecurityDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokenRequests) != 2 {
		t.Fatalf("token requests = %d, want 2", len(f.tokenRequests))
	}
	for i, want := range []string{"workload-token-1", "workload-token-2"} {
		if got := f.tokenRequests[i].Get("client_assertion"); got != want {
			t.Errorf("token request %d assertion = %q, want %q", i, got, want)
		}
		if f.tokenRequests[i].Get("client_secret") != "" {
			t.Errorf("token request %d sent a client secret", i)
		}
	}
}

func TestFederatedTokenFileMissingIsAnAuthError(t *testing.T) {
	f := newFakeTenant(t)
	missing := filepath.Join(t.TempDir(), "nope")
	c, _ := f.newClient(t, func(cfg *Config) { cfg.ClientSecret = ""; cfg.FederatedTokenFile = missing })
	_, err := c.getSecurityDefaults(context.Background())
	if err == nil || !IsAuthError(err) {
		t.Fatalf("err = %v, want an authentication error", err)
	}
}

// Managed identity: tokens come from the host's endpoint (the App Service
// protocol, which MSAL selects from IDENTITY_ENDPOINT and IDENTITY_HEADER),
// for the Graph resource, and Graph accepts them.
func TestManagedIdentityTokenForGraph(t *testing.T) {
	f := newFakeTenant(t)
	var mu sync.Mutex
	var queries []string
	mi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-IDENTITY-HEADER") != "local-secret-header" {
			http.Error(w, "missing header", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": testToken, "token_type": "Bearer",
			"expires_on": time.Now().Add(time.Hour).Unix(), "resource": r.URL.Query().Get("resource"),
		})
	}))
	defer mi.Close()
	t.Setenv("IDENTITY_ENDPOINT", mi.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "local-secret-header")
	var metrics countingMetrics
	c, _ := f.newClient(t, func(cfg *Config) {
		cfg.ClientSecret, cfg.ClientID, cfg.ManagedIdentity = "", "", ManagedIdentitySystem
		cfg.Metrics = &metrics
	})
	if _, err := c.getSecurityDefaults(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 1 || !strings.Contains(queries[0], "resource="+strings.ReplaceAll(strings.ReplaceAll(f.URL(), ":", "%3A"), "/", "%2F")) {
		t.Errorf("managed identity queries = %v, want the Graph resource %s", queries, f.URL())
	}
	if strings.Contains(queries[0], "client_id=") {
		t.Errorf("system-assigned identity sent a client id: %s", queries[0])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokenRequests) != 0 {
		t.Errorf("the Entra token endpoint was asked %d times", len(f.tokenRequests))
	}
	if metrics.calls["get_security_defaults/2xx"] != 1 {
		t.Errorf("graph call metrics = %v", metrics.calls)
	}
}

func TestConfigNeedsExactlyOneCredential(t *testing.T) {
	base := Config{TenantID: testTenantID, ClientID: testClientID}
	for name, mod := range map[string]func(*Config){
		"none":                 func(*Config) {},
		"secret and federated": func(c *Config) { c.ClientSecret = "s"; c.FederatedTokenFile = "/f" },
		"cert and managed":     func(c *Config) { c.CertFile = "/c"; c.ManagedIdentity = "system" },
		"no client id":         func(c *Config) { c.ClientID = ""; c.ClientSecret = "s" },
		"federated, no client": func(c *Config) { c.ClientID = ""; c.FederatedTokenFile = "/f" },
	} {
		cfg := base
		mod(&cfg)
		if err := cfg.CheckAndSetDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := base
	ok.ClientID, ok.ManagedIdentity = "", "0b1a7f3e-0000-4000-8000-000000000001"
	if err := ok.CheckAndSetDefaults(); err != nil {
		t.Errorf("user-assigned managed identity without client id: %v", err)
	}
}

// countingMetrics records what the client reports.
type countingMetrics struct {
	mu        sync.Mutex
	calls     map[string]int
	throttled map[string]int
	tokenFail int
}

func (m *countingMetrics) GraphCall(op, class string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[op+"/"+class]++
}

func (m *countingMetrics) GraphThrottled(op string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.throttled == nil {
		m.throttled = map[string]int{}
	}
	m.throttled[op]++
}

func (m *countingMetrics) TokenFailure() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokenFail++
}
