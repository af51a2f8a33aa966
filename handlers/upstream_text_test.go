package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// TestRevertFailureShowsNoUpstreamText is issue 8 item 10 in the core: a
// failed revert used to keep the raw error text — Graph's own message, or
// the authority's quoted answer — as the request's last error, and post it
// in the thread, the card, "status" and "audit". Only the sentence
// ErrorMessage makes reaches chat; the detail goes to the log.
func TestRevertFailureShowsNoUpstreamText(t *testing.T) {
	const upstream = "UPSTREAM-BODY client_secret=leaked-value <html>gateway page</html>"
	e := newEnv(t)
	card := e.requestFix("--for 1h")
	e.click(bob, card.Ref, "Approve")
	e.sb.Fail(sandbox.FailRule{Method: "PATCH", PathPrefix: pathSD, Status: 500, Code: "generalException", Message: upstream})
	e.clock.Advance(time.Hour + time.Second)
	e.due()
	if r := e.request("r-1"); r.State != store.RevertFailed {
		t.Fatalf("state = %s, want revert_failed", r.State)
	} else if strings.Contains(r.LastError, "UPSTREAM") || !strings.Contains(r.LastError, "Microsoft Graph") {
		t.Fatalf("last error %q: want the person's sentence, not Graph's text", r.LastError)
	}
	e.say(bob, "status")
	e.say(bob, "audit")
	e.flush()
	e.chat.mu.Lock()
	defer e.chat.mu.Unlock()
	var texts []string
	for _, p := range e.chat.posts {
		texts = append(texts, p.Msg.PlainText())
	}
	for _, m := range e.chat.msgs {
		texts = append(texts, m.PlainText())
	}
	for _, w := range e.chat.whispers {
		texts = append(texts, w.Msg.PlainText())
	}
	shown := false
	for _, s := range texts {
		if strings.Contains(s, "UPSTREAM") || strings.Contains(s, "leaked-value") || strings.Contains(s, "gateway page") {
			t.Fatalf("chat shows the upstream text: %s", s)
		}
		shown = shown || strings.Contains(s, "Microsoft Graph is having trouble")
	}
	if !shown {
		t.Fatalf("no message tells what went wrong: %q", texts)
	}
}
