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
			Title: "Diagnosis for contoso",
			Text:  "2 blockers found for backup@contoso.com.",
			Sections: []bot.Section{
				{Title: "Security defaults", Severity: bot.SeverityBlocker, Text: "Enabled: basic auth is blocked for every user.",
					Facts: []bot.Fact{{Name: "isEnabled", Value: "true"}}},
				{Title: "SharePoint legacy auth", Severity: bot.SeverityWarning, Facts: []bot.Fact{{Name: "isLegacyAuthProtocolsEnabled", Value: "false"}}},
				{Title: "Exchange Online", Severity: bot.SeverityOK, Text: "No Conditional Access policy blocks legacy auth."},
				{Title: "Sign-ins", Severity: bot.SeverityInfo, Text: "cannot read sign-ins: needs Entra ID P1"},
			},
			Buttons: []bot.Button{{Label: "Request temporary fix", Command: "fix contoso", Style: bot.StylePrimary}},
			Footer:  "Changes can take up to 12 hours to take effect.",
		},
		"approval": {
			Title: "Approval needed: r-42",
			Text:  "Alex Wilber asks to change contoso for 8h.\nReason: nightly backup",
			Sections: []bot.Section{{Title: "Changes", Facts: []bot.Fact{
				{Name: "Security defaults", Value: "enabled → disabled"},
				{Name: "Reverts at", Value: "2026-11-25 16:00 UTC"},
			}}},
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
