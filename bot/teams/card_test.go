package teams

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cards")

func TestRenderCardGolden(t *testing.T) {
	tests := map[string]bot.Message{
		"diagnose": {
			Title: "Diagnosis for contoso: 2 blocker(s)",
			Text:  "No temporary change can help: the tool signs in with legacy authentication, which Microsoft has retired. The answer is to update the tool.",
			Sections: []bot.Section{
				{Title: "The tool", Facts: []bot.Fact{{Name: "Signs in with", Value: "legacy authentication (basic auth / IDCRL) — configured"}}},
				{Title: "Sign-in paths today", Facts: []bot.Fact{
					{Name: "Exchange Online basic authentication", Value: "retired since 2022-10-01 · https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-basic-authentication-exchange-online"},
				}},
				{Title: "Exchange Online basic authentication was retired on 2022-10-01: no tenant setting can bring the tool's Exchange sign-ins back", Severity: bot.SeverityBlocker,
					Text: "Fix: Update the backup tool to 2.3 or later and connect it with its own app registration"},
				{Title: "Security defaults are on and block legacy authentication (error 530035); turning them off cannot help", Severity: bot.SeverityInfo,
					Facts: []bot.Fact{{Name: "isEnabled", Value: "true"}}},
				{Title: "Sign-ins", Severity: bot.SeverityWarning, Text: "cannot read sign-ins: needs Entra ID P1"},
			},
			Footer: "Checked 2026-12-01 09:00:00 UTC · tenant 11111111-2222-3333-4444-555555555555",
		},
		"approval": {
			Title: "Approval needed: r-42",
			Text:  "Alex Wilber asks to change contoso for 8h.\nReason: nightly backup",
			Sections: []bot.Section{
				{Title: "Changes", Facts: []bot.Fact{
					{Name: "Entra ID Security defaults (isEnabled)", Value: "true → false (takes up to 24 hours)"},
					{Name: "Reverts at", Value: "2026-12-01 16:00 UTC"},
				}},
				{Title: "Shorter than the propagation time", Severity: bot.SeverityWarning,
					Text: "The 8h window is shorter than the up to 24 hours Microsoft documents for Entra ID Security defaults (isEnabled) to take effect."},
			},
			Buttons: []bot.Button{
				{Label: "Approve", Command: "approve r-42", Style: bot.StylePrimary},
				{Label: "Deny", Command: "deny r-42", Style: bot.StyleDanger},
			},
			Footer: "r-42",
		},
		"user_text": {
			Title: "Request from *evil*_user_",
			Text:  "Reason: [click](https://evil.example) **now** `code` ~~gone~~ <at>Bob</at>\n- not a list\n# not a heading\n1. not numbered\n> not a quote",
		},
		"empty": {},
	}
	for name, msg := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(renderCard(msg), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "cards", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("card differs from %s (run go test -update to accept):\n%s", path, got)
			}
		})
	}
}

func TestRenderCardStylesAndLabels(t *testing.T) {
	c := renderCard(bot.Message{Buttons: []bot.Button{
		{Label: "Request temporary fix", Command: "fix", Style: bot.StylePrimary},
		{Label: "Approve", Command: "approve r-1", Style: bot.StylePrimary},
		{Label: "Deny", Command: "deny r-1", Style: bot.StyleDanger},
		{Label: "Status", Command: "status"},
	}})
	want := []struct{ title, style, cmd string }{
		{"Request temporary fix", "positive", "fix"},
		{"Approve", "positive", "approve r-1"},
		{"Deny", "destructive", "deny r-1"},
		{"Status", "", "status"},
	}
	if len(c.Actions) != len(want) {
		t.Fatalf("actions = %v", c.Actions)
	}
	for i, w := range want {
		a := c.Actions[i]
		style, _ := a["style"].(string)
		if a["title"] != w.title || style != w.style || a["data"].(map[string]any)["c2cmd"] != w.cmd || a["verb"] != "c2" {
			t.Errorf("action %d = %v", i, a)
		}
	}
}

func TestEscapeMarkdown(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"*bold* _it_", `\*bold\* \_it\_`},
		{"[a](b)", `\[a\](b)`},
		{`back\slash`, `back\\slash`},
		{"- item", `\- item`},
		{"  + item", `  \+ item`},
		{"## title", `\## title`},
		{"> quote", `\> quote`},
		{"12. item", `12\. item`},
		{"12 items", "12 items"},
		{"line one\nline two", "line one\n\nline two"},
		{"a\r\nb", "a\n\nb"},
	}
	for _, tc := range tests {
		if got := escapeMarkdown(tc.in); got != tc.want {
			t.Errorf("escapeMarkdown(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// No user text can produce an entity-backed mention: cards never carry
	// msteams.entities.
	c, _ := json.Marshal(renderCard(bot.Message{Text: "<at>everyone</at>"}))
	if strings.Contains(string(c), "entities") {
		t.Errorf("card carries entities: %s", c)
	}
}
