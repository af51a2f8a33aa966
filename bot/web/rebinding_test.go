package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleRefusesDNSRebinding is issue 8 item 8. A page on
// attacker.example whose name is re-pointed at 127.0.0.1 is the same
// origin as itself to the browser, so its requests carry a matching Host
// and Origin ("attacker.example:port"); comparing one with the other let it
// read the transcript and post commands. Only loopback names (and the
// configured listen address) are answered now, on GETs too.
func TestConsoleRefusesDNSRebinding(t *testing.T) {
	f := newFixture(t, Config{ListenAddr: "127.0.0.1:3978"})
	port := f.srv.URL[strings.LastIndex(f.srv.URL, ":")+1:]
	rebound := "attacker.example:" + port

	gets := []string{"/", "/console", "/console/static/app.js", "/console/api/users", "/console/api/messages?user=alice", "/console/api/events?user=alice"}
	for _, path := range gets {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
		req.Host = rebound
		if code, _ := do(t, req); code != http.StatusForbidden {
			t.Errorf("GET %s with Host %s: %d, want 403", path, rebound, code)
		}
	}
	posts := []struct{ path, body string }{
		{"/console/api/command", `{"user":"alice","text":"fix"}`},
		{"/console/api/click", `{"user":"bob","message":"m-1","button":0}`},
	}
	for _, p := range posts {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+p.path, strings.NewReader(p.body))
		req.Host = rebound
		req.Header.Set("Origin", "http://"+rebound) // what the rebound page sends: equal to Host
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Content-Type", "application/json")
		if code, _ := do(t, req); code != http.StatusForbidden {
			t.Errorf("POST %s from a rebound page: %d, want 403", p.path, code)
		}
	}
	if n := len(f.rec.all()); n != 0 {
		t.Fatalf("refused requests dispatched %d commands", n)
	}

	// Loopback names and the listen address are served.
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "127.0.0.2:" + port} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/console/api/users", nil)
		req.Host = host
		if code, _ := do(t, req); code != http.StatusOK {
			t.Errorf("GET with Host %s: %d, want 200", host, code)
		}
	}
}

// TestConsoleListenAddressHost: a Host equal to the configured listen
// address's host is served even when it is not a loopback literal.
func TestConsoleListenAddressHost(t *testing.T) {
	f := newFixture(t, Config{ListenAddr: "c2.internal.test:3978"})
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/console/api/users", nil)
	req.Host = "c2.internal.test:3978"
	if code, _ := do(t, req); code != http.StatusOK {
		t.Fatalf("listen host: %d, want 200", code)
	}
	req.Host = "c3.internal.test:3978"
	if code, _ := do(t, req); code != http.StatusForbidden {
		t.Fatalf("other host: %d, want 403", code)
	}
}

// TestConsoleRefusesOtherOrigins: state-changing requests from another
// origin are refused — a cross-site page, another local server on the same
// host (same-site), an Origin of another port or scheme.
func TestConsoleRefusesOtherOrigins(t *testing.T) {
	f := newFixture(t, Config{})
	u, _ := url.Parse(f.srv.URL)
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"cross-site Origin", map[string]string{"Origin": "https://evil.example"}},
		{"another local port", map[string]string{"Origin": "http://127.0.0.1:1"}},
		{"another loopback name", map[string]string{"Origin": "http://localhost:" + u.Port()}},
		{"rebound name equal to nothing", map[string]string{"Origin": "http://attacker.example:" + u.Port()}},
		{"null Origin", map[string]string{"Origin": "null"}},
		{"Sec-Fetch-Site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/console/api/command", strings.NewReader(`{"user":"alice","text":"fix"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		if code, _ := do(t, req); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, code)
		}
	}
	if n := len(f.rec.all()); n != 0 {
		t.Fatalf("refused requests dispatched %d commands", n)
	}
	// The console's own page: Origin equal to the Host it was served from.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/console/api/command", strings.NewReader(`{"user":"alice","text":"status"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", fmt.Sprintf("http://%s", u.Host))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if code, _ := do(t, req); code != http.StatusAccepted {
		t.Fatalf("own origin: %d, want 202", code)
	}
}
