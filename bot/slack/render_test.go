package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot"
	"github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

var goldenMessages = map[string]bot.Message{
	"findings": {
		Title: "Diagnosis for contoso: 2 blocker(s)",
		Text:  "A temporary change can help: it changes the settings below for a bounded window, after an approver agrees, and puts every one back automatically.",
		Sections: []bot.Section{
			{Title: "The tool", Facts: []bot.Fact{
				{Name: "Account", Value: "svc-backup@contoso.onmicrosoft.com"},
				{Name: "Product", Value: "backup 2.4"},
				{Name: "Signs in with", Value: "modern authentication as a user with a password (delegated) — inferred from sign-ins: Mobile Apps and Desktop clients × 96"},
			}},
			{Title: "Sign-in paths today", Facts: []bot.Fact{
				{Name: "Exchange Online basic authentication", Value: "retired since 2022-10-01 · https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-basic-authentication-exchange-online"},
				{Name: "SharePoint Online IDCRL (legacy) authentication, MC1184649", Value: "retired since 2026-05-01 · https://devblogs.microsoft.com/microsoft365dev/migrating-from-idcrl-authentication-to-modern-authentication-in-sharepoint/"},
			}},
			{Title: "Security defaults are on: they require MFA, which the tool cannot do signing in as a user with a password (error 50076)", Severity: bot.SeverityBlocker,
				Text:  "Fix: Turn Security defaults off for the window (tenant-wide); the lasting fix is to connect the tool with its own app registration",
				Facts: []bot.Fact{{Name: "isEnabled", Value: "true"}}},
			{Title: "SharePoint requires the accepting account to match the invited one: a deprecated guest-sharing rule that does not affect the tool's sign-in; leave it on", Severity: bot.SeverityInfo,
				Facts: []bot.Fact{{Name: "platform sharepoint_invited_match", Value: "deprecated"}}},
			{Title: "Conditional Access \"Block legacy authentication\" is report-only: would block svc-backup@contoso.onmicrosoft.com", Severity: bot.SeverityWarning,
				Text:  "Fix: Nothing blocks today; exclude the tool before the policy is switched on",
				Facts: []bot.Fact{{Name: "Policy id", Value: "0b2282f9-2862-4178-88b5-d79340b3c2b0"}, {Name: "evaluated by", Value: "whatif"}}},
			{Title: "96 of 96 sign-ins by svc-backup@contoso.onmicrosoft.com failed since 2026-11-30T09:00:00Z", Severity: bot.SeverityBlocker,
				Facts: []bot.Fact{{Name: "error 50076 × 96", Value: "MFA required (UserStrongAuthClientAuthNRequired)"}, {Name: "error 50076 explained by", Value: "security_defaults"}}},
			{Title: "Temporary fix (needs approval)", Facts: []bot.Fact{
				{Name: "Entra ID Security defaults (isEnabled)", Value: "true → false (takes up to 24 hours)"},
			}},
		},
		Footer:  "Checked 2026-12-01 09:00:00 UTC · tenant 11111111-2222-3333-4444-555555555555",
		Buttons: []bot.Button{{Label: "Request temporary fix", Command: "fix contoso", Style: bot.StylePrimary}},
	},
	"approval": {
		Title: "Approval needed: temporary change to contoso (r-42)",
		Text:  "Alice asks to change these settings for 8h. They are put back automatically when the window ends.",
		Sections: []bot.Section{
			{Title: "Settings", Facts: []bot.Fact{
				{Name: "Conditional Access \"Require MFA for backup operators\": exclude svc-backup@contoso.onmicrosoft.com", Value: "included → excluded (takes up to 24 hours)"},
			}},
			{Title: "Request", Facts: []bot.Fact{
				{Name: "Requested by", Value: "alice"},
				{Name: "Reason", Value: "nightly backup job"},
				{Name: "Window", Value: "8h"},
				{Name: "Reverts at", Value: "8h after approval (2026-12-01 18:00:00 UTC if approved now)"},
				{Name: "Approve by", Value: "2026-12-01 11:00:00 UTC"},
			}},
			{Title: "Shorter than the propagation time", Severity: bot.SeverityWarning,
				Text: "The 8h window is shorter than the up to 24 hours Microsoft documents for Conditional Access \"Require MFA for backup operators\": exclude svc-backup@contoso.onmicrosoft.com to take effect: it may be reverted before the tool's sign-ins see it. Ask for a longer window with --for, or watch “signins”."},
		},
		Footer: "Microsoft documents that these changes can take up to 24 hours to take effect.",
		Buttons: []bot.Button{
			{Label: "Approve", Command: "approve r-42", Style: bot.StylePrimary},
			{Label: "Deny", Command: "deny r-42", Style: bot.StyleDanger},
		},
	},
	"resolved": {
		Title: "Temporary fix r-42 reverted",
		Text:  "All settings were reverted to their snapshot values.",
		Sections: []bot.Section{{Title: "Result", Severity: bot.SeverityOK, Facts: []bot.Fact{
			{Name: "Approved by", Value: "bob"}, {Name: "Applied", Value: "10:00 UTC"}, {Name: "Reverted", Value: "18:00 UTC"},
		}}},
		Footer: "Request r-42",
	},
	"escaping": {
		Title: "Request by <@U123> *bold* <!channel>",
		Text:  "Reason: <!channel> <@U123> *bold* _it_ ~s~ `code` > quote & <https://evil.example|click>",
		Sections: []bot.Section{
			{Title: "Reason <!here> & more", Severity: bot.SeverityWarning,
				Text:  "@channel @here <!everyone>",
				Facts: []bot.Fact{{Name: "Reason", Value: "<!channel> *bold* <@U123>"}, {Name: "*Name*", Value: ""}}},
		},
		Footer:  "<!subteam^S123> & footer",
		Buttons: []bot.Button{{Label: "<@U123> *Approve*", Command: "approve r-1 <@U123>", Style: bot.StylePrimary}},
	},
}

func TestGolden(t *testing.T) {
	for name, msg := range goldenMessages {
		t.Run(name, func(t *testing.T) {
			blocks, fallback := render(msg)
			// What chat.postMessage is sent: the blocks, and the fallback
			// text as escaped for the form.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"text": escape(fallback), "blocks": blocks}); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./bot/slack -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from the golden file; got:\n%s", name, got)
			}
		})
	}
}

// TestEscapingNeverPings walks every text object of the escaping message:
// a mention or broadcast can only survive in plain_text, which Slack never
// parses, and mrkdwn text always has verbatim set.
func TestEscapingNeverPings(t *testing.T) {
	blocks, _ := render(goldenMessages["escaping"])
	raw, _ := json.Marshal(blocks)
	var v any
	_ = json.Unmarshal(raw, &v)
	var texts int
	var walk func(any)
	walk = func(v any) {
		switch t2 := v.(type) {
		case map[string]any:
			if typ, _ := t2["type"].(string); typ == "mrkdwn" || typ == "plain_text" {
				texts++
				s, _ := t2["text"].(string)
				if typ == "mrkdwn" {
					if strings.ContainsAny(s, "<>") {
						t.Errorf("unescaped mrkdwn %q", s)
					}
					if t2["verbatim"] != true {
						t.Errorf("mrkdwn without verbatim: %q", s)
					}
					if strings.Contains(s, "bold*") || strings.Contains(s, "`code`") {
						t.Errorf("user formatting reached mrkdwn: %q", s)
					}
				}
				if typ == "plain_text" && t2["emoji"] == true && strings.Contains(s, "<!channel>") {
					t.Errorf("user text in emoji plain_text %q", s)
				}
			}
			for _, c := range t2 {
				walk(c)
			}
		case []any:
			for _, c := range t2 {
				walk(c)
			}
		}
	}
	walk(v)
	if texts < 6 {
		t.Fatalf("only %d text objects", texts)
	}
	if !strings.Contains(string(raw), `"text":"\u003c!channel\u003e *bold* \u003c@U123\u003e","emoji":false`) {
		t.Fatalf("the reason is not shown verbatim: %s", raw)
	}
}

func TestRenderLimits(t *testing.T) {
	var facts []bot.Fact
	for i := range 12 {
		facts = append(facts, bot.Fact{Name: "n" + string(rune('a'+i)), Value: "v"})
	}
	blocks, _ := render(bot.Message{Title: strings.Repeat("é", 200), Sections: []bot.Section{{Facts: facts}}})
	h := blocks[0].(*slack.HeaderBlock)
	if n := len([]rune(h.Text.Text)); n != maxHeaderChars {
		t.Fatalf("header %d runes", n)
	}
	var fieldBlocks []int
	for _, b := range blocks {
		if s, ok := b.(*slack.SectionBlock); ok && len(s.Fields) > 0 {
			fieldBlocks = append(fieldBlocks, len(s.Fields))
		}
	}
	if len(fieldBlocks) != 3 || fieldBlocks[0] != 10 || fieldBlocks[1] != 10 || fieldBlocks[2] != 4 {
		t.Fatalf("field blocks %v", fieldBlocks)
	}

	var many []bot.Section
	for range 40 {
		many = append(many, bot.Section{Title: "s", Text: "t"})
	}
	blocks, _ = render(bot.Message{Sections: many, Buttons: []bot.Button{{Label: "Approve", Command: "approve r-1"}}})
	if len(blocks) != maxBlocks {
		t.Fatalf("%d blocks", len(blocks))
	}
	if _, ok := blocks[len(blocks)-1].(*slack.ActionBlock); !ok {
		t.Fatal("buttons dropped by the block cap")
	}

	blocks, _ = render(bot.Message{Buttons: []bot.Button{{Label: "x", Command: strings.Repeat("a", maxButtonValue+1)}, {Label: "ok", Command: "status"}}})
	act := blocks[0].(*slack.ActionBlock)
	if len(act.Elements.ElementSet) != 1 || act.Elements.ElementSet[0].(*slack.ButtonBlockElement).ActionID != "c2:1" {
		t.Fatalf("buttons %+v", act.Elements.ElementSet)
	}
}
