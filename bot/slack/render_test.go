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
		Title: "Diagnosis for contoso: 3 blockers",
		Text:  "The backup tool signs in with legacy authentication; these settings block it.",
		Sections: []bot.Section{
			{Title: "Security defaults are enabled", Severity: bot.SeverityBlocker,
				Text:  "Security defaults block legacy authentication for every user.",
				Facts: []bot.Fact{{Name: "Setting", Value: "isEnabled"}, {Name: "Current", Value: "true"}, {Name: "Fix", Value: "set to false for the window"}}},
			{Title: "SharePoint legacy auth is off", Severity: bot.SeverityBlocker,
				Facts: []bot.Fact{{Name: "isLegacyAuthProtocolsEnabled", Value: "false"}, {Name: "Fix", Value: "set to true"}}},
			{Title: "Conditional Access policy \"Block legacy auth\"", Severity: bot.SeverityWarning,
				Text: "Enabled; excludes nobody. Exclude the tool's account instead of disabling it."},
			{Title: "Sign-in logs", Severity: bot.SeverityInfo, Text: "Cannot read sign-ins: the tenant has no Entra ID P1 licence."},
			{Title: "Migration tool version", Severity: bot.SeverityOK, Text: "3.4, up to date."},
		},
		Footer:  "Changes can take up to 12 hours to take effect.",
		Buttons: []bot.Button{{Label: "Request temporary fix", Command: "fix contoso", Style: bot.StylePrimary}},
	},
	"approval": {
		Title: "Approval needed: temporary fix r-42",
		Sections: []bot.Section{
			{Title: "Changes", Facts: []bot.Fact{
				{Name: "Security defaults (isEnabled)", Value: "true → false"},
				{Name: "SharePoint legacy auth", Value: "false → true"},
				{Name: "Require matching invited account", Value: "true → false"},
			}},
			{Title: "Request", Facts: []bot.Fact{
				{Name: "Window", Value: "8h"},
				{Name: "Reverts at", Value: "2026-11-25 18:00 UTC"},
				{Name: "Requested by", Value: "alice"},
				{Name: "Reason", Value: "nightly backup job"},
				{Name: "Tenant", Value: "contoso"},
				{Name: "Expires", Value: "2026-11-25 11:00 UTC"},
			}},
		},
		Footer: "Request r-42",
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
