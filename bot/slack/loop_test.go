package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

// TestRequestApproveLoop drives the adapter the way the core will: a typed
// command, a button click on the bot's reply, an approval click that
// updates the card in place, and a refusal shown to one user only. The
// handler here is a stand-in for the core; Slack is the slacktest fake.
func TestRequestApproveLoop(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, fake, _ := newTestAdapter(t, now, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	handler := bot.HandlerFunc(func(ctx context.Context, cmd bot.Command) {
		var err error
		switch {
		case cmd.Text == "diagnose":
			_, err = a.Post(ctx, cmd.Conv, bot.Message{Title: "Diagnosis", Buttons: []bot.Button{{Label: "Request temporary fix", Command: "fix --reason \"<!channel> *now*\"", Style: bot.StylePrimary}}})
		case strings.HasPrefix(cmd.Text, "fix"):
			_, err = a.Post(ctx, cmd.Conv.InThread(*cmd.Origin), bot.Message{
				Title:    "Approval needed: r-1",
				Sections: []bot.Section{{Facts: []bot.Fact{{Name: "Reason", Value: strings.TrimPrefix(cmd.Text, "fix --reason ")}}}},
				Buttons:  []bot.Button{{Label: "Approve", Command: "approve r-1", Style: bot.StylePrimary}, {Label: "Deny", Command: "deny r-1", Style: bot.StyleDanger}},
			})
		case cmd.Text == "approve r-1" && cmd.User.ID == "U0BOB":
			err = a.Update(ctx, *cmd.Origin, bot.Message{Title: "r-1 applied", Text: "Applied; reverts at 18:00."})
		case cmd.Text == "approve r-1":
			err = a.PostEphemeral(ctx, cmd.Conv, cmd.User, bot.Message{Text: "You may not approve r-1."})
		}
		if err != nil {
			t.Errorf("%s: %v", cmd.Text, err)
		}
	})
	d := bot.NewDispatcher(ctx, handler, 2, 8)
	defer d.Close()
	a.Attach(d)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	do := func(req *http.Request) {
		t.Helper()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	const secret = "test-signing-secret"

	do(slacktest.NewSlashCommandRequest(srv.URL+PathCommands, secret, now, slacktest.SlashCommand{ChannelID: "C0T", UserID: "U0ALICE", UserName: "alice", Text: "diagnose", TriggerID: "t1"}))
	findings, err := fake.WaitMessage(ctx, func(m slacktest.Message) bool { return strings.Contains(m.BlockText(), "Diagnosis") })
	if err != nil {
		t.Fatal(err)
	}
	btn, ok := findings.Button("Request temporary fix")
	if !ok {
		t.Fatalf("no button in %s", findings.Blocks)
	}
	do(slacktest.NewInteractionRequest(srv.URL+PathInteractions, secret, now, slacktest.ClickPayload(findings, btn, "U0ALICE", "alice", "1700000001.1")))
	card, err := fake.WaitMessage(ctx, func(m slacktest.Message) bool { return strings.Contains(m.BlockText(), "Approval needed") })
	if err != nil {
		t.Fatal(err)
	}
	if card.ThreadTS != findings.TS {
		t.Fatalf("approval card not threaded under the findings: %+v", card)
	}
	if !strings.Contains(card.BlockText(), `"<!channel> *now*"`) {
		t.Fatalf("reason not shown verbatim: %s", card.BlockText())
	}

	approve, _ := card.Button("Approve")
	// Carol may not approve: she gets an ephemeral note and the card stays.
	do(slacktest.NewInteractionRequest(srv.URL+PathInteractions, secret, now, slacktest.ClickPayload(card, approve, "U0CAROL", "carol", "1700000002.1")))
	note, err := fake.WaitMessage(ctx, func(m slacktest.Message) bool { return m.Ephemeral && m.User == "U0CAROL" })
	if err != nil || note.ThreadTS != findings.TS {
		t.Fatalf("ephemeral %+v %v", note, err)
	}
	// Bob approves; a double delivery of his click runs once.
	click := slacktest.ClickPayload(card, approve, "U0BOB", "bob", "1700000003.1")
	do(slacktest.NewInteractionRequest(srv.URL+PathInteractions, secret, now, click))
	do(slacktest.NewInteractionRequest(srv.URL+PathInteractions, secret, now, click))
	updated, err := fake.WaitMessage(ctx, func(m slacktest.Message) bool { return m.TS == card.TS && m.Updates > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(updated.BlockText(), "applied") || len(updated.Buttons()) != 0 {
		t.Fatalf("card after approval: %s", updated.Blocks)
	}
	d.Close()
	if n := len(fake.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls", n)
	}
}
