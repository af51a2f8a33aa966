package handlers_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// threadPosts returns the messages posted under the card whose title starts with prefix.
func (e *env) threadPosts(card bot.MessageRef, prefix string) []bot.Message {
	e.chat.mu.Lock()
	defer e.chat.mu.Unlock()
	var out []bot.Message
	for _, p := range e.chat.posts {
		if p.Ref.Conv.Thread == card.ID && strings.HasPrefix(p.Msg.Title, prefix) {
			out = append(out, p.Msg)
		}
	}
	return out
}

func (e *env) signInReads() int {
	n := 0
	for _, r := range e.sb.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/auditLogs/signIns") {
			n++
		}
	}
	return n
}

// runUntil moves the clock from due time to due time, running the
// scheduler, while the request is applied and stop says go on (at most n steps).
func (e *env) runUntil(id string, n int, stop func() bool) {
	e.t.Helper()
	for i := 0; i < n && e.request(id).State == store.Applied && !stop(); i++ {
		if d := e.request(id).DueAt.Sub(e.clock.Now()); d > 0 {
			e.clock.Advance(d)
		}
		e.due()
	}
}

func TestTookEffectPostedOnce(t *testing.T) {
	// The tool's sign-ins start to succeed two hours after the change.
	e := newEnvWith(t, sandbox.Options{Propagation: 2 * time.Hour}, true)
	card := e.requestFix("--for 8h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	r := e.request("r-1")
	if want := r.AppliedAt.Add(5 * time.Minute); !r.DueAt.Equal(want) {
		t.Fatalf("first sign-in check due %s, want %s", r.DueAt, want)
	}
	// Polls back off: 5m, 10m, 20m, 40m after the change, then the 1h checkpoint.
	var polls []time.Duration
	e.runUntil("r-1", 20, func() bool {
		d := e.request("r-1").DueAt.Sub(r.AppliedAt)
		if d < time.Hour {
			polls = append(polls, d)
		}
		return d >= time.Hour
	})
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute}
	if !slices.Equal(polls, want) {
		t.Fatalf("sign-in checks at %v, want %v", polls, want)
	}
	e.runUntil("r-1", 20, func() bool { return len(e.threadPosts(card.Ref, "The change took effect")) > 0 })
	posts := e.threadPosts(card.Ref, "The change took effect")
	if len(posts) != 1 || !strings.HasPrefix(posts[0].Title, "The change took effect after 2h") {
		t.Fatalf("took-effect notices: %+v", posts)
	}
	if txt := posts[0].PlainText(); !strings.Contains(txt, sandbox.DefaultToolAccount) {
		t.Fatalf("notice:\n%s", txt)
	}
	if cps := e.threadPosts(card.Ref, "Not in effect yet"); len(cps) != 1 || !strings.Contains(cps[0].Title, "1h after") {
		t.Fatalf("checkpoints before it took effect: %d", len(cps))
	}
	r = e.request("r-1")
	if !r.DueAt.Equal(r.RevertAt) {
		t.Fatalf("after it took effect, due %s, want the revert at %s", r.DueAt, r.RevertAt)
	}
	reads := e.signInReads()
	e.runUntil("r-1", 20, func() bool { return false })
	if st := e.request("r-1").State; st != store.Reverted {
		t.Fatalf("state = %s", st)
	}
	if n := len(e.threadPosts(card.Ref, "The change took effect")); n != 1 {
		t.Fatalf("took-effect posted %d times", n)
	}
	if len(e.threadPosts(card.Ref, "Not in effect yet")) != 1 || e.signInReads() != reads {
		t.Fatal("c2bot kept watching after the change took effect")
	}
	if acts := e.actions("r-1"); countOf(acts, "took_effect") != 1 || countOf(acts, "checkpoint") != 1 {
		t.Fatalf("audit = %v", acts)
	}
}

func TestCheckpointsWhileItStillFails(t *testing.T) {
	// A propagation delay of two days: the tool's sign-ins keep failing.
	e := newEnvWith(t, sandbox.Options{Propagation: 48 * time.Hour}, true)
	card := e.requestFix("--for 8h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	e.runUntil("r-1", 50, func() bool { return len(e.threadPosts(card.Ref, "Not in effect yet")) > 0 })
	cps := e.threadPosts(card.Ref, "Not in effect yet")
	if len(cps) != 1 || !strings.Contains(cps[0].Title, "1h after the change") {
		t.Fatalf("first checkpoint: %+v", cps)
	}
	txt := cps[0].PlainText()
	for _, want := range []string{"Error 50076", "MFA required", "multi-factor authentication", sandbox.DefaultToolAccount,
		"[blocker] Finding: ", "sign-ins by " + sandbox.DefaultToolAccount + " failed"} {
		if !strings.Contains(txt, want) {
			t.Errorf("checkpoint lacks %q:\n%s", want, txt)
		}
	}
	// Through to the revert: one more checkpoint (6h); the 24h one lies
	// outside the 8h window.
	e.runUntil("r-1", 50, func() bool { return false })
	if r := e.request("r-1"); r.State != store.Reverted {
		t.Fatalf("state = %s", r.State)
	}
	cps = e.threadPosts(card.Ref, "Not in effect yet")
	if len(cps) != 2 || !strings.Contains(cps[1].Title, "6h after the change") {
		t.Fatalf("checkpoints: %d", len(cps))
	}
	reads := e.signInReads()
	e.clock.Advance(24 * time.Hour)
	e.due()
	if e.signInReads() != reads {
		t.Fatal("sign-ins read after the revert")
	}
	if acts := e.actions("r-1"); countOf(acts, "checkpoint") != 2 || countOf(acts, "took_effect") != 0 {
		t.Fatalf("audit = %v", acts)
	}
}

func TestCheckpointsSurviveARestart(t *testing.T) {
	e := newEnvWith(t, sandbox.Options{Propagation: 48 * time.Hour}, true)
	card := e.requestFix("--for 8h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	start := e.request("r-1").AppliedAt
	e.clock.Advance(start.Add(time.Hour).Sub(e.clock.Now()))
	e.due()
	// A second core on the same database, as after a restart, three hours on
	// (the scheduler was down over no checkpoint) and then past 6h.
	core2, err := handlers.New(handlers.Config{Tenants: []handlers.TenantConfig{{Name: "sandbox", Client: e.cl,
		Approvers: []string{"web:bob", "web:carol"}, ToolAccount: sandbox.DefaultToolAccount}},
		Senders: []bot.Sender{e.chat}, Store: e.st, Now: e.clock.Now, RetryBase: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.core = core2
	if err := core2.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6*time.Hour + time.Minute)
	e.due()
	e.due()
	cps := e.threadPosts(card.Ref, "Not in effect yet")
	if len(cps) != 2 || !strings.Contains(cps[0].Title, "1h") || !strings.Contains(cps[1].Title, "6h") {
		var titles []string
		for _, m := range cps {
			titles = append(titles, m.Title)
		}
		t.Fatalf("checkpoints after restart: %v", titles)
	}
}

func remind30(_ *handlers.Config, tc *handlers.TenantConfig) { tc.RemindBefore = 30 * time.Minute }

func TestReminderBeforeRevertWithButtons(t *testing.T) {
	e := newEnv(t, remind30)
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	r := e.request("r-1")
	e.clock.Advance(r.RevertAt.Add(-31 * time.Minute).Sub(e.clock.Now()))
	e.due()
	if n := len(e.threadPosts(card.Ref, "r-1 reverts in")); n != 0 {
		t.Fatal("reminded early")
	}
	// A chat outage when the reminder is due delays it, never loses it.
	e.chat.mu.Lock()
	e.chat.failing = 3
	e.chat.mu.Unlock()
	e.clock.Advance(time.Minute)
	e.due()
	if n := len(e.threadPosts(card.Ref, "r-1 reverts in")); n != 0 {
		t.Fatal("posted during the outage?")
	}
	for i := 0; i < 5; i++ {
		e.clock.Advance(2 * time.Minute)
		e.flush()
	}
	rem := e.threadPosts(card.Ref, "r-1 reverts in")
	if len(rem) != 1 {
		t.Fatalf("%d reminders after the outage", len(rem))
	}
	var labels []string
	for _, b := range rem[0].Buttons {
		labels = append(labels, b.Label+"="+b.Command)
	}
	if strings.Join(labels, ",") != "Extend=extend r-1 8h,Revert now=revert r-1" {
		// 8h is the default window; the maximum (72h) leaves room for it.
		t.Fatalf("buttons = %v", labels)
	}
	e.due()
	if n := len(e.threadPosts(card.Ref, "r-1 reverts in")); n != 1 {
		t.Fatalf("reminder repeated: %d", n)
	}

	// Find the reminder's message and use its buttons.
	var ref bot.MessageRef
	e.chat.mu.Lock()
	for _, p := range e.chat.posts {
		if strings.HasPrefix(p.Msg.Title, "r-1 reverts in") {
			ref = p.Ref
		}
	}
	e.chat.mu.Unlock()
	// Extend asks for approval again; approved, the revert moves and a new
	// reminder is due before the new end.
	e.click(alice, ref, "Extend")
	ext := e.chat.lastPost(t)
	if !strings.HasPrefix(ext.Msg.Title, "Approval needed: extend r-1 by 8h") {
		t.Fatalf("Extend gave: %s", ext.Msg.PlainText())
	}
	e.click(bob, ext.Ref, "Approve")
	e.flush()
	r2 := e.request("r-1")
	if !r2.RevertAt.Equal(r.RevertAt.Add(8 * time.Hour)) {
		t.Fatalf("revert at %s after the extension, want %s", r2.RevertAt, r.RevertAt.Add(8*time.Hour))
	}
	if want := r2.RevertAt.Add(-30 * time.Minute); !r2.DueAt.Equal(want) && r2.DueAt.After(want) {
		t.Fatalf("due %s, want the new reminder by %s", r2.DueAt, want)
	}
	// Revert now checks who may revert: a stranger may not, the requester may.
	e.click(bot.User{ID: "mallory"}, ref, "Revert now")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "Only Alice or an approver") {
		t.Fatalf("stranger's Revert now: %q", w)
	}
	if !opened(e.sb.State()) {
		t.Fatal("a stranger reverted the change")
	}
	e.click(alice, ref, "Revert now")
	e.flush()
	if r := e.request("r-1"); r.State != store.Reverted || !blocked(e.sb.State()) {
		t.Fatalf("Revert now: %s, tenant %+v", r.State, e.sb.State())
	}
}

func TestNoReminderWhenOff(t *testing.T) {
	e := newEnv(t) // RemindBefore zero
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	for i := 0; i < 40 && e.request("r-1").State == store.Applied; i++ {
		e.clock.Advance(e.request("r-1").DueAt.Sub(e.clock.Now()))
		e.due()
	}
	if n := len(e.threadPosts(card.Ref, "r-1 reverts in")); n != 0 {
		t.Fatalf("%d reminders with the reminder off", n)
	}
}

func TestWatchWhenSignInsCannotBeRead(t *testing.T) {
	t.Run("errors: the checkpoint says so and the watch goes on", func(t *testing.T) {
		e := newEnvWith(t, sandbox.Options{Propagation: 48 * time.Hour}, true)
		card := e.requestFix("--for 8h")
		e.click(bob, card.Ref, "Approve")
		e.flush()
		e.sb.Fail(sandbox.FailRule{Method: "GET", PathPrefix: "/auditLogs/signIns", Status: 500})
		e.runUntil("r-1", 50, func() bool { return len(e.threadPosts(card.Ref, "Not in effect yet")) > 0 })
		cps := e.threadPosts(card.Ref, "Not in effect yet")
		if len(cps) != 1 || !strings.Contains(cps[0].Text, "could not read the sign-ins") {
			t.Fatalf("checkpoint while reads fail: %+v", cps)
		}
		e.sb.ClearFailures()
		e.runUntil("r-1", 50, func() bool { return len(e.threadPosts(card.Ref, "Not in effect yet")) > 1 })
		if cps := e.threadPosts(card.Ref, "Not in effect yet"); len(cps) != 2 || !strings.Contains(cps[1].PlainText(), "Error 50076") {
			t.Fatalf("checkpoint after reads recover: %+v", cps)
		}
	})
	t.Run("no licence: said once, then no more reads", func(t *testing.T) {
		e := newEnvWith(t, sandbox.Options{Propagation: 48 * time.Hour}, true)
		card := e.requestFix("--for 8h")
		e.click(bob, card.Ref, "Approve")
		e.flush()
		st := e.sb.State()
		st.P1 = false
		e.sb.SetState(st)
		e.runUntil("r-1", 50, func() bool { return false })
		if n := len(e.threadPosts(card.Ref, "c2bot cannot watch")); n != 1 {
			t.Fatalf("%d cannot-watch notices", n)
		}
		if n := len(e.threadPosts(card.Ref, "Not in effect yet")); n != 0 {
			t.Fatalf("%d checkpoints without a licence", n)
		}
		if acts := e.actions("r-1"); countOf(acts, "watch_stopped") != 1 || countOf(acts, "reverted") != 1 {
			t.Fatalf("audit = %v", acts)
		}
	})
}

// TestReminderSurvivesARestart: the reminder is due while the chat is down,
// and c2bot restarts before it is delivered; the new process delivers it,
// once.
func TestReminderSurvivesARestart(t *testing.T) {
	e := newEnv(t, remind30)
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	r := e.request("r-1")
	e.chat.mu.Lock()
	e.chat.failing = 1000
	e.chat.mu.Unlock()
	e.clock.Advance(r.RevertAt.Add(-30 * time.Minute).Sub(e.clock.Now()))
	e.due()
	if acts := e.actions("r-1"); countOf(acts, "reminded") != 1 {
		t.Fatalf("audit = %v", acts)
	}
	e.chat.mu.Lock()
	e.chat.failing = 0
	e.chat.mu.Unlock()
	core2, err := handlers.New(handlers.Config{Tenants: []handlers.TenantConfig{{Name: "sandbox", Client: e.cl,
		Approvers: []string{"web:bob", "web:carol"}, ToolAccount: sandbox.DefaultToolAccount, RemindBefore: 30 * time.Minute}},
		Senders: []bot.Sender{e.chat}, Store: e.st, Now: e.clock.Now, RetryBase: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.core = core2
	if err := core2.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute) // past the outbox's backoff
	e.due()
	e.due()
	if n := len(e.threadPosts(card.Ref, "r-1 reverts in")); n != 1 {
		t.Fatalf("%d reminders after the restart", n)
	}
	if acts := e.actions("r-1"); countOf(acts, "reminded") != 1 {
		t.Fatalf("audit = %v", acts)
	}
}
