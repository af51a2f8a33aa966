package slack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

func TestSocketMode(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), func(c *Config) { c.SigningSecret = ""; c.AppToken = slacktest.AppToken })
	rec := newRecorder()
	a.Attach(rec)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.RunSocketMode(runCtx) }()

	// A slash command: the ack carries the ephemeral "working on" reply.
	id, err := srv.SendEnvelope(ctx, slacktest.EnvelopeSlashCommand, map[string]string{
		"token": "x", "team_id": slacktest.TeamID, "channel_id": "C0TENANT", "user_id": "U0ALICE", "user_name": "alice",
		"command": "/c2", "text": "diagnose contoso", "trigger_id": "trig.sock.1",
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]string
	if err := json.Unmarshal(ack, &payload); err != nil || payload["text"] != "Working on `diagnose contoso`…" || payload["response_type"] != "ephemeral" {
		t.Fatalf("ack payload %s (%v)", ack, err)
	}
	assertCommand(t, rec.next(t), bot.Command{
		ID: "trig.sock.1", User: bot.User{ID: "U0ALICE", Name: "alice"},
		Conv: bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}, Text: "diagnose contoso",
	})

	// A button click, from the documented payload.
	id, err = srv.SendEnvelope(ctx, slacktest.EnvelopeInteractive, json.RawMessage(readFixture(t, "block_actions_docs_message_button.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := srv.WaitAck(ctx, id); err != nil || string(ack) != "null" {
		t.Fatalf("interactive ack %s %v", ack, err)
	}
	if c := rec.next(t); c.Text != "click_me_123" || c.Origin == nil || c.Origin.ID != "1548261231.000200" || c.User.ID != "UA8RXUSPL" {
		t.Fatalf("click command %+v", c)
	}

	// An app mention, then its redelivery: both acknowledged, run once.
	mention := slacktest.AppMention("EvSock1", "C0TENANT", "U0ALICE", "status")
	for attempt := range 2 {
		id, err = srv.SendEnvelope(ctx, slacktest.EnvelopeEventsAPI, mention, attempt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.WaitAck(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if c := rec.next(t); c.ID != "EvSock1" || c.Text != "status" {
		t.Fatalf("mention command %+v", c)
	}

	// An event type slack-go does not know is acknowledged anyway.
	id, err = srv.SendEnvelope(ctx, slacktest.EnvelopeEventsAPI, map[string]any{
		"type": "event_callback", "event_id": "EvSock2", "event": map[string]any{"type": "no_such_event"},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.commands()); n != 3 {
		t.Fatalf("%d commands, want 3", n)
	}
	// apps.connections.open was called with the app token, as a bearer header.
	if c := srv.Calls("apps.connections.open"); len(c) == 0 || c[0].Token != slacktest.AppToken || !c[0].FromHeader {
		t.Fatalf("connections.open calls %+v", c)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunSocketMode after cancel: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("RunSocketMode did not return after cancel")
	}
}

func TestSocketModeBusy(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), func(c *Config) { c.AppToken = slacktest.AppToken })
	rec := newRecorder()
	rec.refuse = true
	a.Attach(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.RunSocketMode(runCtx) }()
	defer func() { stop(); <-done }()

	id, err := srv.SendEnvelope(ctx, slacktest.EnvelopeSlashCommand, map[string]string{
		"channel_id": "C1", "user_id": "U1", "command": "/c2", "text": "status", "trigger_id": "t.busy", "team_id": slacktest.TeamID,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil || !strings.Contains(string(ack), "c2bot is busy, try again in a minute") {
		t.Fatalf("ack %s %v", ack, err)
	}
	// A refused click is acknowledged and the clicker told in an ephemeral.
	id, err = srv.SendEnvelope(ctx, slacktest.EnvelopeInteractive, json.RawMessage(readFixture(t, "block_actions_bolt_python_button.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	m, err := srv.WaitMessage(ctx, func(m slacktest.Message) bool { return m.Ephemeral && m.User == "W111" })
	if err != nil || !strings.Contains(m.BlockText(), "busy") || m.Channel != "C111" {
		t.Fatalf("notice %+v %v", m, err)
	}
}

func TestSocketModeBadAppToken(t *testing.T) {
	a, _, _ := newTestAdapter(t, time.Now(), func(c *Config) { c.AppToken = "xapp-1-wrong-9999" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.RunSocketMode(ctx)
	if err == nil || !strings.Contains(err.Error(), "C2_SLACK_APP_TOKEN") || strings.Contains(err.Error(), "9999") {
		t.Fatalf("err = %v", err)
	}
}

func TestSocketModeNeedsAppToken(t *testing.T) {
	a, _, _ := newTestAdapter(t, time.Now(), nil)
	if err := a.RunSocketMode(context.Background()); err == nil || !strings.Contains(err.Error(), "C2_SLACK_APP_TOKEN") {
		t.Fatalf("err = %v", err)
	}
}
