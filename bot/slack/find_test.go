package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

// checkedAdapter is a test adapter that has run auth.test, so it knows its
// own user id.
func checkedAdapter(t *testing.T) (*Adapter, *slacktest.Server) {
	t.Helper()
	a, srv, _ := newTestAdapter(t, time.Now(), nil)
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a, srv
}

func TestFindRecognisesOnlyItsOwnMarkedMessage(t *testing.T) {
	a, srv := checkedAdapter(t)
	ctx := context.Background()
	channel := bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}
	card, err := a.Post(ctx, channel, bot.Message{Title: "Approval", Key: "card-1"})
	if err != nil {
		t.Fatal(err)
	}
	thread := channel.InThread(card)
	// Somebody imitates the mark: another app's message with the same
	// block_id, in the thread and in the channel.
	forged := json.RawMessage(fmt.Sprintf(`[{"type":"section","block_id":%q,"text":{"type":"plain_text","text":"Reverted: fake"}}]`, keyBlockID("notice-7")))
	srv.Add(slacktest.Message{Channel: "C0TENANT", ThreadTS: card.ID, Text: "Reverted: fake", Blocks: forged, Author: "U0MALLORY", AuthorBot: "B0OTHER"})
	srv.Add(slacktest.Message{Channel: "C0TENANT", Text: "Reverted: fake", Blocks: forged, Author: "U0MALLORY"})

	if _, ok, err := a.Find(ctx, thread, "notice-7"); err != nil || ok {
		t.Fatalf("before the notice: ok=%v err=%v; another author's mark must not count", ok, err)
	}
	notice, err := a.Post(ctx, thread, bot.Message{Title: "Reverted: Security defaults", Key: "notice-7"})
	if err != nil {
		t.Fatal(err)
	}
	// A notice without a key, and a person's reply, after it.
	if _, err := a.Post(ctx, thread, bot.Message{Title: "Reverted: something else"}); err != nil {
		t.Fatal(err)
	}
	srv.Add(slacktest.Message{Channel: "C0TENANT", ThreadTS: card.ID, Text: "thanks", Author: "U0ALICE"})

	got, ok, err := a.Find(ctx, thread, "notice-7")
	if err != nil || !ok || got.ID != notice.ID || got.Conv.Thread != thread.Thread {
		t.Fatalf("Find(thread, notice-7) = %+v, %v, %v; want %s", got, ok, err, notice.ID)
	}
	if _, ok, err := a.Find(ctx, thread, "notice-8"); err != nil || ok {
		t.Fatalf("Find(other key) = %v, %v", ok, err)
	}
	got, ok, err = a.Find(ctx, channel, "card-1")
	if err != nil || !ok || got.ID != card.ID {
		t.Fatalf("Find(channel, card-1) = %+v, %v, %v; want the card %s", got, ok, err, card.ID)
	}
	// A thread reply is not a top-level message.
	if _, ok, err := a.Find(ctx, channel, "notice-7"); err != nil || ok {
		t.Fatalf("Find(channel, notice-7) = %v, %v; the notice is in the thread only", ok, err)
	}
	if n := len(srv.Calls("conversations.replies")); n == 0 {
		t.Error("conversations.replies never called")
	}
}

func TestFindPagesThroughLongThreads(t *testing.T) {
	a, srv := checkedAdapter(t)
	ctx := context.Background()
	channel := bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}
	card, err := a.Post(ctx, channel, bot.Message{Title: "Approval"})
	if err != nil {
		t.Fatal(err)
	}
	thread := channel.InThread(card)
	notice, err := a.Post(ctx, thread, bot.Message{Title: "Applied", Key: "early"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2*findPage + 10 {
		srv.Add(slacktest.Message{Channel: "C0TENANT", ThreadTS: card.ID, Text: fmt.Sprint("reply ", i), Author: "U0ALICE"})
	}
	got, ok, err := a.Find(ctx, thread, "early")
	if err != nil || !ok || got.ID != notice.ID {
		t.Fatalf("Find = %+v, %v, %v", got, ok, err)
	}
	if n := len(srv.Calls("conversations.replies")); n != 1 {
		// The notice is the second message of the thread: on the first page.
		t.Errorf("%d calls", n)
	}
	// A key that is not there: every page, bounded.
	if _, ok, err := a.Find(ctx, thread, "absent"); err != nil || ok {
		t.Fatalf("Find(absent) = %v, %v", ok, err)
	}
	if n := len(srv.Calls("conversations.replies")); n != 1+3 {
		t.Errorf("%d calls after looking for an absent key; want 1 + 3 pages", n)
	}
}

func TestFindWithoutHistoryScopeCannotLook(t *testing.T) {
	a, srv := checkedAdapter(t)
	srv.SetScopes("commands", "chat:write", "app_mentions:read")
	ctx := context.Background()
	for _, conv := range []bot.Conversation{
		{Platform: bot.Slack, ID: "C0TENANT"},
		{Platform: bot.Slack, ID: "C0TENANT", Thread: "1700000000.000001"},
		{Platform: bot.Slack, ID: "G0PRIVATE"},
	} {
		_, ok, err := a.Find(ctx, conv, "k")
		if ok || !errors.Is(err, bot.ErrCannotLook) || errors.Is(err, bot.ErrUndeliverable) {
			t.Errorf("%+v: ok=%v err=%v; want ErrCannotLook", conv, ok, err)
		}
	}
}

func TestFindBeforeAuthTestCannotLook(t *testing.T) {
	a, _, _ := newTestAdapter(t, time.Now(), nil)
	_, _, err := a.Find(context.Background(), bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}, "k")
	if !errors.Is(err, bot.ErrCannotLook) {
		t.Fatalf("err = %v", err)
	}
}

func TestFindTransientErrorIsRetryable(t *testing.T) {
	a, srv := checkedAdapter(t)
	srv.Script("conversations.history", slacktest.Reply{Status: 503})
	_, ok, err := a.Find(context.Background(), bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}, "k")
	if ok || err == nil || errors.Is(err, bot.ErrCannotLook) || errors.Is(err, bot.ErrUndeliverable) {
		t.Fatalf("ok=%v err=%v; want a plain (retryable) error", ok, err)
	}
}

func TestKeyIsTheFirstBlockID(t *testing.T) {
	blocks, _ := render(bot.Message{Title: "Reverted", Text: "x", Key: "n-1"})
	if blocks[0].ID() != "c2bot-n-1" {
		t.Fatalf("first block id %q", blocks[0].ID())
	}
	for _, b := range blocks[1:] {
		if b.ID() == "c2bot-n-1" {
			t.Fatal("key on two blocks")
		}
	}
	long, _ := render(bot.Message{Text: "x", Key: string(make([]byte, 400))})
	if len(long[0].ID()) > maxBlockID {
		t.Fatalf("block_id of %d characters", len(long[0].ID()))
	}
}

func TestMissingHistoryScopesFromAuthTest(t *testing.T) {
	a, srv, _ := newTestAdapter(t, time.Now(), nil)
	if m := a.MissingHistoryScopes(); m != nil {
		t.Fatalf("before auth.test: %v; want nil (not known)", m)
	}
	srv.SetScopes("commands", "chat:write", "im:history")
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := a.MissingHistoryScopes(); !slices.Equal(m, []string{"channels:history", "groups:history"}) {
		t.Fatalf("missing = %v", m)
	}
	srv.SetScopes(slacktest.ManifestScopes...)
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := a.MissingHistoryScopes(); len(m) != 0 {
		t.Fatalf("with the manifest's scopes: missing %v", m)
	}
}
