package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot"
)

// FuzzConsoleAPI sends arbitrary requests to the console's handler.
// Invariants: no panic; a request naming another Host (DNS rebinding) or
// coming from another origin runs nothing; a request that runs something is
// a same-origin JSON POST from a known user, and runs one command.
func FuzzConsoleAPI(f *testing.F) {
	seeds := []struct{ method, path, host, origin, ctype, body string }{
		{"POST", "/console/api/command", "127.0.0.1:3978", "", "application/json", `{"user":"alice","text":"/c2 diagnose"}`},
		{"POST", "/console/api/command", "localhost:3978", "http://localhost:3978", "application/json", `{"user":"bob","text":"fix --for 2h"}`},
		{"POST", "/console/api/command", "attacker.example:3978", "http://attacker.example:3978", "application/json", `{"user":"alice","text":"fix"}`},
		{"POST", "/console/api/command", "127.0.0.1:3978", "https://evil.example", "text/plain", `{"user":"alice","text":"fix"}`},
		{"POST", "/console/api/click", "127.0.0.1:3978", "", "application/json", `{"user":"bob","message":"m-1","button":0}`},
		{"GET", "/console/api/messages?user=alice", "[::1]:3978", "", "", ""},
		{"GET", "/console/api/users", "attacker.example", "", "", ""},
		{"GET", "/", "127.0.0.1", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.host, s.origin, s.ctype, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, host, origin, ctype, body string) {
		if method != http.MethodGet && method != http.MethodPost {
			method = http.MethodPost
		}
		if !strings.HasPrefix(path, "/") || strings.Contains(path, "/console/api/events") {
			return // the event stream never ends by itself
		}
		a, err := New(Config{ListenAddr: "127.0.0.1:3978"})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		rec := newRecorder()
		d := bot.NewDispatcher(context.Background(), rec, 1, 4)
		a.Attach(d)
		req, err := http.NewRequest(method, "http://127.0.0.1:3978"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, req)
		d.Close() // runs what was queued
		ran := len(rec.all())
		if !a.hostAllowed(host) {
			if w.Code != http.StatusForbidden || ran != 0 {
				t.Fatalf("Host %q: status %d, %d commands", host, w.Code, ran)
			}
			return
		}
		if ran == 0 {
			return
		}
		if ran > 1 || method != http.MethodPost || w.Code != http.StatusAccepted || !a.sameOrigin(req) {
			t.Fatalf("%s %s (Host %q, Origin %q): status %d ran %d commands", method, path, host, origin, w.Code, ran)
		}
		if cmd := rec.all()[0]; a.users[cmd.User.ID].ID == "" {
			t.Fatalf("command from an unknown user: %+v", cmd)
		}
	})
}
