package handlers_test

import (
	"strings"
	"testing"

	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// noRequest checks that nothing was requested or written.
func (e *env) noRequest() {
	e.t.Helper()
	if rs, _ := e.st.List(e.ctx, 0); len(rs) != 0 {
		e.t.Fatalf("%d request(s) created", len(rs))
	}
	if n := e.writes(""); n != 0 {
		e.t.Fatalf("the tenant was written %d times", n)
	}
}

func TestFixOnlyRefusesUnknownKinds(t *testing.T) {
	tests := []struct{ text, want string }{
		{"fix --only frobnicate", `unknown kind "frobnicate". The kinds are: security_defaults, sharepoint_legacy_auth, sharepoint_invited_match, ca_exclude_user, ca_exclude_service_principal`},
		{"fix --only security_defaults,bogus", `unknown kind "bogus"`},
		{`fix --only ","`, "--only needs a kind"},
		{"fix --only ca_exclude_service_principal", "the plan has no ca_exclude_service_principal item (it has: "},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			e := newEnv(t)
			e.say(alice, tt.text)
			w := e.chat.lastWhisper(t)
			if !strings.Contains(w, tt.want) || !strings.Contains(w, "Nothing was requested") {
				t.Fatalf("reply = %q, want %q and that nothing was requested", w, tt.want)
			}
			e.noRequest()
		})
	}
}

// TestFixOnlyPicksItems asks for one kind of a two-item plan (the vendor's
// tenant in 2025) and gets a card with that item alone.
func TestFixOnlyPicksItems(t *testing.T) {
	e := newEnvOn(t, "vendor-2025")
	e.say(alice, "diagnose")
	rep := e.chat.lastPost(t).Msg.PlainText()
	if !strings.Contains(rep, "Security defaults (isEnabled): true → false") || !strings.Contains(rep, "(isLegacyAuthProtocolsEnabled): false → true") {
		t.Fatalf("the 2025 plan is not Security defaults and SharePoint:\n%s", rep)
	}
	card := e.requestFix("--only SHAREPOINT_LEGACY_AUTH --for 1h")
	text := card.Msg.PlainText()
	if !strings.Contains(text, "(isLegacyAuthProtocolsEnabled): false → true") {
		t.Fatalf("the card lacks the chosen item:\n%s", text)
	}
	for _, other := range []string{"Security defaults", "isRequireAcceptingUserToMatchInvitedUserEnabled", "exclude"} {
		if strings.Contains(text, other) {
			t.Fatalf("the card holds %s, which --only left out:\n%s", other, text)
		}
	}
	items := e.request("r-1").Items
	if !strings.Contains(string(items), `"kind":"sharepoint_legacy_auth"`) || strings.Count(string(items), `"kind"`) != 1 {
		t.Fatalf("stored items = %s", items)
	}
	e.click(bob, card.Ref, "Approve")
	if st := e.sb.State(); !st.LegacyAuth || !st.SecurityDefaults {
		t.Fatalf("after approval: %+v", st)
	}
	if n := e.writes(pathSD); n != 0 {
		t.Fatalf("Security defaults were written %d times though --only left them out", n)
	}
}

// TestCardShowsPropagation: each item shows Microsoft's documented time, and
// a window shorter than it is warned about; a long enough window is not.
func TestCardShowsPropagation(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 8h")
	text := card.Msg.PlainText()
	if !strings.Contains(text, "(takes up to 24 hours)") {
		t.Fatalf("the card does not show the propagation time:\n%s", text)
	}
	if !strings.Contains(text, "[warning] Shorter than the propagation time") ||
		!strings.Contains(text, "The 8h window is shorter than the up to 24 hours Microsoft documents") {
		t.Fatalf("no warning for an 8h window:\n%s", text)
	}
	if !strings.Contains(card.Msg.Footer, "up to 24 hours to take effect") {
		t.Fatalf("footer = %q", card.Msg.Footer)
	}
	e.say(alice, "cancel r-1")

	long := e.requestFix("--for 1d")
	if text := long.Msg.PlainText(); strings.Contains(text, "Shorter than the propagation time") {
		t.Fatalf("a 24h window is warned about:\n%s", text)
	}
}

// TestFixWhenNothingCanHelp: the vendor's legacy tool today, and an old
// tool version, stop the fix. The answer is to update the tool; no request
// is created and the diagnosis offers no button.
func TestFixWhenNothingCanHelp(t *testing.T) {
	tests := []struct {
		name     string
		scenario string
		opt      envOption
	}{
		{"the vendor's legacy tool today", "vendor-today", nil},
		{"an old version", sandbox.DefaultScenario, func(_ *handlers.Config, tc *handlers.TenantConfig) {
			tc.Product, tc.Version = "backup", "2.1"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOption
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			e := newEnvOn(t, tt.scenario, opts...)
			e.say(alice, "diagnose")
			diag := e.chat.lastPost(t).Msg
			if len(diag.Buttons) != 0 {
				t.Fatalf("the diagnosis offers %+v though the tool must be updated:\n%s", diag.Buttons, diag.PlainText())
			}
			if text := diag.PlainText(); !strings.Contains(text, "No temporary change can help") || !strings.Contains(strings.ToLower(text), "update the tool") {
				t.Fatalf("diagnosis does not say to update the tool:\n%s", text)
			}
			e.say(alice, "fix --for 1h")
			reply := e.chat.lastPost(t).Msg
			if !strings.HasPrefix(reply.Title, "No temporary change can help in sandbox") || len(reply.Buttons) != 0 {
				t.Fatalf("fix answered:\n%s", reply.PlainText())
			}
			if text := strings.ToLower(reply.PlainText()); !strings.Contains(text, "update the tool") || !strings.Contains(text, "nothing was requested") {
				t.Fatalf("fix does not say why:\n%s", reply.PlainText())
			}
			// The Request button of an older diagnosis takes the same road.
			e.say(alice, "fix sandbox")
			if reply := e.chat.lastPost(t).Msg; !strings.HasPrefix(reply.Title, "No temporary change can help in sandbox") {
				t.Fatalf("fix sandbox answered:\n%s", reply.PlainText())
			}
			e.noRequest()
		})
	}
}

// TestNothingToFix: with nothing blocking, fix says so and creates nothing.
func TestNothingToFix(t *testing.T) {
	e := newEnvOn(t, "clean")
	e.say(alice, "diagnose")
	if m := e.chat.lastPost(t).Msg; len(m.Buttons) != 0 {
		t.Fatalf("a clean tenant's diagnosis has buttons:\n%s", m.PlainText())
	}
	e.say(alice, "fix")
	if m := e.chat.lastPost(t).Msg; !strings.HasPrefix(m.Title, "Nothing to change in sandbox") {
		t.Fatalf("fix answered:\n%s", m.PlainText())
	}
	e.noRequest()
}

// TestDiagnoseShowsProfileAndPlatform: the reply says how the tool signs in
// and which sign-in paths exist today, with their sources.
func TestDiagnoseShowsProfileAndPlatform(t *testing.T) {
	e := newEnv(t)
	e.say(alice, "diagnose")
	text := e.chat.lastPost(t).Msg.PlainText()
	for _, want := range []string{"The tool", "Signs in with", "Sign-in paths today",
		"retired since 2022-10-01", tenant.SourceExchangeBasicAuth, "retired since 2026-05-01"} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, text)
		}
	}
}

// TestDiagnoseSaysWhoEvaluatedConditionalAccess: the policy verdict names
// Entra's What If when it answered, and the local evaluation when What If
// is refused.
func TestDiagnoseSaysWhoEvaluatedConditionalAccess(t *testing.T) {
	e := newEnvOn(t, "mfa-nested-group")
	e.say(alice, "diagnose")
	if text := e.chat.lastPost(t).Msg.PlainText(); !strings.Contains(text, "evaluated by: Entra's What If") {
		t.Fatalf("diagnosis does not say What If evaluated the policy:\n%s", text)
	}
	e.sb.Fail(sandbox.FailRule{Method: "POST", PathPrefix: "/identity/conditionalAccess/evaluate", Status: 403, Code: "Authorization_RequestDenied"})
	e.say(alice, "diagnose")
	msg := e.chat.lastPost(t).Msg
	text := msg.PlainText()
	if !strings.Contains(text, "evaluated by: c2bot's local evaluation") || !strings.Contains(text, "Require MFA for backup operators") {
		t.Fatalf("diagnosis without What If:\n%s", text)
	}
	if len(msg.Buttons) != 1 || msg.Buttons[0].Label != "Request temporary fix" {
		t.Fatalf("the local evaluation finds no fix: %+v", msg.Buttons)
	}
}
