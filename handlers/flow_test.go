package handlers_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

func TestDiagnoseShowsBlockersAndFixButton(t *testing.T) {
	e := newEnv(t)
	e.say(alice, "diagnose")
	msg := e.chat.lastPost(t).Msg
	text := msg.PlainText()
	for _, want := range []string{"Diagnosis for sandbox", "Security defaults are on", "require MFA", "50076",
		"explained by: security_defaults", "(delegated)", sandbox.DefaultToolAccount} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, text)
		}
	}
	// A delegated tool signs in with modern authentication: SharePoint's
	// legacy-auth setting and the invited-account match do not block it,
	// and the plan does not touch them.
	for _, wrong := range []string{"[blocker] SharePoint", "isLegacyAuthProtocolsEnabled): false → true", "isRequireAcceptingUserToMatchInvitedUserEnabled): true → false"} {
		if strings.Contains(text, wrong) {
			t.Errorf("diagnosis holds %q:\n%s", wrong, text)
		}
	}
	if len(msg.Buttons) != 1 || msg.Buttons[0].Label != "Request temporary fix" || msg.Buttons[0].Command != "fix sandbox" {
		t.Fatalf("buttons = %+v", msg.Buttons)
	}
	if e.writes("") != 0 {
		t.Fatal("diagnose wrote to the tenant")
	}
}

func TestApproveAppliesThenRevertsOnTime(t *testing.T) {
	e := newEnv(t)
	e.say(alice, "diagnose")
	e.click(alice, e.chat.lastPost(t).Ref, "Request temporary fix")
	card := e.chat.lastPost(t)
	if !strings.HasPrefix(card.Msg.Title, "Approval needed") {
		t.Fatalf("card = %s", card.Msg.PlainText())
	}
	for _, want := range []string{"Security defaults (isEnabled): true → false", "Alice", "8h"} {
		if !strings.Contains(card.Msg.PlainText(), want) {
			t.Errorf("card lacks %q:\n%s", want, card.Msg.PlainText())
		}
	}
	if !blocked(e.sb.State()) {
		t.Fatal("tenant changed before approval")
	}
	e.click(bob, card.Ref, "Approve")
	e.flush()
	if !opened(e.sb.State()) {
		t.Fatalf("tenant not changed after approval: %+v", e.sb.State())
	}
	applied := e.chat.message(card.Ref.ID)
	if !strings.Contains(applied.Title, "Applied") || !strings.Contains(applied.PlainText(), "up to 24 hours") || len(applied.Buttons) != 0 {
		t.Fatalf("card after approval:\n%s", applied.PlainText())
	}
	r := e.request("r-1")
	if r.State != store.Applied || r.Approver.ID != "web:bob" || r.DueAt.After(r.RevertAt) || r.RevertAt.Sub(r.AppliedAt) != 8*time.Hour {
		t.Fatalf("request = %+v", r)
	}

	e.clock.Advance(8*time.Hour - time.Minute)
	e.due()
	if !opened(e.sb.State()) {
		t.Fatal("reverted before the window ended")
	}
	e.clock.Advance(2 * time.Minute)
	e.due()
	if !blocked(e.sb.State()) {
		t.Fatalf("tenant not restored: %+v", e.sb.State())
	}
	if got := e.request("r-1"); got.State != store.Reverted || !got.DueAt.IsZero() {
		t.Fatalf("request after revert = %+v", got)
	}
	final := e.chat.message(card.Ref.ID)
	if !strings.HasPrefix(final.Title, "Reverted") {
		t.Fatalf("card not updated to reverted: %s", final.PlainText())
	}
	note := e.chat.lastPost(t)
	if !strings.Contains(note.Msg.Title, "Reverted") || note.Ref.Conv.Thread != card.Ref.ID {
		t.Fatalf("confirmation %+v not threaded under card %s", note.Ref, card.Ref.ID)
	}
	// Reverting again is harmless: nothing more is written.
	before := e.writes("")
	e.due()
	if e.writes("") != before {
		t.Fatal("a second scheduler pass wrote again")
	}
}

func TestApprovalPolicy(t *testing.T) {
	tests := []struct {
		name    string
		opt     envOption
		who     bot.User
		applied bool
		reply   string
	}{
		{"requester cannot approve own request", nil, alice, false, "not an approver"},
		{"approver that asked cannot self-approve", func(_ *handlers.Config, tc *handlers.TenantConfig) {
			tc.Approvers = append(tc.Approvers, "web:alice")
		}, alice, false, "another approver must approve"},
		{"self-approval when allowed", func(_ *handlers.Config, tc *handlers.TenantConfig) {
			tc.Approvers = append(tc.Approvers, "web:alice")
			tc.AllowSelfApproval = true
		}, alice, true, ""},
		{"stranger", nil, bot.User{ID: "mallory"}, false, "not an approver"},
		{"approver", nil, bob, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOption
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			e := newEnv(t, opts...)
			card := e.requestFix("")
			e.click(tt.who, card.Ref, "Approve")
			if got := opened(e.sb.State()); got != tt.applied {
				t.Fatalf("applied = %v, want %v", got, tt.applied)
			}
			if tt.reply != "" {
				if w := e.chat.lastWhisper(t); !strings.Contains(w, tt.reply) {
					t.Fatalf("reply = %q, want %q", w, tt.reply)
				}
				if r := e.request("r-1"); r.State != store.Pending {
					t.Fatalf("state = %s after refused approval", r.State)
				}
				if e.writes("") != 0 {
					t.Fatal("refused approval wrote to the tenant")
				}
			}
		})
	}
}

func TestDoubleApproveAppliesOnce(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("")
	var wg sync.WaitGroup
	for i, u := range []bot.User{bob, carol, bob, carol} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := card.Ref
			e.core.Handle(e.ctx, bot.Command{ID: "click-" + string(rune('a'+i)), User: u, Conv: room, Text: "approve r-1", Origin: &ref})
		}()
	}
	wg.Wait()
	if n := e.writes(pathSD); n != 1 {
		t.Fatalf("security defaults written %d times, want 1", n)
	}
	if n := e.writes(pathSP); n != 0 {
		t.Fatalf("SharePoint settings written %d times; they are not part of the plan", n)
	}
	if r := e.request("r-1"); r.State != store.Applied {
		t.Fatalf("state = %s", r.State)
	}
}

func TestRedeliveredCommandRunsOnce(t *testing.T) {
	e := newEnv(t)
	cmd := bot.Command{ID: "evt-1", User: alice, Conv: room, Text: "fix"}
	e.core.Handle(e.ctx, cmd)
	e.core.Handle(e.ctx, cmd)
	rs, err := e.st.List(e.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d requests for one redelivered command", len(rs))
	}
}

func TestApprovalExpires(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("")
	e.clock.Advance(59 * time.Minute)
	e.due()
	if r := e.request("r-1"); r.State != store.Pending {
		t.Fatalf("expired early: %s", r.State)
	}
	e.clock.Advance(2 * time.Minute)
	e.due()
	if r := e.request("r-1"); r.State != store.Expired {
		t.Fatalf("state = %s, want expired", r.State)
	}
	if m := e.chat.message(card.Ref.ID); !strings.HasPrefix(m.Title, "Expired") || len(m.Buttons) != 0 {
		t.Fatalf("card = %s", m.PlainText())
	}
}

func TestApproveAfterExpiryIsRefused(t *testing.T) {
	e := newEnv(t)
	e.requestFix("")
	e.clock.Advance(2 * time.Hour) // the scheduler has not run yet
	e.say(bob, "approve r-1")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "expired") {
		t.Fatalf("reply = %q", w)
	}
	if e.writes("") != 0 || e.request("r-1").State != store.Expired {
		t.Fatal("an expired request was applied")
	}
}

func TestDriftIsReportedAndLeftAlone(t *testing.T) {
	e := newEnvOn(t, "vendor-2025")
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	// During the window an admin turns security defaults back on by hand.
	st := e.sb.State()
	st.SecurityDefaults = true
	e.sb.SetState(st)
	sdWrites := e.writes(pathSD)
	e.clock.Advance(61 * time.Minute)
	e.due()
	if e.writes(pathSD) != sdWrites {
		t.Fatal("the revert wrote a setting someone else had already changed")
	}
	if !blocked2025(e.sb.State()) {
		t.Fatalf("state = %+v", e.sb.State())
	}
	note := e.chat.lastPost(t).Msg.PlainText()
	if !strings.Contains(note, "changed back outside c2bot") || !strings.Contains(note, "1 setting(s) reverted") {
		t.Fatalf("confirmation does not report the drift:\n%s", note)
	}
}

func TestFailureHalfwayRollsBack(t *testing.T) {
	// The vendor's 2025 plan has two items: Security defaults are turned off,
	// then SharePoint refuses; the first is rolled back.
	e := newEnvOn(t, "vendor-2025")
	card := e.requestFix("")
	e.sb.Fail(sandbox.FailRule{Method: "PATCH", PathPrefix: pathSP, Status: 403, Code: "Authorization_RequestDenied"})
	e.click(bob, card.Ref, "Approve")
	e.flush()
	r := e.request("r-1")
	if r.State != store.Failed {
		t.Fatalf("state = %s, want failed", r.State)
	}
	if !blocked2025(e.sb.State()) {
		t.Fatalf("security defaults not rolled back: %+v", e.sb.State())
	}
	if n := e.writes(pathSD); n != 2 {
		t.Fatalf("security defaults written %d times, want apply + rollback", n)
	}
	m := e.chat.message(card.Ref.ID)
	if !strings.HasPrefix(m.Title, "Failed") || !strings.Contains(m.Text, "reverted to its snapshot") {
		t.Fatalf("card = %s", m.PlainText())
	}
	if !r.DueAt.IsZero() {
		t.Fatal("a failed request still has a due time")
	}
}

func TestRevertFailureIsRetriedAndAnnounced(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	e.sb.Fail(sandbox.FailRule{Method: "PATCH", PathPrefix: pathSD, Status: 403, Code: "Authorization_RequestDenied"})
	e.clock.Advance(time.Hour + time.Second)
	e.due()
	r := e.request("r-1")
	if r.State != store.RevertFailed || r.Attempts != 1 || r.DueAt.IsZero() {
		t.Fatalf("request = %+v", r)
	}
	if note := e.chat.lastPost(t).Msg.Title; !strings.Contains(note, "failed") {
		t.Fatalf("failure not announced: %q", note)
	}
	e.clock.Advance(30 * time.Second)
	e.due()
	if e.request("r-1").Attempts != 1 {
		t.Fatal("retried before the backoff")
	}
	e.sb.ClearFailures()
	e.clock.Advance(time.Minute)
	e.due()
	if r := e.request("r-1"); r.State != store.Reverted {
		t.Fatalf("state = %s after retry", r.State)
	}
	if !blocked(e.sb.State()) {
		t.Fatalf("state = %+v", e.sb.State())
	}
	if m := e.chat.message(card.Ref.ID); !strings.HasPrefix(m.Title, "Reverted") || !strings.Contains(m.Text, "1 setting(s) reverted") {
		t.Fatalf("card = %s", m.PlainText())
	}
}

func TestRevertNowAndCancelAndDeny(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("")
	e.click(bob, card.Ref, "Approve")
	e.say(carol, "revert r-1")
	e.flush()
	if !blocked(e.sb.State()) || e.request("r-1").State != store.Reverted {
		t.Fatal("revert now did not revert")
	}
	e.say(bob, "revert r-1")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "nothing to revert") {
		t.Fatalf("reply = %q", w)
	}

	card2 := e.requestFix("")
	e.say(bob, "cancel r-2")
	e.flush()
	if m := e.chat.message(card2.Ref.ID); !strings.HasPrefix(m.Title, "Cancelled") {
		t.Fatalf("card = %s", m.PlainText())
	}
	card3 := e.requestFix("")
	e.click(alice, card3.Ref, "Deny")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "not an approver") {
		t.Fatalf("reply = %q", w)
	}
	e.click(carol, card3.Ref, "Deny")
	e.flush()
	if m := e.chat.message(card3.Ref.ID); !strings.HasPrefix(m.Title, "Denied") || len(m.Buttons) != 0 {
		t.Fatalf("card = %s", m.PlainText())
	}
}

func TestExtendNeedsApproval(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	before := e.request("r-1").RevertAt
	e.say(alice, "extend r-1 3h")
	ext := e.chat.lastPost(t)
	if !strings.Contains(ext.Msg.Title, "extend r-1 by 3h") {
		t.Fatalf("extension card = %s", ext.Msg.PlainText())
	}
	if !e.request("r-1").RevertAt.Equal(before) {
		t.Fatal("extension took effect before approval")
	}
	e.click(alice, ext.Ref, "Approve")
	if !e.request("r-1").RevertAt.Equal(before) {
		t.Fatal("requester approved their own extension")
	}
	e.click(bob, ext.Ref, "Approve")
	if got := e.request("r-1").RevertAt; !got.Equal(before.Add(3 * time.Hour)) {
		t.Fatalf("revert at %v, want %v", got, before.Add(3*time.Hour))
	}
	e.clock.Advance(2*time.Hour + time.Minute)
	e.due()
	if !opened(e.sb.State()) {
		t.Fatal("reverted at the old time")
	}
	e.say(alice, "extend r-1 70h")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "maximum") {
		t.Fatalf("reply = %q", w)
	}
	e.clock.Advance(3 * time.Hour)
	e.due()
	if !blocked(e.sb.State()) {
		t.Fatal("not reverted at the extended time")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	tests := []struct{ text, reply string }{
		{"frobnicate", "Unknown command"},
		{"fix --for soon", "not a duration"},
		{"fix --for 0s", "longer than zero"},
		{"fix --for 30s", "between 1m and 3d"},
		{"fix --for 100h", "between 1m and 3d"},
		{`fix --reason "unclosed`, "not closed"},
		{"fix --colour red", "unknown option --colour"},
		{"fix nowhere", "Unexpected"},
		{"approve", "Usage: approve <id>"},
		{"approve r-99", "No such request"},
		{"extend r-1 soon", "not a duration"},
		{"diagnose --product fax", "backup or migration"},
		{"signins --since 90d", "30 days"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			e := newEnv(t)
			e.say(alice, tt.text)
			if w := e.chat.lastWhisper(t); !strings.Contains(w, tt.reply) {
				t.Fatalf("reply = %q, want %q", w, tt.reply)
			}
			if rs, _ := e.st.List(e.ctx, 0); len(rs) != 0 {
				t.Fatal("bad input created a request")
			}
			if e.writes("") != 0 {
				t.Fatal("bad input wrote to the tenant")
			}
		})
	}
}

func TestOutboxSurvivesChatOutage(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	e.clock.Advance(time.Hour + time.Second)
	e.chat.mu.Lock()
	e.chat.failing = 100
	e.chat.mu.Unlock()
	e.due()
	if !blocked(e.sb.State()) {
		t.Fatal("a chat outage stopped the revert")
	}
	e.clock.Advance(5 * time.Minute)
	e.flush()
	if m := e.chat.message(card.Ref.ID); strings.HasPrefix(m.Title, "Reverted") {
		t.Fatal("delivered during the outage")
	}
	e.chat.mu.Lock()
	e.chat.failing = 0
	e.chat.mu.Unlock()
	e.clock.Advance(time.Hour)
	e.flush()
	if m := e.chat.message(card.Ref.ID); !strings.HasPrefix(m.Title, "Reverted") {
		t.Fatalf("card after the outage = %s", m.PlainText())
	}
	if !strings.HasPrefix(e.chat.lastPost(t).Msg.Title, "Reverted") {
		t.Fatal("confirmation not delivered after the outage")
	}
}

// A notice whose post landed but whose answer was lost (or whose process
// died before the outbox recorded it) is looked up before it is posted
// again: exactly one Reverted notice where the platform can be asked, and
// at least one (the old behaviour, said in the log) where it cannot.
func TestInterruptedNoticeIsPostedOnce(t *testing.T) {
	for _, canFind := range []bool{true, false} {
		t.Run(fmt.Sprint("canFind=", canFind), func(t *testing.T) {
			e := newEnv(t)
			e.chat.mu.Lock()
			e.chat.canFind = canFind
			e.chat.mu.Unlock()
			card := e.requestFix("--for 1h")
			e.click(bob, card.Ref, "Approve")
			e.flush()
			e.clock.Advance(time.Hour + time.Second)
			e.chat.mu.Lock()
			e.chat.lose = 1 // the card update goes first and is not a post: this is the notice
			e.chat.mu.Unlock()
			e.due()
			if !blocked(e.sb.State()) {
				t.Fatal("not reverted")
			}
			e.clock.Advance(time.Hour)
			e.flush()
			e.flush()
			notices := 0
			e.chat.mu.Lock()
			for _, p := range e.chat.posts {
				if strings.HasPrefix(p.Msg.Title, "Reverted") && p.Ref.Conv.Thread == card.Ref.ID {
					notices++
					if p.Msg.Key == "" {
						t.Error("notice posted without a key")
					}
				}
			}
			finds, lose := e.chat.finds, e.chat.lose
			e.chat.mu.Unlock()
			if lose != 0 {
				t.Fatal("the lost answer was not a post")
			}
			want := 1
			if !canFind {
				want = 2
			}
			if notices != want {
				t.Fatalf("%d Reverted notices in the thread; want %d", notices, want)
			}
			if finds != 1 {
				t.Errorf("%d look-ups; want exactly one, for the retried notice", finds)
			}
			if n := e.outboxLen(); n != 0 {
				t.Errorf("%d items left in the outbox", n)
			}
		})
	}
}

// The approval card goes through the outbox too: a card post whose answer
// was lost is found, not posted twice.
func TestCardWhoseAnswerWasLostIsPostedOnce(t *testing.T) {
	e := newEnv(t)
	e.chat.mu.Lock()
	e.chat.canFind, e.chat.lose = true, 1
	e.chat.mu.Unlock()
	e.say(alice, "fix")
	e.clock.Advance(2 * time.Minute) // the retry
	e.flush()
	cards := 0
	e.chat.mu.Lock()
	for _, p := range e.chat.posts {
		if strings.HasPrefix(p.Msg.Title, "Approval needed") {
			cards++
		}
	}
	e.chat.mu.Unlock()
	if cards != 1 {
		t.Fatalf("%d approval cards; want one", cards)
	}
	r := e.request("r-1")
	if len(r.Card) == 0 {
		t.Fatal("the card found again was not recorded")
	}
	e.click(bob, e.chat.lastPost(t).Ref, "Approve")
	if r := e.request("r-1"); r.State != store.Applied {
		t.Fatalf("state %s after approving on the recovered card", r.State)
	}
}

// A card that could never be posted does not hold back the request's later
// notices: its next state is posted as the card, and the Reverted notice
// reaches its thread.
func TestRequestWithoutCardStillGetsItsNotices(t *testing.T) {
	e := newEnv(t)
	e.chat.mu.Lock()
	e.chat.gone = true // the card is refused for good: dropped
	e.chat.mu.Unlock()
	e.say(alice, "fix --for 1h")
	e.chat.mu.Lock()
	e.chat.gone = false
	e.chat.mu.Unlock()
	if r := e.request("r-1"); len(r.Card) != 0 {
		t.Fatal("a card was recorded")
	}
	e.say(bob, "approve r-1")
	e.flush()
	r := e.request("r-1")
	if r.State != store.Applied || len(r.Card) == 0 {
		t.Fatalf("state %s, card %s: want applied, with its state posted as the card", r.State, r.Card)
	}
	e.clock.Advance(time.Hour + time.Second)
	e.due()
	e.flush()
	if n := e.outboxLen(); n != 0 {
		t.Fatalf("%d notices stuck in the outbox", n)
	}
	last := e.chat.lastPost(t)
	if !strings.HasPrefix(last.Msg.Title, "Reverted") || last.Ref.Conv.Thread == "" {
		t.Fatalf("last post %q (thread %q); want the Reverted notice in the card's thread", last.Msg.Title, last.Ref.Conv.Thread)
	}
}

func TestRecoverRollsBackInterruptedApply(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("")
	e.click(bob, card.Ref, "Approve")
	// Pretend the process died mid-apply: put the request back to applying.
	if _, err := e.st.Transition(e.ctx, "r-1", []store.State{store.Applied}, func(r *store.Request, _ *store.Changes) error {
		r.State = store.Applying
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.core.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.flush()
	if !blocked(e.sb.State()) {
		t.Fatalf("interrupted apply not rolled back: %+v", e.sb.State())
	}
	if r := e.request("r-1"); r.State != store.Failed {
		t.Fatalf("state = %s", r.State)
	}
	if m := e.chat.message(card.Ref.ID); !strings.Contains(m.PlainText(), "reverted") {
		t.Fatalf("card = %s", m.PlainText())
	}
}

func TestChannelBinding(t *testing.T) {
	e := newEnv(t, func(_ *handlers.Config, tc *handlers.TenantConfig) { tc.Channels = []string{"web:ops"} })
	e.say(alice, "diagnose")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "does not take commands in this channel") {
		t.Fatalf("reply = %q", w)
	}
	e.core.Handle(e.ctx, bot.Command{User: alice, Conv: bot.Conversation{Platform: bot.Web, ID: "ops"}, Text: "diagnose"})
	if !strings.Contains(e.chat.lastPost(t).Msg.Title, "Diagnosis for sandbox") {
		t.Fatal("bound channel was refused")
	}
}

func TestStatusSigninsAuditHelp(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix(`--reason "nightly <!channel> backup"`)
	if !strings.Contains(card.Msg.PlainText(), "nightly <!channel> backup") {
		t.Fatal("reason not shown verbatim")
	}
	e.click(bob, card.Ref, "Approve")
	e.say(alice, "status")
	if s := e.chat.lastPost(t).Msg.PlainText(); !strings.Contains(s, "r-1") || !strings.Contains(s, "Reverts at") {
		t.Fatalf("status = %s", s)
	}
	e.say(alice, "signins --since 6h")
	if s := e.chat.lastPost(t).Msg.PlainText(); !strings.Contains(s, "Error 50076") {
		t.Fatalf("signins = %s", s)
	}
	e.say(alice, "audit r-1")
	s := e.chat.lastPost(t).Msg.PlainText()
	for _, want := range []string{"requested", "approved", "applying", "applied"} {
		if !strings.Contains(s, want) {
			t.Fatalf("audit lacks %q: %s", want, s)
		}
	}
	e.say(alice, "help")
	s = e.chat.lastPost(t).Msg.PlainText()
	for _, verb := range []string{"diagnose", "fix", "approve", "deny", "status", "revert", "extend", "cancel", "signins", "audit", "help"} {
		if !strings.Contains(s, verb) {
			t.Fatalf("help lacks %s", verb)
		}
	}
}

func TestRecoverResumesInterruptedRevert(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	// Pretend the process died while reverting: the revert lease still runs.
	if _, err := e.st.Transition(e.ctx, "r-1", []store.State{store.Applied}, func(r *store.Request, _ *store.Changes) error {
		r.State = store.Reverting
		r.DueAt = e.clock.Now().Add(10 * time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.core.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.due()
	if !blocked(e.sb.State()) || e.request("r-1").State != store.Reverted {
		t.Fatalf("interrupted revert not resumed: %+v", e.sb.State())
	}
	if m := e.chat.message(card.Ref.ID); !strings.HasPrefix(m.Title, "Reverted") {
		t.Fatalf("card = %s", m.PlainText())
	}
}

func TestCardGoneIsPostedAgain(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	e.flush()
	e.chat.mu.Lock()
	delete(e.chat.msgs, card.Ref.ID) // the card was deleted in the channel
	e.chat.mu.Unlock()
	e.clock.Advance(time.Hour + time.Second)
	e.due()
	var titles []string
	e.chat.mu.Lock()
	for _, p := range e.chat.posts {
		titles = append(titles, p.Msg.Title)
	}
	e.chat.mu.Unlock()
	reposted := 0
	for _, title := range titles {
		if strings.HasPrefix(title, "Reverted: temporary change") {
			reposted++
		}
	}
	if reposted != 1 {
		t.Fatalf("the reverted card was not posted again: %q", titles)
	}
	if !strings.HasPrefix(e.chat.lastPost(t).Msg.Title, "Reverted: sandbox is back") {
		t.Fatal("confirmation missing")
	}
}

// TestConditionalAccessBlockerGetsTheScopedFix: a delegated tool blocked by
// an enforced MFA policy that reaches its account through a nested group
// (mfa-nested-group) gets the scoped exclusion of its account from that
// policy, not a tenant-wide change.
func TestConditionalAccessBlockerGetsTheScopedFix(t *testing.T) {
	e := newEnvOn(t, "mfa-nested-group")
	e.say(alice, "diagnose")
	diag := e.chat.lastPost(t).Msg.PlainText()
	if !strings.Contains(diag, "Require MFA for backup operators") || !strings.Contains(diag, "Policy id: "+sandbox.MFAPolicyID) {
		t.Fatalf("diagnosis does not name the policy:\n%s", diag)
	}
	card := e.requestFix("--for 1h")
	text := card.Msg.PlainText()
	if strings.Contains(text, "Security defaults") || !strings.Contains(text, "exclude "+sandbox.DefaultToolAccount) {
		t.Fatalf("the plan is not the scoped one:\n%s", text)
	}
	e.click(bob, card.Ref, "Approve")
	pol := e.sb.State().Policies[0]
	if pol.ID != sandbox.MFAPolicyID || len(pol.ExcludeUsers) != 1 || pol.ExcludeUsers[0] != sandbox.DefaultToolAccountID || pol.State != "enabled" {
		t.Fatalf("policy after apply = %+v", pol)
	}
	if e.sb.State().SecurityDefaults {
		t.Fatal("security defaults were turned on")
	}
	e.clock.Advance(time.Hour + time.Second)
	e.due()
	pol = e.sb.State().Policies[0]
	if len(pol.ExcludeUsers) != 0 || pol.State != "enabled" {
		t.Fatalf("policy after revert = %+v", pol)
	}
	if e.request("r-1").State != store.Reverted {
		t.Fatal("not reverted")
	}
}
