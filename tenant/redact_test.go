package tenant

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// TestRedactEveryForm: a credential is removed in every form an error text
// can carry it (issue 8 item 10).
func TestRedactEveryForm(t *testing.T) {
	const secret = "Ab~c+d/e=f&g%h.secret"
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2xvZ2luIn0.c2lnbmF0dXJlLWJ5dGVz"
	tests := []struct {
		name, in string
		gone     []string
	}{
		{"raw", "Invalid client secret provided: " + secret, []string{secret}},
		{"form-encoded by MSAL", "client_id=a&client_secret=Ab~c%2Bd%2Fe%3Df%26g%25h.secret&grant_type=client_credentials", []string{"Ab~c", "%2Bd"}},
		{"form field of an unknown secret", "grant_type=client_credentials&client_secret=other-secret-123&scope=x", []string{"other-secret-123"}},
		{"client assertion", "client_assertion_type=urn%3Aietf&client_assertion=" + jwt + "&x=1", []string{jwt, "c2lnbmF0dXJl"}},
		{"assertion grant", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=opaque-assertion-value", []string{"opaque-assertion-value"}},
		{"refresh token", "refresh_token=0.AAAA-refresh&scope=x", []string{"0.AAAA-refresh"}},
		{"access token in JSON", `{"token_type":"Bearer","access_token":"abc.def-ghi","expires_in":3599}`, []string{"abc.def-ghi"}},
		{"client secret in JSON", `{"client_secret": "json-secret-value", "x": 1}`, []string{"json-secret-value"}},
		{"JSON-escaped secret", `{"echo":"Ab~c+d\/e=f\u0026g%h.secret"}`, []string{"Ab~c+d"}},
		{"Authorization header", "Authorization: Bearer eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.sig", []string{"eyJ0eXAi", "eyJzdWIi"}},
		{"basic header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", []string{"dXNlcjpwYXNzd29yZA"}},
		{"header-like line", "client_secret: yaml-secret", []string{"yaml-secret"}},
		{"bare JWT", "token was " + jwt, []string{jwt}},
		{"Slack tokens", "bad token xoxb-1234-5678-abcdef and xapp-1-A0-123-abc", []string{"xoxb-1234", "xapp-1-A0"}},
		{"form inside JSON-escaped text", `{"e":"x\u0026client_secret=unknown-one\u0026y=1"}`, []string{"unknown-one"}},
		{"path-escaped", "/token/Ab~c+d%2Fe=f&g%25h.secret", []string{"%2Fe=f"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.in, secret)
			for _, g := range tc.gone {
				if strings.Contains(got, g) {
					t.Errorf("Redact(%q) = %q still holds %q", tc.in, got, g)
				}
			}
			if !strings.Contains(got, redactedMark) {
				t.Errorf("Redact(%q) = %q marks nothing", tc.in, got)
			}
		})
	}
	// Ordinary text is left alone.
	for _, s := range []string{
		"AADSTS7000215: Invalid client secret provided.",
		"Authorization_RequestDenied (HTTP 403): Insufficient privileges to complete the operation.",
		"the token endpoint is down",
	} {
		if got := Redact(s, secret); got != s {
			t.Errorf("Redact(%q) = %q, want it unchanged", s, got)
		}
	}
}

// TestEchoingAuthorityLeaksNothing is issue 8 item 10: a token endpoint
// that quotes the request (form-encoded client_secret or client_assertion)
// back in its error must not put the credential into the error, the log or
// what a person reads.
func TestEchoingAuthorityLeaksNothing(t *testing.T) {
	// A secret that form encoding changes (+ / = & %), as Entra's do.
	const secret = "Qx8~y+Z/w=v&u%t.9sEcReT"
	for _, tc := range []struct {
		name string
		mod  func(t *testing.T, f *fakeTenant, c *Config)
		gone []string
	}{
		{"client secret", func(t *testing.T, f *fakeTenant, c *Config) { c.ClientSecret = secret },
			[]string{secret, url.QueryEscape(secret), "Qx8~y"}},
		{"certificate", func(t *testing.T, f *fakeTenant, c *Config) {
			path, cert := writeCertPEM(t)
			f.cert = cert
			c.ClientSecret, c.CertFile = "", path
		}, []string{"client_assertion=eyJ", "eyJhbGci"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTenant(t)
			f.echoToken = true
			var logs strings.Builder
			c, _ := f.newClient(t, func(c *Config) {
				tc.mod(t, f, c)
				c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			_, err := c.Diagnose(context.Background(), Target{Account: testAccount})
			if err == nil {
				t.Fatal("Diagnose succeeded against a refusing authority")
			}
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("error %v does not wrap ErrAuthentication", err)
			}
			var um interface{ UserMessage() string }
			if !errors.As(err, &um) || !strings.Contains(um.UserMessage(), "AADSTS900144") {
				t.Fatalf("no user message with the sign-in code in %v", err)
			}
			for _, text := range []string{err.Error(), logs.String(), um.UserMessage()} {
				for _, g := range tc.gone {
					if strings.Contains(text, g) {
						t.Fatalf("%q leaks %q", text, g)
					}
				}
			}
			if !strings.Contains(err.Error(), "client_secret=[redacted]") && !strings.Contains(err.Error(), "client_assertion=[redacted]") {
				t.Errorf("the echoed form is not visibly redacted: %v", err)
			}
			if strings.Contains(um.UserMessage(), "client_") {
				t.Errorf("the user message quotes the authority's answer: %q", um.UserMessage())
			}
		})
	}
}
