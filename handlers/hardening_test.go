package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// faultyStore is the real store with hooks: a transition that "crashes"
// (returns an error without committing) and a callback that runs right after
// the scheduler has read its due list.
type faultyStore struct {
	*store.Store
	mu        sync.Mutex
	crash     func(id string, from []store.State) bool // true: fail this write once
	afterDue  func()                                   // runs once, after Due has read the list
	crashedID string
}

var errCrash = errors.New("process stopped (simulated)")

func (f *faultyStore) crashes(id string, from []store.State) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crash != nil && f.crash(id, from) {
		f.crash, f.crashedID = nil, id
		return true
	}
	return false
}

func (f *faultyStore) Transition(ctx context.Context, id string, from []store.State, fn func(*store.Request, *store.Changes) error) (store.Request, error) {
	if f.crashes(id, from) {
		return store.Request{}, errCrash
	}
	return f.Store.Transition(ctx, id, from, fn)
}

func (f *faultyStore) TransitionPair(ctx context.Context, id string, from []store.State, other string, otherFrom []store.State,
	fn func(r, o *store.Request, ch *store.Changes) error) (store.Request, store.Request, error) {
	if f.crashes(id, from) {
		return store.Request{}, store.Request{}, errCrash
	}
	return f.Store.TransitionPair(ctx, id, from, other, otherFrom, fn)
}

func (f *faultyStore) Due(ctx context.Context, now time.Time) ([]store.Request, error) {
	due, err := f.Store.Due(ctx, now)
	f.mu.Lock()
	hook := f.afterDue
	f.afterDue = nil
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return due, err
}

// newFaultyEnv is newEnv with the core on a faultyStore.
func newFaultyEnv(t *testing.T, opts ...envOption) (*env, *faultyStore) {
	t.Helper()
	fs := &faultyStore{}
	e := newEnv(t, append(opts, func(cfg *handlers.Config, _ *handlers.TenantConfig) {
		fs.Store = cfg.Store.(*store.Store)
		cfg.Store = fs
	})...)
	return e, fs
}

func auditActions(t *testing.T, e *env, id string) []string {
	t.Helper()
	events, err := e.st.Audit(e.ctx, 0, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		out = append(out, ev.Action)
	}
	return out
}

// Issue 8 item 4: an apply whose PATCH is held past its lease, while the
// scheduler rolls it back, must not leave the tenant changed next to a
// failed request. The held write lands after the rollback read the tenant;
// the apply finds its lease gone, writes nothing more, and undoes the late
// write, or, when it cannot, leaves a revert scheduled.
func TestApplyOutlivingItsLeaseEndsAtSnapshot(t *testing.T) {
	for _, undoFails := range []bool{false, true} {
		name := "late write undone"
		if undoFails {
			name = "undo fails: revert stays scheduled"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			card := e.requestFix("")
			held, release := e.sb.Hold("PATCH", "/")
			done := make(chan struct{})
			go func() {
				defer close(done)
				ref := card.Ref
				e.core.Handle(e.ctx, bot.Command{User: bob, Conv: room, Text: "approve r-1", Origin: &ref})
			}()
			select {
			case <-held:
			case <-time.After(time.Minute):
				t.Fatal("the apply's first PATCH never arrived")
			}
			// The write hangs past the 10-minute lease; the scheduler rolls back.
			e.clock.Advance(11 * time.Minute)
			e.due()
			if r := e.request("r-1"); r.State != store.Failed {
				t.Fatalf("state after the scheduler's rollback = %s, want failed", r.State)
			}
			if undoFails {
				// The tenant cannot be read when the apply tries to undo.
				e.sb.Fail(sandbox.FailRule{Method: "GET", PathPrefix: "/", Status: 503})
			}
			release() // the held PATCH lands now
			<-done
			e.sb.ClearFailures()
			e.flush()
			patches := 0
			for _, rq := range e.sb.Requests() {
				if rq.Method == "PATCH" {
					patches++
				}
			}
			r := e.request("r-1")
			if !undoFails {
				if !blocked(e.sb.State()) {
					t.Fatalf("tenant changed next to a %s request: %+v", r.State, e.sb.State())
				}
				if r.State != store.Failed {
					t.Fatalf("state = %s, want failed", r.State)
				}
				if patches != 2 {
					t.Fatalf("%d PATCHes: want the held write and its undo only (no write after the lease was lost)", patches)
				}
				if acts := auditActions(t, e, "r-1"); !slices.Contains(acts, "late_write_undone") {
					t.Fatalf("audit = %v, want late_write_undone", acts)
				}
				return
			}
			if r.State != store.RevertFailed || r.DueAt.IsZero() {
				t.Fatalf("request = %s due %v: want revert_failed with a revert scheduled", r.State, r.DueAt)
			}
			e.clock.Advance(time.Hour)
			e.due()
			if !blocked(e.sb.State()) || e.request("r-1").State != store.Reverted {
				t.Fatalf("scheduled revert did not restore the snapshot: %s %+v", e.request("r-1").State, e.sb.State())
			}
		})
	}
}

// Issue 8 item 4, sibling: a renewed lease is respected by a scheduler pass
// that read its due list before the renewal (the rollback re-checks the due
// time inside the transition that takes the lease over).
func TestSchedulerRespectsRenewedLease(t *testing.T) {
	e, fs := newFaultyEnv(t)
	card := e.requestFix("")
	held, release := e.sb.Hold("PATCH", pathSD)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ref := card.Ref
		e.core.Handle(e.ctx, bot.Command{User: bob, Conv: room, Text: "approve r-1", Origin: &ref})
	}()
	<-held // the apply renewed its lease; its write waits
	e.clock.Advance(11 * time.Minute)
	// Between Due and the takeover, the apply renews its lease (a live apply).
	fs.afterDue = func() {
		if _, err := e.st.Transition(e.ctx, "r-1", []store.State{store.Applying}, func(r *store.Request, _ *store.Changes) error {
			r.DueAt = e.clock.Now().Add(10 * time.Minute)
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	e.due()
	release()
	<-done
	e.flush()
	if r := e.request("r-1"); r.State != store.Applied || !opened(e.sb.State()) {
		t.Fatalf("a live apply was rolled back from a stale due list: %s %+v", r.State, e.sb.State())
	}
}

// Issue 8 item 5: an approved extension is not a change of its own. Its
// requester, who neither asked for the change nor approves, cannot revert
// the tenant through the extension's id; "revert <extension>" acts on the
// change and checks the change's rule.
func TestExtensionIsNotRevertableOnItsOwn(t *testing.T) {
	e := newEnv(t)
	mallory := bot.User{ID: "mallory", Name: "Mallory"}
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	e.say(mallory, "extend r-1 1h")
	ext := e.chat.lastPost(t)
	e.click(bob, ext.Ref, "Approve")
	if r := e.request("r-2"); r.State != store.Applied {
		t.Fatalf("extension state = %s", r.State)
	}
	e.say(mallory, "revert r-2")
	e.flush()
	if !opened(e.sb.State()) || e.request("r-1").State != store.Applied {
		t.Fatalf("a non-approver reverted the change through an extension: %s %+v", e.request("r-1").State, e.sb.State())
	}
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "r-2 extends r-1") || !strings.Contains(w, "Only Alice or an approver") {
		t.Fatalf("reply = %q", w)
	}
	e.say(mallory, "cancel r-2")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "already") {
		t.Fatalf("cancel of an approved extension: reply = %q", w)
	}
	// The change's requester may revert it, named by either id.
	e.say(alice, "revert r-2")
	e.flush()
	if !blocked(e.sb.State()) || e.request("r-1").State != store.Reverted {
		t.Fatalf("revert through the extension id did not revert the change: %s", e.request("r-1").State)
	}
	if r := e.request("r-2"); r.State != store.Applied {
		t.Fatalf("the extension itself changed state: %s", r.State)
	}
}

// Issue 8 item 6: approving an extension moves the parent's revert time and
// marks the extension applied in one transaction. A crash at that commit,
// then a restart, moves the parent exactly once.
func TestInterruptedExtensionAppliesOnce(t *testing.T) {
	e, fs := newFaultyEnv(t)
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	before := e.request("r-1").RevertAt
	e.say(alice, "extend r-1 3h")
	ext := e.chat.lastPost(t)
	// The first write that finishes the approved extension "crashes".
	fs.crash = func(id string, from []store.State) bool {
		return id == "r-2" && slices.Equal(from, []store.State{store.Approved})
	}
	e.click(bob, ext.Ref, "Approve")
	if fs.crashedID != "r-2" {
		t.Fatal("the extension's commit was not reached")
	}
	if err := e.core.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.due()
	want := before.Add(3 * time.Hour)
	if got := e.request("r-1").RevertAt; !got.Equal(want) {
		t.Fatalf("parent reverts at %v, want %v (moved once)", got, want)
	}
	if r := e.request("r-2"); r.State != store.Applied {
		t.Fatalf("extension state = %s", r.State)
	}
	n := 0
	for _, a := range auditActions(t, e, "r-1") {
		if a == "extended" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d extended events, want 1", n)
	}
}

// Issue 8 item 7: an extension approved between the scheduler reading its
// due list and reverting is honoured: the revert re-checks the due time
// inside its transition.
func TestSchedulerDoesNotRevertFromStaleDueList(t *testing.T) {
	e, fs := newFaultyEnv(t)
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	e.clock.Advance(50 * time.Minute)
	e.say(alice, "extend r-1 1h")
	ext := e.chat.lastPost(t)
	e.clock.Advance(11 * time.Minute) // r-1 is due now
	fs.afterDue = func() {
		ref := ext.Ref
		e.core.Handle(e.ctx, bot.Command{User: bob, Conv: room, Text: "approve r-2", Origin: &ref})
	}
	e.due()
	r := e.request("r-1")
	if r.State != store.Applied || !opened(e.sb.State()) {
		t.Fatalf("reverted from a stale due list: %s %+v", r.State, e.sb.State())
	}
	for _, p := range e.chat.posts {
		if strings.HasPrefix(p.Msg.Title, "Reverted") {
			t.Fatalf("a revert was announced: %s", p.Msg.PlainText())
		}
	}
	e.clock.Advance(time.Hour)
	e.due()
	if !blocked(e.sb.State()) {
		t.Fatal("not reverted at the extended time")
	}
}

// Issue 8 item 4, sibling: an apply whose write fails after its lease was
// taken over, and which then cannot read the tenant to roll back, cannot
// know whether its write landed: it leaves a revert scheduled rather than
// the scheduler's "failed".
func TestWriteFailingAfterLeaseLossKeepsRevertScheduled(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("")
	held, release := e.sb.Hold("PATCH", "/")
	done := make(chan struct{})
	go func() {
		defer close(done)
		ref := card.Ref
		e.core.Handle(e.ctx, bot.Command{User: bob, Conv: room, Text: "approve r-1", Origin: &ref})
	}()
	<-held
	e.clock.Advance(11 * time.Minute)
	e.due()
	if r := e.request("r-1"); r.State != store.Failed {
		t.Fatalf("state = %s", r.State)
	}
	e.sb.Fail(sandbox.FailRule{Method: "PATCH", PathPrefix: "/", Status: 403, Code: "Authorization_RequestDenied", Times: 1})
	e.sb.Fail(sandbox.FailRule{Method: "GET", PathPrefix: "/", Status: 503})
	release()
	<-done
	e.sb.ClearFailures()
	r := e.request("r-1")
	if r.State != store.RevertFailed || r.DueAt.IsZero() {
		t.Fatalf("request = %s due %v: want a revert scheduled", r.State, r.DueAt)
	}
	e.clock.Advance(time.Hour)
	e.due()
	if !blocked(e.sb.State()) || e.request("r-1").State != store.Reverted {
		t.Fatalf("not reverted: %s", e.request("r-1").State)
	}
}

// timedOutApply approves a fix whose PATCH the sandbox holds past the
// client timeout (each write is given a second): the apply gives up, and
// the rollback finds nothing changed and schedules its re-check. The held
// write lands when h is released.
func timedOutApply(t *testing.T) (*env, posted, sandbox.Held) {
	t.Helper()
	e := newEnv(t, func(cfg *handlers.Config, _ *handlers.TenantConfig) {
		cfg.ApplyLease = 2 * time.Second
	})
	card := e.requestFix("")
	h := e.sb.HoldRequest(sandbox.HoldSpec{Method: http.MethodPatch, Late: true})
	t.Cleanup(h.Release)
	e.click(bob, card.Ref, "Approve")
	<-h.Arrived()
	<-h.Gone()
	return e, card, h
}

// waitLanded waits until a released late write has turned Security
// defaults off.
func (e *env) waitLanded() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !opened(e.sb.State()) {
		if time.Now().After(deadline) {
			e.t.Fatal("the late write never landed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A write whose attempt timed out has an unknown outcome: Graph may take it
// after the rollback has read the tenant. The rollback must not end failed
// (failed next to a changed tenant); it keeps a re-check scheduled, which
// puts back the write that landed late. Found by the fault-injection suite
// ("a PATCH held past the client timeout lands after the rollback").
func TestTimedOutWriteLandingAfterRollbackIsUndone(t *testing.T) {
	e, card, h := timedOutApply(t)
	if !blocked(e.sb.State()) {
		t.Fatalf("the held write landed before its release: %+v", e.sb.State())
	}
	h.Release() // now it lands, after the rollback
	e.waitLanded()
	r := e.request("r-1")
	if r.State == store.Failed {
		t.Fatalf("request failed while the tenant holds the late write (%+v)", e.sb.State())
	}
	if r.State != store.RevertFailed || r.DueAt.IsZero() {
		t.Fatalf("request = %s due %v: want a re-check scheduled", r.State, r.DueAt)
	}
	if acts := auditActions(t, e, "r-1"); !slices.Contains(acts, "rollback_recheck") || slices.Contains(acts, "applied") {
		t.Fatalf("audit = %v, want rollback_recheck and no applied", acts)
	}
	e.flush()
	if m := e.chat.message(card.Ref.ID); !strings.HasPrefix(m.Title, "Rolled back, re-checking:") {
		t.Fatalf("card = %q", m.Title)
	}
	e.clock.Advance(time.Hour)
	e.due()
	e.flush()
	if r := e.request("r-1"); r.State != store.Reverted || !blocked(e.sb.State()) {
		t.Fatalf("the re-check did not put the late write back: %s %+v", r.State, e.sb.State())
	}
}

// TestWriteLandingAfterTheRecheckIsUndone: a timed-out write that lands
// even after the re-check ended the request reverted is found by the
// late-write watch, put back and announced; the watch then ends.
func TestWriteLandingAfterTheRecheckIsUndone(t *testing.T) {
	e, card, h := timedOutApply(t)
	e.clock.Advance(2 * time.Minute) // the re-check: the tenant is at its snapshot
	e.due()
	r := e.request("r-1")
	if r.State != store.Reverted || r.DueAt.IsZero() {
		t.Fatalf("after the re-check: %s due %v; want reverted with the late-write watch scheduled", r.State, r.DueAt)
	}
	if got := e.chat.lastPost(t).Msg; !strings.Contains(got.Text, "checks the tenant again until") {
		t.Errorf("Reverted notice does not say the watch goes on: %q", got.Text)
	}
	h.Release() // it lands now, after the request ended reverted
	e.waitLanded()

	e.clock.Advance(5 * time.Minute)
	e.due()
	if !blocked(e.sb.State()) {
		t.Fatalf("the late write was not put back: %+v", e.sb.State())
	}
	if acts := auditActions(t, e, "r-1"); !slices.Contains(acts, "late_write_undone") {
		t.Fatalf("audit = %v, want late_write_undone", acts)
	}
	if got := e.chat.lastPost(t); !strings.HasPrefix(got.Msg.Title, "Late write undone: sandbox (r-1)") || got.Ref.Conv.Thread != card.Ref.ID {
		t.Errorf("last post %q in thread %q; want the late-write notice in the card's thread", got.Msg.Title, got.Ref.Conv.Thread)
	}
	// The watch ends after an hour with a check that succeeds.
	for range 12 {
		e.clock.Advance(15 * time.Minute)
		e.due()
	}
	if r := e.request("r-1"); r.State != store.Reverted || !r.DueAt.IsZero() {
		t.Fatalf("after the watch: %s due %v; want reverted, nothing scheduled", r.State, r.DueAt)
	}
	if _, ok, err := e.st.NextDue(e.ctx); err != nil || ok {
		t.Fatalf("still scheduled: %v %v", ok, err)
	}
	if n := e.writes(pathSD); n != 2 {
		t.Errorf("%d PATCHes; want the late one and the one putting it back", n)
	}
}

// TestLateWriteWatchLeavesANewerChangeAlone: while the watch is on, a new
// approved change of the same setting is that change's to revert; the watch
// does not undo it.
func TestLateWriteWatchLeavesANewerChangeAlone(t *testing.T) {
	e, _, h := timedOutApply(t)
	h.Release()
	e.clock.Advance(2 * time.Minute)
	e.due() // the re-check puts the late write back and ends reverted, watching
	if r := e.request("r-1"); r.State != store.Reverted || !blocked(e.sb.State()) {
		t.Fatalf("after the re-check: %s %+v", r.State, e.sb.State())
	}
	card2 := e.requestFix("--for 8h")
	e.click(carol, card2.Ref, "Approve")
	if r := e.request("r-2"); r.State != store.Applied || !opened(e.sb.State()) {
		t.Fatalf("the new change: %s %+v", r.State, e.sb.State())
	}
	e.clock.Advance(5 * time.Minute)
	e.due()
	if !opened(e.sb.State()) {
		t.Fatalf("the watch of r-1 undid r-2's approved change: %+v", e.sb.State())
	}
	if acts := auditActions(t, e, "r-1"); !slices.Contains(acts, "late_check_skipped") || slices.Contains(acts, "late_write_undone") {
		t.Fatalf("audit = %v, want late_check_skipped only", acts)
	}
}

// TestLateWriteWatchIsAbandonedWhenChecksKeepFailing: a watch whose checks
// fail for a day past its end stops, audited, instead of running forever.
func TestLateWriteWatchIsAbandonedWhenChecksKeepFailing(t *testing.T) {
	e, _, _ := timedOutApply(t)
	e.clock.Advance(2 * time.Minute)
	e.due() // reverted, watching
	if r := e.request("r-1"); r.State != store.Reverted || r.DueAt.IsZero() {
		t.Fatalf("after the re-check: %s due %v", r.State, r.DueAt)
	}
	e.sb.Fail(sandbox.FailRule{Status: http.StatusServiceUnavailable}) // every Graph call, from now on
	for range 6 {
		e.clock.Advance(6 * time.Hour)
		e.due()
	}
	r := e.request("r-1")
	if r.State != store.Reverted || !r.DueAt.IsZero() {
		t.Fatalf("after 36 hours of failing checks: %s due %v; want the watch given up", r.State, r.DueAt)
	}
	if acts := auditActions(t, e, "r-1"); !slices.Contains(acts, "late_watch_abandoned") {
		t.Fatalf("audit = %v, want late_watch_abandoned", acts)
	}
}
