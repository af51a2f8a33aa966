package handlers_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

var dave = bot.User{ID: "dave", Name: "Dave"}

// twoApprovals requires two of bob, carol, dave (and alice, so that the
// requester is an approver too).
func twoApprovals(_ *handlers.Config, tc *handlers.TenantConfig) {
	tc.Approvers = []string{"web:alice", "web:bob", "web:carol", "web:dave"}
	tc.ApprovalsRequired = 2
	tc.AllowSelfApproval = true // even so, with two required the requester never counts
}

func (e *env) actions(id string) []string {
	e.t.Helper()
	evs, err := e.st.Audit(e.ctx, 0, id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func countOf(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func TestTwoApprovalsNeeded(t *testing.T) {
	e := newEnv(t, twoApprovals)
	card := e.requestFix("")
	if txt := card.Msg.PlainText(); !strings.Contains(txt, "0 of 2 approvals") {
		t.Fatalf("card does not count approvals:\n%s", txt)
	}

	// The requester never counts.
	e.click(alice, card.Ref, "Approve")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "does not count") {
		t.Fatalf("requester's approval: %q", w)
	}
	// One approval: still pending, nothing written, the card says who.
	e.click(bob, card.Ref, "Approve")
	e.flush()
	if r := e.request("r-1"); r.State != store.Pending || len(r.Approvals) != 1 {
		t.Fatalf("after one approval: %s with %d approvals", r.State, len(r.Approvals))
	}
	if e.writes("") != 0 {
		t.Fatal("the tenant was changed after one of two approvals")
	}
	m := e.chat.message(card.Ref.ID)
	if txt := m.PlainText(); !strings.Contains(txt, "1 of 2 approvals (Bob)") || len(m.Buttons) != 2 {
		t.Fatalf("card after one approval:\n%s", txt)
	}
	e.say(alice, "status")
	if txt := e.chat.lastPost(t).Msg.PlainText(); !strings.Contains(txt, "Approvals: 1 of 2 approvals (Bob)") {
		t.Fatalf("status does not count approvals:\n%s", txt)
	}
	// The same approver again counts once.
	e.click(bob, card.Ref, "Approve")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "already approved") {
		t.Fatalf("second approval by the same person: %q", w)
	}
	if r := e.request("r-1"); r.State != store.Pending || len(r.Approvals) != 1 {
		t.Fatalf("a double approval counted: %s with %d", r.State, len(r.Approvals))
	}
	// The second distinct approver applies it, once.
	e.click(carol, card.Ref, "Approve")
	e.flush()
	r := e.request("r-1")
	if r.State != store.Applied || !opened(e.sb.State()) {
		t.Fatalf("after two approvals: %s, tenant %+v", r.State, e.sb.State())
	}
	if txt := e.chat.message(card.Ref.ID).PlainText(); !strings.Contains(txt, "Bob, Carol") {
		t.Fatalf("applied card does not name both approvers:\n%s", txt)
	}
	acts := e.actions("r-1")
	if countOf(acts, "approval") != 1 || countOf(acts, "approved") != 1 || countOf(acts, "applied") != 1 {
		t.Fatalf("audit = %v", acts)
	}
	evs, _ := e.st.Audit(e.ctx, 0, "r-1")
	for _, ev := range evs {
		if ev.Action == "approval" && (ev.Actor != "web:bob" || ev.Detail != "1 of 2") {
			t.Fatalf("first approval recorded as %+v", ev)
		}
		if ev.Action == "approved" && (ev.Actor != "web:carol" || !strings.Contains(ev.Detail, "2 of 2")) {
			t.Fatalf("last approval recorded as %+v", ev)
		}
	}
}

func TestDenyAfterOneApprovalEndsIt(t *testing.T) {
	e := newEnv(t, twoApprovals)
	card := e.requestFix("")
	e.click(bob, card.Ref, "Approve")
	e.click(carol, card.Ref, "Deny")
	e.flush()
	if r := e.request("r-1"); r.State != store.Denied {
		t.Fatalf("state = %s, want denied", r.State)
	}
	e.say(dave, "approve r-1")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "already denied") {
		t.Fatalf("approval after a deny: %q", w)
	}
	if e.writes("") != 0 {
		t.Fatal("a denied request changed the tenant")
	}
	if txt := e.chat.message(card.Ref.ID).PlainText(); !strings.Contains(txt, "Denied by: Carol") || !strings.Contains(txt, "Approved by: Bob") {
		t.Fatalf("denied card:\n%s", txt)
	}
}

// TestConcurrentApprovalsCountOnce clicks Approve four times at once as
// each of two approvers: each counts once and the change is applied once.
func TestConcurrentApprovalsCountOnce(t *testing.T) {
	e := newEnv(t, twoApprovals)
	card := e.requestFix("")
	click := func(u bot.User, n int) {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ref := card.Ref
				e.core.Handle(e.ctx, bot.Command{User: u, Conv: room, Text: "approve r-1", Origin: &ref})
			}()
		}
		wg.Wait()
	}
	click(bob, 4)
	if r := e.request("r-1"); r.State != store.Pending || len(r.Approvals) != 1 {
		t.Fatalf("four clicks by one approver: %s with %d approvals", r.State, len(r.Approvals))
	}
	var wg sync.WaitGroup
	for _, u := range []bot.User{carol, dave, carol, dave} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			click(u, 1)
		}()
	}
	wg.Wait()
	r := e.request("r-1")
	if r.State != store.Applied || len(r.Approvals) != 2 {
		t.Fatalf("state %s with %d approvals", r.State, len(r.Approvals))
	}
	if n := e.writes(pathSD); n != 1 {
		t.Fatalf("security defaults written %d times, want 1", n)
	}
	if acts := e.actions("r-1"); countOf(acts, "applying") != 1 || countOf(acts, "approved") != 1 {
		t.Fatalf("audit = %v", acts)
	}
}

func TestApprovalsRequiredValidated(t *testing.T) {
	e := newEnv(t)
	cfg := handlers.Config{Senders: []bot.Sender{e.chat}, Store: e.st, Tenants: []handlers.TenantConfig{
		{Name: "x", Client: e.cl, Approvers: []string{"web:bob"}, ApprovalsRequired: 2}}}
	if _, err := handlers.New(cfg); err == nil || !strings.Contains(err.Error(), "needs 2 approvals but has 1") {
		t.Fatalf("New = %v", err)
	}
}

func requireReason(_ *handlers.Config, tc *handlers.TenantConfig) { tc.RequireReason = true }

func TestReasonRequired(t *testing.T) {
	e := newEnv(t, requireReason)
	for _, text := range []string{"fix", `fix --reason ""`, `fix --reason "   "`} {
		e.say(alice, text)
		if w := e.chat.lastWhisper(t); !strings.Contains(w, "need a reason") || !strings.Contains(w, "Nothing was requested") {
			t.Fatalf("%s: reply %q", text, w)
		}
	}
	if rs, _ := e.st.List(e.ctx, 0); len(rs) != 0 {
		t.Fatalf("%d requests created without a reason", len(rs))
	}
	card := e.requestFix(`--reason "restore job 4711"`)
	if txt := card.Msg.PlainText(); !strings.Contains(txt, "Reason: restore job 4711") {
		t.Fatalf("card lacks the reason:\n%s", txt)
	}
	evs, _ := e.st.Audit(e.ctx, 0, "r-1")
	if len(evs) == 0 || evs[0].Action != "requested" || !strings.Contains(evs[0].Detail, "reason: restore job 4711") {
		t.Fatalf("audit = %+v", evs)
	}
	// Extend needs one too.
	e.click(bob, card.Ref, "Approve")
	e.say(alice, "extend r-1 2h")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "need a reason") {
		t.Fatalf("extend without a reason: %q", w)
	}
	if rs, _ := e.st.List(e.ctx, 0); len(rs) != 1 {
		t.Fatalf("an extension was created without a reason")
	}
	e.say(alice, `extend r-1 2h --reason "the job runs late"`)
	ext := e.chat.lastPost(t)
	if !strings.Contains(ext.Msg.PlainText(), "Reason: the job runs late") {
		t.Fatalf("extension card:\n%s", ext.Msg.PlainText())
	}
}

func TestReasonLengthBound(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", handlers.MaxReason+1) // characters, not bytes
	e.say(alice, `fix --reason "`+long+`"`)
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "too long (501 characters; 500 at most)") {
		t.Fatalf("reply %q", w)
	}
	if rs, _ := e.st.List(e.ctx, 0); len(rs) != 0 {
		t.Fatal("a request with an over-long reason was created")
	}
	e.requestFix(`--reason "` + long[:len(long)-len("é")] + `"`)
	if r := e.request("r-1"); len([]rune(r.Reason)) != handlers.MaxReason {
		t.Fatalf("reason of %d characters stored", len([]rune(r.Reason)))
	}
}

func TestCardWarnsOfAMissingPermission(t *testing.T) {
	var roles []string
	for _, r := range sandbox.AllRoles {
		if r != "Policy.ReadWrite.SecurityDefaults" && r != "Policy.ReadWrite.ConditionalAccess" {
			roles = append(roles, r)
		}
	}
	e := newEnvWith(t, sandbox.Options{Roles: roles}, false)
	e.say(alice, "diagnose")
	diag := e.chat.lastPost(t).Msg.PlainText()
	card := e.requestFix("").Msg.PlainText()
	for name, txt := range map[string]string{"diagnosis": diag, "approval card": card} {
		if !strings.Contains(txt, "would fail: c2bot's app lacks Policy.ReadWrite.SecurityDefaults") {
			t.Errorf("%s does not warn:\n%s", name, txt)
		}
	}
	if !strings.Contains(diag, "[warning] c2bot cannot change Entra ID Security defaults") {
		t.Errorf("no warning finding:\n%s", diag)
	}
	ok := newEnv(t)
	ok.say(alice, "diagnose")
	if txt := ok.chat.lastPost(t).Msg.PlainText(); strings.Contains(txt, "would fail") {
		t.Errorf("a permitted change is marked:\n%s", txt)
	}
}
