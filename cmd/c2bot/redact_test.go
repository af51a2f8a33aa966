package main

import (
	"testing"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/tenant"
)

// TestRedactorsAgree keeps bot.Redact (the chat adapters') and
// tenant.Redact (Graph and MSAL's) the same function: neither package may
// import the other, so the code is in both.
func TestRedactorsAgree(t *testing.T) {
	const secret = "Ab~c+d/e=f&g%h.secret"
	for _, s := range []string{
		"client_id=a&client_secret=Ab~c%2Bd%2Fe%3Df%26g%25h.secret&grant_type=client_credentials",
		`{"access_token":"abc","refresh_token":"def","x":"\u0026client_assertion=eyJhbGciOi.eyJhdWQiOi.sig"}`,
		"Authorization: Bearer xyz.abc", "xoxb-1-2-abc xapp-1-A-2-b", "wss://x/link/?ticket=abc&app_id=A1",
		"AADSTS7000215: Invalid client secret provided: " + secret, "plain text, nothing secret",
	} {
		if b, tn := bot.Redact(s, secret), tenant.Redact(s, secret); b != tn {
			t.Errorf("Redact(%q): bot %q, tenant %q", s, b, tn)
		}
	}
}
