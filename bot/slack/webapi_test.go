package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

var sample = bot.Message{
	Title:    "Diagnosis",
	Sections: []bot.Section{{Title: "Security defaults", Severity: bot.SeverityBlocker, Facts: []bot.Fact{{Name: "isEnabled", Value: "true"}}}},
	Buttons:  []bot.Button{{Label: "Request temporary fix", Command: "fix contoso", Style: bot.StylePrimary}},
}

func TestPostUpdateEphemeralSendTheRightFields(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), nil)
	ctx := context.Background()
	conv := bot.Conversation{Platform: bot.Slack, ID: "C0TENANT", Thread: "1700000000.000001"}

	ref, err := a.Post(ctx, conv, sample)
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID == "" || ref.Conv.ID != "C0TENANT" || ref.Conv.Thread != conv.Thread {
		t.Fatalf("ref = %+v", ref)
	}
	if err := a.Update(ctx, ref, bot.Message{Title: "Reverted", Text: "reverted at 17:00"}); err != nil {
		t.Fatal(err)
	}
	if err := a.PostEphemeral(ctx, conv, bot.User{ID: "U0BOB"}, bot.Message{Text: "You may not approve r-1."}); err != nil {
		t.Fatal(err)
	}

	calls := srv.Calls("")
	if len(calls) != 3 {
		t.Fatalf("%d calls", len(calls))
	}
	for _, c := range calls {
		if !c.FromHeader || c.Token != slacktest.BotToken {
			t.Errorf("%s: token not sent as bearer header", c.Method)
		}
		if c.Form.Has("token") || strings.Contains(string(c.Body), slacktest.BotToken) {
			t.Errorf("%s: token in the body", c.Method)
		}
		if c.Form.Get("mrkdwn") != "false" || c.Form.Get("unfurl_links") != "false" {
			t.Errorf("%s: form %v", c.Method, c.Form)
		}
		var blocks []map[string]any
		if err := json.Unmarshal([]byte(c.Form.Get("blocks")), &blocks); err != nil || len(blocks) == 0 {
			t.Errorf("%s: blocks %q", c.Method, c.Form.Get("blocks"))
		}
	}
	post, upd, eph := calls[0], calls[1], calls[2]
	if post.Method != "chat.postMessage" || post.Form.Get("channel") != "C0TENANT" || post.Form.Get("thread_ts") != conv.Thread {
		t.Errorf("post form %v", post.Form)
	}
	if !strings.Contains(post.Form.Get("text"), "[blocker] Security defaults") {
		t.Errorf("fallback text %q", post.Form.Get("text"))
	}
	if upd.Method != "chat.update" || upd.Form.Get("channel") != "C0TENANT" || upd.Form.Get("ts") != ref.ID {
		t.Errorf("update form %v", upd.Form)
	}
	if eph.Method != "chat.postEphemeral" || eph.Form.Get("user") != "U0BOB" || eph.Form.Get("channel") != "C0TENANT" || eph.Form.Get("thread_ts") != conv.Thread {
		t.Errorf("ephemeral form %v", eph.Form)
	}

	msgs := srv.Messages("C0TENANT")
	if len(msgs) != 2 || msgs[0].Updates != 1 || !strings.Contains(msgs[0].BlockText(), "reverted at 17:00") || len(msgs[0].Buttons()) != 0 {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestPostButtonsRoundTrip(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), nil)
	if _, err := a.Post(context.Background(), bot.Conversation{Platform: bot.Slack, ID: "C1"}, sample); err != nil {
		t.Fatal(err)
	}
	btn, ok := srv.Messages("C1")[0].Button("Request temporary fix")
	if !ok || btn.Value != "fix contoso" || btn.Style != "primary" || btn.ActionID != "c2:0" {
		t.Fatalf("button %+v %v", btn, ok)
	}
}

func TestRecordedResponses(t *testing.T) {
	ctx := context.Background()
	conv := bot.Conversation{Platform: bot.Slack, ID: "C1H9RESGL"}

	t.Run("chat.postMessage ok", func(t *testing.T) {
		a, srv, _ := newTestAdapter(t, time.Now(), nil)
		srv.Script("chat.postMessage", slacktest.Reply{Body: readFixture(t, "chat_postMessage_ok.json")})
		ref, err := a.Post(ctx, conv, sample)
		if err != nil || ref.ID != "1503435956.000247" {
			t.Fatalf("ref %+v err %v", ref, err)
		}
	})
	t.Run("chat.postMessage error", func(t *testing.T) {
		a, srv, _ := newTestAdapter(t, time.Now(), nil)
		srv.Script("chat.postMessage", slacktest.Reply{Body: readFixture(t, "chat_postMessage_error.json")})
		_, err := a.Post(ctx, conv, sample)
		if err == nil || !strings.Contains(err.Error(), "too_many_attachments") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("chat.update ok", func(t *testing.T) {
		a, srv, _ := newTestAdapter(t, time.Now(), nil)
		srv.Script("chat.update", slacktest.Reply{Body: readFixture(t, "chat_update_ok.json")})
		if err := a.Update(ctx, bot.MessageRef{Conv: conv, ID: "1401383885.000061"}, sample); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("chat.update error", func(t *testing.T) {
		a, srv, _ := newTestAdapter(t, time.Now(), nil)
		srv.Script("chat.update", slacktest.Reply{Body: readFixture(t, "chat_update_error.json")})
		err := a.Update(ctx, bot.MessageRef{Conv: conv, ID: "1401383885.000061"}, sample)
		if err == nil || !strings.Contains(err.Error(), "cant_update_message") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		reply     slacktest.Reply
		permanent bool
	}{
		{slacktest.Reply{Error: "channel_not_found"}, true},
		{slacktest.Reply{Error: "not_in_channel"}, true},
		{slacktest.Reply{Error: "is_archived"}, true},
		{slacktest.Reply{Error: "invalid_auth"}, true},
		{slacktest.Reply{Error: "account_inactive"}, true},
		{slacktest.Reply{Error: "internal_error"}, false},
		{slacktest.Reply{Status: http.StatusInternalServerError}, false},
		{slacktest.Reply{Status: http.StatusBadGateway, Error: "bad_gateway"}, false},
	}
	for _, tt := range tests {
		name := tt.reply.Error
		if name == "" {
			name = http.StatusText(tt.reply.Status)
		}
		t.Run(name, func(t *testing.T) {
			a, srv, _ := newTestAdapter(t, time.Now(), nil)
			srv.Script("chat.postMessage", tt.reply)
			_, err := a.Post(context.Background(), bot.Conversation{Platform: bot.Slack, ID: "C1"}, sample)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, bot.ErrUndeliverable); got != tt.permanent {
				t.Fatalf("undeliverable = %v for %v", got, err)
			}
		})
	}
}

func TestNetworkErrorIsTransient(t *testing.T) {
	srv := slacktest.NewServer()
	url := srv.APIURL()
	srv.Close()
	a, err := New(Config{BotToken: slacktest.BotToken, SigningSecret: "s", APIURL: url, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Post(context.Background(), bot.Conversation{Platform: bot.Slack, ID: "C1"}, sample)
	if err == nil || errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("err = %v", err)
	}
}

func TestRateLimitRetried(t *testing.T) {
	var shape struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	if err := json.Unmarshal(readFixture(t, "ratelimited_429_slack_go_test.json"), &shape); err != nil {
		t.Fatal(err)
	}
	a, srv, waits := newTestAdapter(t, time.Now(), nil)
	// The fixture's shape: 429, Retry-After, empty body; then two more.
	srv.Script("chat.postMessage",
		slacktest.Reply{Status: shape.Status, RetryAfter: shape.Headers["Retry-After"]},
		slacktest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "3"},
		slacktest.Reply{Status: http.StatusTooManyRequests}, // no Retry-After
	)
	a.sleep = func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return nil
	}
	ref, err := a.Post(context.Background(), bot.Conversation{Platform: bot.Slack, ID: "C1"}, sample)
	if err != nil || ref.ID == "" {
		t.Fatalf("ref %+v err %v", ref, err)
	}
	if n := len(srv.Calls("chat.postMessage")); n != 4 {
		t.Fatalf("%d calls, want 4", n)
	}
	want := []time.Duration{time.Second, 3 * time.Second, time.Second}
	if len(*waits) != len(want) {
		t.Fatalf("waits %v", *waits)
	}
	for i := range want {
		if (*waits)[i] != want[i] {
			t.Fatalf("waits %v, want %v", *waits, want)
		}
	}
}

func TestRateLimitBounded(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), nil)
	a.sleep = func(ctx context.Context, d time.Duration) error { return nil }
	for range 10 {
		srv.Script("chat.update", slacktest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "1"})
	}
	err := a.Update(context.Background(), bot.MessageRef{Conv: bot.Conversation{ID: "C1"}, ID: "1.2"}, sample)
	if err == nil || errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Calls("chat.update")); n != maxRateLimitRetries+1 {
		t.Fatalf("%d calls", n)
	}
}

func TestRateLimitRespectsContext(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), nil)
	a.sleep = sleepCtx
	srv.Script("chat.postMessage", slacktest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "30"})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = srv.WaitCalls(context.Background(), "chat.postMessage", 1)
		cancel()
	}()
	_, err := a.Post(ctx, bot.Conversation{Platform: bot.Slack, ID: "C1"}, sample)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestCheck(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		a, srv, _ := newTestAdapter(t, time.Now(), nil)
		if err := a.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a.botUserID() != slacktest.BotUserID {
			t.Fatalf("bot id %q", a.botUserID())
		}
		if c := srv.Calls("auth.test"); len(c) != 1 || !c[0].FromHeader {
			t.Fatalf("calls %+v", c)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		const bad = "xoxb-1111-2222-not-the-right-one"
		a, _, _ := newTestAdapter(t, time.Now(), func(c *Config) { c.BotToken = bad })
		err := a.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "C2_SLACK_BOT_TOKEN") || !strings.Contains(err.Error(), "invalid_auth") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "2222") {
			t.Fatalf("token leaked: %v", err)
		}
	})
}
