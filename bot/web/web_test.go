package web

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
)

func TestConfig(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Channel() != "console" || len(a.Users()) != 2 || a.Users()[0].ID != "alice" || a.Users()[1].ID != "bob" {
		t.Errorf("defaults: channel %q, users %+v", a.Channel(), a.Users())
	}
	if a.Platform() != bot.Web {
		t.Errorf("Platform() = %q", a.Platform())
	}
	for name, users := range map[string][]bot.User{
		"empty id":     {{ID: ""}},
		"duplicate id": {{ID: "alice"}, {ID: "alice", Name: "Other"}},
		"space in id":  {{ID: "al ice"}},
	} {
		if _, err := New(Config{Users: users}); err == nil {
			t.Errorf("%s: New accepted %+v", name, users)
		}
	}
}

func TestPostUpdateEphemeral(t *testing.T) {
	clock := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	f := newFixture(t, Config{Now: func() time.Time { return clock }})
	a := f.a
	ctx := context.Background()

	ref, err := a.Post(ctx, conv, approvalCard)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if ref.ID != "m-1" || ref.Conv.Key() != "web:console" || ref.Conv.Thread != "" {
		t.Errorf("Post ref = %+v", ref)
	}
	reply, err := a.Post(ctx, conv.InThread(ref), bot.Message{Text: "threaded"})
	if err != nil {
		t.Fatal(err)
	}
	if reply.ID != "m-2" || reply.Conv.Thread != "m-1" {
		t.Errorf("thread reply ref = %+v", reply)
	}
	if err := a.PostEphemeral(ctx, conv, bot.User{ID: "alice"}, bot.Message{Text: "only alice"}); err != nil {
		t.Fatalf("PostEphemeral: %v", err)
	}

	alice, bob := f.messages(t, "alice"), f.messages(t, "bob")
	if got := strings.Join(ids(alice), ","); got != "m-1,m-2,m-3" {
		t.Errorf("alice sees %s", got)
	}
	if got := strings.Join(ids(bob), ","); got != "m-1,m-2" {
		t.Errorf("bob sees %s (the ephemeral message must stay with alice)", got)
	}
	if e := alice[2]; e.To != "alice" || e.Kind != kindBot || e.Message.Text != "only alice" {
		t.Errorf("ephemeral entry = %+v", e)
	}
	card := alice[0]
	if card.Thread != "" || alice[1].Thread != "m-1" || card.Version != 1 || !card.Time.Equal(clock) || card.Updated != nil {
		t.Errorf("entries = %+v", alice[:2])
	}
	if s := card.Message.Sections[0]; s.Severity != "warning" || s.Facts[0].Value != "enabled → disabled" {
		t.Errorf("section = %+v", s)
	}
	if b := card.Message.Buttons; len(b) != 2 || b[0].Label != "Approve" || b[0].Style != bot.StylePrimary || b[1].Command != "deny r-1" {
		t.Errorf("buttons = %+v", b)
	}
	if card.Plain != approvalCard.PlainText() {
		t.Errorf("plain = %q", card.Plain)
	}

	clock = clock.Add(time.Minute)
	applied := bot.Message{Title: "Temporary fix r-1 applied", Text: "reverts at 17:30"}
	if err := a.Update(ctx, ref, applied); err != nil {
		t.Fatalf("Update: %v", err)
	}
	alice = f.messages(t, "alice")
	if got := strings.Join(ids(alice), ","); got != "m-1,m-2,m-3" {
		t.Errorf("after Update alice sees %s: an update must keep the message's place", got)
	}
	if e := alice[0]; e.Version != 2 || e.Message.Title != applied.Title || len(e.Message.Buttons) != 0 ||
		e.Updated == nil || !e.Updated.Equal(clock) || !strings.Contains(e.Plain, "applied") {
		t.Errorf("updated entry = %+v", e)
	}

	// The transcript keeps its own copy of a posted message.
	msg := bot.Message{Sections: []bot.Section{{Title: "before"}}}
	if _, err := a.Post(ctx, conv, msg); err != nil {
		t.Fatal(err)
	}
	msg.Sections[0].Title = "after"
	if got := f.messages(t, "bob"); got[len(got)-1].Message.Sections[0].Title != "before" {
		t.Errorf("changing the caller's message changed the transcript")
	}

	other, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	staleRef, err := other.Post(ctx, conv, bot.Message{Text: "from another process"})
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	undeliverable := []struct {
		name string
		err  error
	}{
		{"post to another platform", second(a.Post(ctx, bot.Conversation{Platform: bot.Slack, ID: "console"}, applied))},
		{"post to another channel", second(a.Post(ctx, bot.Conversation{Platform: bot.Web, ID: "elsewhere"}, applied))},
		{"ephemeral to an unknown user", a.PostEphemeral(ctx, conv, bot.User{ID: "mallory"}, applied)},
		{"ephemeral to another channel", a.PostEphemeral(ctx, bot.Conversation{Platform: bot.Web, ID: "x"}, bot.User{ID: "alice"}, applied)},
		{"update unknown id", a.Update(ctx, bot.MessageRef{Conv: conv, ID: "m-99"}, applied)},
		{"update an earlier session's message", a.Update(ctx, staleRef, applied)},
		{"update an ephemeral message", a.Update(ctx, bot.MessageRef{Conv: conv, ID: "m-3"}, applied)},
		{"update in another channel", a.Update(ctx, bot.MessageRef{Conv: bot.Conversation{Platform: bot.Web, ID: "x"}, ID: "m-1"}, applied)},
	}
	for _, tt := range undeliverable {
		if !errors.Is(tt.err, bot.ErrUndeliverable) {
			t.Errorf("%s: error %v, want one wrapping ErrUndeliverable", tt.name, tt.err)
		}
	}
	if err := a.Update(ctx, bot.MessageRef{Conv: conv, ID: "m-1"}, applied); err != nil {
		t.Errorf("update by id without adapter data: %v", err)
	}
	if _, err := a.Post(canceled, conv, applied); err == nil || errors.Is(err, bot.ErrUndeliverable) {
		t.Errorf("post with a canceled context: %v, want a retryable error", err)
	}
}

func second(_ bot.MessageRef, err error) error { return err }

func TestMaxMessages(t *testing.T) {
	f := newFixture(t, Config{MaxMessages: 3})
	ctx := context.Background()
	var refs []bot.MessageRef
	for i := range 5 {
		ref, err := f.a.Post(ctx, conv, bot.Message{Text: fmt.Sprint("message ", i)})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if got := strings.Join(ids(f.messages(t, "alice")), ","); got != "m-3,m-4,m-5" {
		t.Errorf("transcript = %s, want the three newest", got)
	}
	if err := f.a.Update(ctx, refs[0], bot.Message{Text: "late"}); !errors.Is(err, bot.ErrUndeliverable) {
		t.Errorf("update of a dropped message: %v", err)
	}
	if err := f.a.Update(ctx, refs[4], bot.Message{Text: "fine"}); err != nil {
		t.Errorf("update of a kept message: %v", err)
	}
}

func TestEventStream(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.a
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	first, err := a.Post(ctx, conv, approvalCard)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PostEphemeral(ctx, conv, bot.User{ID: "alice"}, bot.Message{Text: "psst alice"}); err != nil {
		t.Fatal(err)
	}
	alice := f.openStream(t, ctx, "alice")
	bob := f.openStream(t, ctx, "bob")

	if snap := alice.snapshot(t); strings.Join(ids(snap.Messages), ",") != "m-1,m-2" || snap.User != "alice" || snap.Channel != "console" {
		t.Errorf("alice snapshot = %+v", snap)
	}
	if snap := bob.snapshot(t); strings.Join(ids(snap.Messages), ",") != "m-1" {
		t.Errorf("bob snapshot = %v", ids(snap.Messages))
	}

	// A new message reaches both; an ephemeral one only its user; an update
	// arrives as the same id with a higher version.
	if err := a.PostEphemeral(ctx, conv, bot.User{ID: "bob"}, bot.Message{Text: "psst bob"}); err != nil {
		t.Fatal(err)
	}
	thread, err := a.Post(ctx, conv.InThread(first), bot.Message{Text: "reply"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, first, bot.Message{Title: "Temporary fix r-1 reverted"}); err != nil {
		t.Fatal(err)
	}

	if e := alice.nextEntry(t); e.ID != thread.ID || e.Thread != first.ID {
		t.Errorf("alice got %+v, want the thread reply (bob's ephemeral must not reach her)", e)
	}
	if e := bob.nextEntry(t); e.ID != "m-3" || e.To != "bob" || e.Message.Text != "psst bob" {
		t.Errorf("bob got %+v, want his ephemeral message", e)
	}
	if e := bob.nextEntry(t); e.ID != thread.ID {
		t.Errorf("bob got %+v, want the thread reply", e)
	}
	for name, s := range map[string]*stream{"alice": alice, "bob": bob} {
		e := s.nextEntry(t)
		if e.ID != first.ID || e.Version != 2 || e.Message.Title != "Temporary fix r-1 reverted" || !strings.Contains(e.Plain, "reverted") {
			t.Errorf("%s got %+v, want the updated card", name, e)
		}
	}

	// A command typed on the page shows on every page.
	if status, _ := f.post(t, "/console/api/command", `{"user":"bob","text":"/c2 status"}`); status != 202 {
		t.Fatalf("command status %d", status)
	}
	for name, s := range map[string]*stream{"alice": alice, "bob": bob} {
		if e := s.nextEntry(t); e.Kind != kindUser || e.Author.ID != "bob" || e.Message.Text != "/c2 status" {
			t.Errorf("%s got %+v, want bob's command", name, e)
		}
	}

	// Close ends the streams.
	a.Close()
	for name, s := range map[string]*stream{"alice": alice, "bob": bob} {
		if ev, err := s.next(); err == nil {
			t.Errorf("%s: event %+v after Close, want the stream to end", name, ev)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("streams did not end on Close")
	}
	res, err := f.srv.Client().Get(f.srv.URL + "/console/api/events?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Errorf("stream after Close: status %d, want 503", res.StatusCode)
	}
}

func TestEventStreamEndsWithClient(t *testing.T) {
	f := newFixture(t, Config{})
	f.a.heartbeat = 5 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	reqCtx, leave := context.WithCancel(ctx)
	s := f.openStream(t, reqCtx, "alice")
	s.snapshot(t)

	// An idle stream sends heartbeat comments.
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for a heartbeat: %v", err)
		}
		if line == ": ping\n" {
			break
		}
	}

	leave()
	for f.subscribers() != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the stream stayed subscribed after its client left")
		case <-time.After(time.Millisecond):
		}
	}
}

func (f *fixture) subscribers() int {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	return len(f.a.subs)
}

func TestSlowStreamIsDropped(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s, _, err := a.subscribe("alice")
	if err != nil {
		t.Fatal(err)
	}
	for range subscriberBuffer + 1 {
		if _, err := a.Post(context.Background(), conv, bot.Message{Text: "flood"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range s.ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("a stream that never reads got %d events before being dropped, want %d", n, subscriberBuffer)
	}
	a.mu.Lock()
	left := len(a.subs)
	a.mu.Unlock()
	if left != 0 {
		t.Errorf("%d streams still subscribed", left)
	}
	a.unsubscribe(s) // already dropped: must not close twice
}

// TestConcurrentPostsWhileStreaming posts and updates from many goroutines
// while pages stream; every page ends up with every message at its last
// version, reconnecting from a snapshot if it was dropped for lagging.
func TestConcurrentPostsWhileStreaming(t *testing.T) {
	const writers, perWriter = 8, 40
	f := newFixture(t, Config{MaxMessages: 2 * writers * perWriter}) // nothing is dropped
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	want := writers * perWriter
	var readers sync.WaitGroup
	results := make(chan error, 3)
	for _, user := range []string{"alice", "bob", "alice"} {
		ready := make(chan struct{})
		readers.Add(1)
		go func() {
			defer readers.Done()
			results <- f.follow(ctx, user, want, ready)
		}()
		<-ready
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				ref, err := f.a.Post(ctx, conv, bot.Message{Text: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					t.Error(err)
					return
				}
				if err := f.a.Update(ctx, ref, bot.Message{Text: fmt.Sprintf("w%d-%d done", w, i)}); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					_ = f.a.PostEphemeral(ctx, conv, bot.User{ID: "bob"}, bot.Message{Text: "for bob"})
				}
			}
		}()
	}
	wg.Wait()
	// One last message marks the end for the readers.
	if _, err := f.a.Post(ctx, conv, bot.Message{Text: "end"}); err != nil {
		t.Fatal(err)
	}
	readers.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
}

// follow reads user's stream until it has seen the "end" message and every
// "done" version, reconnecting when the stream is dropped.
func (f *fixture) follow(ctx context.Context, user string, want int, ready chan struct{}) error {
	done := map[string]bool{}
	sawEnd := false
	for !sawEnd || len(done) < want {
		req, err := newStreamRequest(ctx, f.srv.URL, user)
		if err != nil {
			return err
		}
		res, err := f.srv.Client().Do(req)
		if err != nil {
			return fmt.Errorf("%s: open stream: %w", user, err)
		}
		s := &stream{res: res, br: newReader(res)}
		for {
			ev, err := s.next()
			if err != nil {
				break // dropped: reconnect
			}
			var batch []Entry
			switch ev.name {
			case "snapshot":
				if ready != nil {
					close(ready)
					ready = nil
				}
				var b snapshotBody
				if err := unmarshal(ev.data, &b); err != nil {
					return err
				}
				batch = b.Messages
			case "message":
				var e Entry
				if err := unmarshal(ev.data, &e); err != nil {
					return err
				}
				batch = []Entry{e}
			}
			for _, e := range batch {
				if e.To != "" && e.To != user {
					return fmt.Errorf("%s received %s, ephemeral for %s", user, e.ID, e.To)
				}
				if strings.HasSuffix(e.Message.Text, " done") {
					done[e.ID] = true
				}
				if e.Message.Text == "end" {
					sawEnd = true
				}
			}
			if sawEnd && len(done) >= want {
				break
			}
		}
		res.Body.Close()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: saw %d of %d updates before the deadline", user, len(done), want)
		}
	}
	return nil
}

func TestFindMarkedMessage(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.a
	ctx := context.Background()
	card, err := a.Post(ctx, conv, bot.Message{Text: "card", Key: "c"})
	if err != nil {
		t.Fatal(err)
	}
	thread := conv.InThread(card)
	notice, err := a.Post(ctx, thread, bot.Message{Text: "Reverted", Key: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PostEphemeral(ctx, thread, bot.User{ID: "alice"}, bot.Message{Text: "only alice", Key: "e"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		conv bot.Conversation
		key  string
		want string
	}{{thread, "n", notice.ID}, {conv, "c", card.ID}, {conv, "n", ""}, {thread, "c", ""}, {thread, "e", ""}, {thread, "x", ""}} {
		ref, ok, err := a.Find(ctx, c.conv, c.key)
		if err != nil || ok != (c.want != "") || (ok && ref.ID != c.want) {
			t.Errorf("Find(%q, %q) = %+v, %v, %v; want %q", c.conv.Thread, c.key, ref, ok, err, c.want)
		}
	}
	if _, _, err := a.Find(ctx, bot.Conversation{Platform: bot.Slack, ID: "console"}, "n"); err == nil {
		t.Error("Find in another platform's conversation")
	}
}
