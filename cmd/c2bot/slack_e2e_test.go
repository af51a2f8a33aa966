package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	slackbot "github.com/c2bot/c2bot/bot/slack"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// The Slack workspace the process tests play in.
const (
	slackSecret    = "e2e-signing-secret-5f1c0d9a"
	slackChannel   = "C0OPS"
	slackRequester = "U0ALICE"
	slackApprover  = "U0BOB"
	slackOutsider  = "U0CAROL"
	// slackAckLimit is how long Slack waits for an acknowledgement.
	slackAckLimit = 3 * time.Second
	// securityDefaults is the Graph path every apply and revert PATCHes once.
	securityDefaults = "/policies/identitySecurityDefaultsEnforcementPolicy"
)

// slackRig is a sandbox tenant, a fake Slack and the environment that points
// a child c2bot at both.
type slackRig struct {
	sb   *sandbox.Server
	fake *slacktest.Server
	env  map[string]string
	// blocked and opened say whether the tenant holds its original settings
	// or the temporary fix.
	blocked, opened func(sandbox.State) bool
}

// newSlackRig prepares HTTP mode, or Socket Mode when socket is true, on the
// default scenario. Failed Slack deliveries are retried after 1s, 2s, 4s…
func newSlackRig(t *testing.T, socket bool) *slackRig {
	t.Helper()
	return newSlackRigFor(t, socket, defaultScenario)
}

// newSlackRigFor is newSlackRig on a named scenario.
func newSlackRigFor(t *testing.T, socket bool, scenario string) *slackRig {
	t.Helper()
	sb, env := sandboxScenarioEnv(t, scenario)
	return slackRigOn(t, sb, env, socket)
}

// slackRigOn is newSlackRig on a sandbox already started, with its env.
func slackRigOn(t *testing.T, sb *sandbox.Server, env map[string]string, socket bool) *slackRig {
	t.Helper()
	fake := slacktest.NewServer()
	t.Cleanup(fake.Close)
	env["C2_SLACK_BOT_TOKEN"] = slacktest.BotToken
	env["C2_SLACK_API_URL"] = fake.APIURL()
	env["C2_APPROVERS"] = slackApprover
	env["C2_CONSOLE"] = "false"
	env["C2_RETRY_BASE"] = "1s"
	if socket {
		env["C2_SLACK_APP_TOKEN"] = slacktest.AppToken
	} else {
		env["C2_SLACK_SIGNING_SECRET"] = slackSecret
	}
	return &slackRig{sb: sb, fake: fake, env: env, blocked: sandboxBlocked, opened: sandboxOpened}
}

// post sends a signed request to the bot and checks Slack would count it
// as acknowledged: 200 within three seconds. It returns the body.
func (r *slackRig) post(t *testing.T, req *http.Request) []byte {
	t.Helper()
	body, err := sendSigned(req)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// sendSigned is post for any goroutine: it returns what went wrong.
func sendSigned(req *http.Request) ([]byte, error) {
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s %s", req.URL.Path, resp.Status, body)
	}
	if d := time.Since(start); d > slackAckLimit {
		return nil, fmt.Errorf("POST %s acknowledged after %s; Slack gives up after %s", req.URL.Path, d, slackAckLimit)
	}
	return body, nil
}

// slash types "/c2 text" in the ops channel as the requester (HTTP mode)
// and returns the ephemeral acknowledgement's text.
func (r *slackRig) slash(t *testing.T, p *proc, text, trigger string) string {
	t.Helper()
	req := slacktest.NewSlashCommandRequest(p.url+slackbot.PathCommands, slackSecret, time.Now(), slacktest.SlashCommand{
		ChannelID: slackChannel, UserID: slackRequester, UserName: "alice", Text: text, TriggerID: trigger,
	})
	var ack struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	body := r.post(t, req)
	if err := json.Unmarshal(body, &ack); err != nil || ack.ResponseType != "ephemeral" {
		t.Fatalf("slash command answer %s (%v); want an ephemeral acknowledgement", body, err)
	}
	return ack.Text
}

// clickPayload is the block_actions payload of user clicking label on msg.
func clickPayload(t *testing.T, msg slacktest.Message, label, user, actionTS string) map[string]any {
	t.Helper()
	btn, ok := msg.Button(label)
	if !ok {
		t.Fatalf("message %s has no %q button: %s", msg.TS, label, msg.Blocks)
	}
	return slacktest.ClickPayload(msg, btn, user, strings.ToLower(strings.TrimPrefix(user, "U0")), actionTS)
}

// click delivers a click over HTTP.
func (r *slackRig) click(t *testing.T, p *proc, payload map[string]any) {
	t.Helper()
	r.post(t, slacktest.NewInteractionRequest(p.url+slackbot.PathInteractions, slackSecret, time.Now(), payload))
}

// envelope sends a Socket Mode envelope and returns its acknowledgement.
func (r *slackRig) envelope(t *testing.T, typ string, payload any) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := r.fake.SendEnvelope(ctx, typ, payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	ack, err := r.fake.WaitAck(ctx, id)
	if err != nil {
		t.Fatalf("envelope %s (%s) not acknowledged: %v", id, typ, err)
	}
	if d := time.Since(sent); d > slackAckLimit {
		t.Fatalf("envelope %s acknowledged after %s", id, d)
	}
	return ack
}

// envelopeUntilAcked sends an envelope and redelivers it, as Slack does,
// until it is acknowledged; it returns the acknowledgement.
func (r *slackRig) envelopeUntilAcked(t *testing.T, typ string, payload any) json.RawMessage {
	t.Helper()
	for attempt := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		id, err := r.fake.SendEnvelope(ctx, typ, payload, attempt)
		if err == nil {
			var ack json.RawMessage
			if ack, err = r.fake.WaitAck(ctx, id); err == nil {
				cancel()
				return ack
			}
		}
		cancel()
		t.Logf("envelope attempt %d: %v", attempt, err)
	}
	t.Fatalf("%s envelope never acknowledged", typ)
	return nil
}

// wait waits for a message in the fake workspace.
func (r *slackRig) wait(t *testing.T, within time.Duration, what string, pred func(slacktest.Message) bool) slacktest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, err := r.fake.WaitMessage(ctx, pred)
	if err != nil {
		t.Fatalf("%s: none within %s (%v); Slack holds:\n%s", what, within, err, r.dump())
	}
	return m
}

// count counts the workspace's messages that match pred.
func (r *slackRig) count(pred func(slacktest.Message) bool) int {
	n := 0
	for _, m := range r.fake.Messages("") {
		if pred(m) {
			n++
		}
	}
	return n
}

// dump lists the workspace's messages for failure reports.
func (r *slackRig) dump() string {
	var b strings.Builder
	for _, m := range r.fake.Messages("") {
		b.WriteString(m.Channel + " ts=" + m.TS + " thread=" + m.ThreadTS)
		if m.Ephemeral {
			b.WriteString(" ephemeral-to=" + m.User)
		}
		b.WriteString(" title=" + headerTitle(m) + " text=" + m.Text + "\n")
	}
	return b.String()
}

// headerTitle is the text of a message's header block.
func headerTitle(m slacktest.Message) string {
	var blocks []struct {
		Type string `json:"type"`
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	for _, b := range blocks {
		if b.Type == "header" {
			return b.Text.Text
		}
	}
	return ""
}

// isCard matches the approval card of the first request in a given state.
func isCard(prefix string) func(slacktest.Message) bool {
	return func(m slacktest.Message) bool {
		return !m.Ephemeral && m.Channel == slackChannel && m.ThreadTS == "" &&
			strings.HasPrefix(headerTitle(m), prefix) && strings.Contains(headerTitle(m), "(r-1)")
	}
}

// cardNow matches the message at card's ts once its title starts with prefix.
func cardNow(card slacktest.Message, prefix string) func(slacktest.Message) bool {
	return func(m slacktest.Message) bool {
		return m.Channel == card.Channel && m.TS == card.TS && strings.HasPrefix(headerTitle(m), prefix)
	}
}

// revertNotice matches the confirmation posted in the card's thread.
func revertNotice(card slacktest.Message) func(slacktest.Message) bool {
	return func(m slacktest.Message) bool {
		return !m.Ephemeral && m.Channel == card.Channel && m.ThreadTS == card.TS &&
			headerTitle(m) == "Reverted: sandbox is back to its original settings (r-1)"
	}
}

// ephemeralTo matches a message only user sees that contains text.
func ephemeralTo(user, text string) func(slacktest.Message) bool {
	return func(m slacktest.Message) bool {
		return m.Ephemeral && m.User == user && m.Channel == slackChannel &&
			strings.Contains(m.Text+"\n"+m.BlockText(), text)
	}
}

// eventually polls cond until it holds and returns when it did.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// checkApprovalCard checks the card's buttons and that the reason is shown
// verbatim without pinging the channel.
func checkApprovalCard(t *testing.T, card slacktest.Message) {
	t.Helper()
	approve, ok := card.Button("Approve")
	if !ok || approve.Style != "primary" || approve.Value != "approve r-1" {
		t.Errorf("Approve button %+v (found %v); want primary, value approve r-1", approve, ok)
	}
	deny, ok := card.Button("Deny")
	if !ok || deny.Style != "danger" || deny.Value != "deny r-1" {
		t.Errorf("Deny button %+v (found %v); want danger, value deny r-1", deny, ok)
	}
	var blocks any
	if err := json.Unmarshal(card.Blocks, &blocks); err != nil {
		t.Fatalf("card blocks: %v", err)
	}
	shown := false
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if text, ok := x["text"].(string); ok {
				kind, _ := x["type"].(string)
				switch {
				case strings.Contains(text, "<!channel>") && kind != "plain_text":
					t.Errorf("a %s text object would ping the channel: %q", kind, text)
				case kind == "plain_text" && strings.Contains(text, "<!channel> nightly *backup*"),
					kind == "mrkdwn" && strings.Contains(text, "&lt;!channel&gt; nightly"):
					shown = true
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(blocks)
	if !shown {
		t.Errorf("the reason is not shown as written: %s", card.Blocks)
	}
	// The notification text is escaped too.
	if strings.Contains(card.Text, "<!channel>") {
		t.Errorf("fallback text pings the channel: %q", card.Text)
	}
}

// checkTokens checks every Web API call carried the right token in an
// Authorization header, and that no secret reached the logs.
func (r *slackRig) checkTokens(t *testing.T, logs string) {
	t.Helper()
	for _, c := range r.fake.Calls("") {
		want := slacktest.BotToken
		if c.Method == "apps.connections.open" {
			want = slacktest.AppToken
		}
		if c.Token != want || !c.FromHeader {
			t.Errorf("%s sent with the wrong token or not in a header (from header %v)", c.Method, c.FromHeader)
		}
	}
	for _, secret := range []string{slacktest.BotToken, slacktest.AppToken, slackSecret, sandbox.DefaultClientSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret appears in the logs")
		}
	}
}

// approveAndWaitApplied has the approver click Approve on card and waits
// until the card says applied; it returns the updated card and when it was
// seen.
func (r *slackRig) waitApplied(t *testing.T, card slacktest.Message) (slacktest.Message, time.Time) {
	t.Helper()
	applied := r.wait(t, 30*time.Second, "card updated to applied", cardNow(card, "Applied:"))
	seen := time.Now()
	if n := len(applied.Buttons()); n != 0 {
		t.Errorf("applied card still has %d buttons: %s", n, applied.Blocks)
	}
	if !strings.Contains(applied.BlockText(), "Approved by bob") {
		t.Errorf("applied card does not name the approver:\n%s", applied.BlockText())
	}
	if st := r.sb.State(); !r.opened(st) {
		t.Fatalf("card says applied but the tenant is %+v", st)
	}
	return applied, seen
}

// waitReverted waits for the tenant to be blocked again and checks it
// happened when the window ended, then waits for the card and the threaded
// confirmation.
func (r *slackRig) waitReverted(t *testing.T, card slacktest.Message, appliedSeen time.Time, window, slack time.Duration) {
	t.Helper()
	at := eventually(t, window+slack, "tenant reverted", func() bool { return r.blocked(r.sb.State()) })
	// The card is updated right after the apply, so the revert cannot come
	// much before a window after it was seen.
	if early := window - 2*time.Second; at.Sub(appliedSeen) < early {
		t.Errorf("reverted %s after the card said applied; the window is %s", at.Sub(appliedSeen), window)
	}
	reverted := r.wait(t, 30*time.Second, "card updated to reverted", cardNow(card, "Reverted:"))
	if n := len(reverted.Buttons()); n != 0 {
		t.Errorf("reverted card has %d buttons", n)
	}
	r.wait(t, 30*time.Second, "revert confirmation in the card's thread", revertNotice(card))
}

// checkPostedOnce checks, once the bot has stopped, that r-1 has one card
// (updated in place) and one revert confirmation.
func (r *slackRig) checkPostedOnce(t *testing.T, card slacktest.Message) {
	t.Helper()
	if n := r.count(revertNotice(card)); n != 1 {
		t.Errorf("%d revert confirmations", n)
	}
	if n := r.count(isCard("")); n != 1 {
		t.Errorf("%d cards for r-1 in the channel; want the one, updated in place", n)
	}
}

// TestSlackEndToEnd drives the real binary in Slack HTTP mode: a signed
// slash command, a refused click, a double approval, the apply, the revert
// at the end of the window and the notices in the card and its thread.
func TestSlackEndToEnd(t *testing.T) {
	r := newSlackRig(t, false)
	p := startBot(t, r.env, "serve")

	ack := r.slash(t, p, `fix --for 4s --reason "<!channel> nightly *backup*"`, "trig.e2e.1")
	if !strings.HasPrefix(ack, "Working on `fix --for 4s") || strings.Contains(ack, "<!channel>") {
		t.Errorf("acknowledgement %q", ack)
	}
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	checkApprovalCard(t, card)
	if st := r.sb.State(); !sandboxBlocked(st) || patches(r.sb, "") != 0 {
		t.Fatalf("the tenant changed before approval: %+v", st)
	}

	// "@c2 status" through the Events API, delivered twice: one answer.
	mention := slacktest.AppMention("Ev0E2E1", slackChannel, slackRequester, "status")
	r.post(t, slacktest.NewEventRequest(p.url+slackbot.PathEvents, slackSecret, time.Now(), mention))
	redelivery := slacktest.NewEventRequest(p.url+slackbot.PathEvents, slackSecret, time.Now(), mention)
	redelivery.Header.Set("X-Slack-Retry-Num", "1")
	redelivery.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	r.post(t, redelivery)
	isStatus := func(m slacktest.Message) bool {
		return !m.Ephemeral && m.Channel == slackChannel && headerTitle(m) == "Open requests"
	}
	status := r.wait(t, 20*time.Second, "status answer to the mention", isStatus)
	if !strings.Contains(status.BlockText(), "r-1 · sandbox") {
		t.Errorf("status does not list r-1:\n%s", status.BlockText())
	}

	// Carol is not an approver: she alone is told so, and nothing changes.
	r.click(t, p, clickPayload(t, card, "Approve", slackOutsider, "1700000100.000100"))
	r.wait(t, 20*time.Second, "refusal shown to the outsider", ephemeralTo(slackOutsider, "not an approver"))
	if n := patches(r.sb, ""); n != 0 {
		t.Fatalf("a refused approval PATCHed the tenant %d times", n)
	}
	for _, m := range r.fake.Messages(slackChannel) {
		if m.TS == card.TS && (m.Updates != 0 || len(m.Buttons()) != 2) {
			t.Fatalf("a refused approval changed the card: %+v", m)
		}
	}

	// Bob approves with a double click: one delivery redelivered, and a
	// second click of his own. The change is applied once.
	first := clickPayload(t, card, "Approve", slackApprover, "1700000200.000200")
	second := clickPayload(t, card, "Approve", slackApprover, "1700000200.000900")
	var wg sync.WaitGroup
	for _, pl := range []map[string]any{first, first, second} {
		req := slacktest.NewInteractionRequest(p.url+slackbot.PathInteractions, slackSecret, time.Now(), pl)
		wg.Go(func() {
			if _, err := sendSigned(req); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	_, appliedSeen := r.waitApplied(t, card)
	r.wait(t, 20*time.Second, "the second click is told it was already done", ephemeralTo(slackApprover, "already"))
	if n := patches(r.sb, securityDefaults); n != 1 {
		t.Fatalf("security defaults PATCHed %d times by one approval", n)
	}

	r.waitReverted(t, card, appliedSeen, 4*time.Second, 15*time.Second)
	if n := patches(r.sb, securityDefaults); n != 2 {
		t.Errorf("security defaults PATCHed %d times; want apply + revert", n)
	}
	if answers := r.count(isStatus); answers != 1 {
		t.Errorf("%d answers to one mention delivered twice", answers)
	}
	p.kill(t)
	r.checkPostedOnce(t, card)
	r.checkTokens(t, p.logs.String())
	actions := auditActions(t, r.env["C2_DB"], "r-1")
	if count(actions, "approved") != 1 || count(actions, "applied") != 1 || count(actions, "reverted") != 1 {
		t.Fatalf("audit = %v", actions)
	}
}

// TestSlackSocketMode runs the same loop over Socket Mode, with no signing
// secret and no inbound HTTP from Slack.
func TestSlackSocketMode(t *testing.T) {
	r := newSlackRig(t, true)
	p := startBot(t, r.env, "serve")

	// Without a signing secret the HTTP endpoints are off.
	req := slacktest.NewSlashCommandRequest(p.url+slackbot.PathCommands, slackSecret, time.Now(), slacktest.SlashCommand{
		ChannelID: slackChannel, UserID: slackRequester, UserName: "alice", Text: "fix", TriggerID: "trig.http"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HTTP slash command in Socket Mode: %s", resp.Status)
	}

	ack := r.envelope(t, slacktest.EnvelopeSlashCommand, map[string]string{
		"token": "verification-token-unused", "team_id": slacktest.TeamID, "channel_id": slackChannel,
		"user_id": slackRequester, "user_name": "alice", "command": "/c2",
		"text": `fix --for 4s --reason "<!channel> nightly *backup*"`, "trigger_id": "trig.sock.1",
	})
	var payload struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(ack, &payload); err != nil || payload.ResponseType != "ephemeral" ||
		!strings.HasPrefix(payload.Text, "Working on `fix --for 4s") {
		t.Fatalf("slash command ack %s (%v)", ack, err)
	}
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	checkApprovalCard(t, card)

	// Slack refreshes the connection; the click comes over the new one
	// (redelivered, as Slack does, if it went to the old one).
	if err := r.fake.Disconnect(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.fake.WaitCalls(ctx, "apps.connections.open", 2); err != nil {
		t.Fatalf("no reconnection after a disconnect request: %v", err)
	}
	if ack := r.envelopeUntilAcked(t, slacktest.EnvelopeInteractive, clickPayload(t, card, "Approve", slackApprover, "1700000300.000300")); string(ack) != "null" {
		t.Errorf("interactive ack payload %s", ack)
	}
	_, appliedSeen := r.waitApplied(t, card)
	r.waitReverted(t, card, appliedSeen, 4*time.Second, 15*time.Second)
	if n := patches(r.sb, securityDefaults); n != 2 {
		t.Errorf("security defaults PATCHed %d times; want apply + revert", n)
	}
	if len(r.fake.Calls("apps.connections.open")) == 0 {
		t.Error("no apps.connections.open call")
	}
	p.kill(t)
	r.checkPostedOnce(t, card)
	r.checkTokens(t, p.logs.String())
}

// TestSlackRestartMidWindow kills c2bot while a change is applied and
// restarts it on the same database: the restarted process reverts on time
// and updates the card it did not post.
func TestSlackRestartMidWindow(t *testing.T) {
	r := newSlackRig(t, false)
	p := startBot(t, r.env, "serve")
	r.slash(t, p, "fix --for 6s", "trig.restart.1")
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	r.click(t, p, clickPayload(t, card, "Approve", slackApprover, "1700000400.000400"))
	_, appliedSeen := r.waitApplied(t, card)

	p.kill(t)
	if !sandboxOpened(r.sb.State()) {
		t.Fatal("the revert happened before the crash; the test proves nothing")
	}
	updatesBefore := len(r.fake.Calls("chat.update"))
	postsBefore := len(r.fake.Calls("chat.postMessage"))

	p2 := startBot(t, r.env, "serve")
	r.waitReverted(t, card, appliedSeen, 6*time.Second, 15*time.Second)
	if n := len(r.fake.Calls("chat.update")); n <= updatesBefore {
		t.Error("the restarted process did not update the card")
	}
	if n := len(r.fake.Calls("chat.postMessage")); n <= postsBefore {
		t.Error("the restarted process posted no confirmation")
	}
	if n := patches(r.sb, securityDefaults); n != 2 {
		t.Errorf("security defaults PATCHed %d times; want apply + revert", n)
	}
	p2.kill(t)
	r.checkPostedOnce(t, card)
	r.checkTokens(t, p.logs.String()+p2.logs.String())
	actions := auditActions(t, r.env["C2_DB"], "r-1")
	if count(actions, "applied") != 1 || count(actions, "reverted") != 1 {
		t.Fatalf("audit = %v", actions)
	}
}

// TestSlackOutageDuringNotice makes Slack fail while the window ends: the
// tenant is reverted on time regardless, and the card update and the
// confirmation arrive, in order, once Slack answers again.
func TestSlackOutageDuringNotice(t *testing.T) {
	r := newSlackRig(t, false)
	p := startBot(t, r.env, "serve")
	// The first post of the card fails too: it is queued and posted again.
	r.fake.Script("chat.postMessage", slacktest.Reply{Status: http.StatusBadGateway})
	r.slash(t, p, "fix --for 4s", "trig.outage.1")
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	if n := len(r.fake.Calls("chat.postMessage")); n != 2 {
		t.Errorf("%d chat.postMessage calls for the card; want a failure and a success", n)
	}
	r.click(t, p, clickPayload(t, card, "Approve", slackApprover, "1700000500.000500"))
	_, appliedSeen := r.waitApplied(t, card)

	// Slack goes down: server errors, an error answer, and a body that is
	// not JSON (a proxy's error page).
	updatesBefore := len(r.fake.Calls("chat.update"))
	postsBefore := len(r.fake.Calls("chat.postMessage"))
	r.fake.Script("chat.update",
		slacktest.Reply{Status: http.StatusInternalServerError},
		slacktest.Reply{Error: "internal_error"},
		slacktest.Reply{Status: http.StatusOK, Body: []byte("<html>502 Bad Gateway</html>")},
	)
	r.fake.Script("chat.postMessage",
		slacktest.Reply{Status: http.StatusServiceUnavailable},
		slacktest.Reply{Error: "fatal_error"},
	)

	at := eventually(t, 4*time.Second+10*time.Second, "tenant reverted during the outage", func() bool { return sandboxBlocked(r.sb.State()) })
	if at.Sub(appliedSeen) > 4*time.Second+5*time.Second {
		t.Errorf("revert came %s after the card said applied (window 4s)", at.Sub(appliedSeen))
	}
	for _, m := range r.fake.Messages(slackChannel) {
		if revertNotice(card)(m) || cardNow(card, "Reverted:")(m) {
			t.Fatal("a notice got through while Slack was failing every call; the outage was not scripted in time")
		}
	}

	reverted := r.wait(t, 30*time.Second, "card updated to reverted after the outage", cardNow(card, "Reverted:"))
	r.wait(t, 30*time.Second, "confirmation after the outage", revertNotice(card))
	if n := len(r.fake.Calls("chat.update")) - updatesBefore; n < 4 {
		t.Errorf("%d chat.update calls since the outage began; want 3 failures and a success", n)
	}
	if n := len(r.fake.Calls("chat.postMessage")) - postsBefore; n < 3 {
		t.Errorf("%d chat.postMessage calls since the outage began; want 2 failures and a success", n)
	}
	if n := len(reverted.Buttons()); n != 0 {
		t.Errorf("reverted card has %d buttons", n)
	}
	p.kill(t)
	r.checkPostedOnce(t, card)
	logs := p.logs.String()
	if !strings.Contains(logs, "notification not delivered; will retry") {
		t.Error("the failed deliveries were not logged")
	}
	r.checkTokens(t, logs)
	actions := auditActions(t, r.env["C2_DB"], "r-1")
	if count(actions, "reverted") != 1 || count(actions, "notification_dropped") != 0 {
		t.Fatalf("audit = %v", actions)
	}
}

// isDiagnosis matches the diagnosis posted in the ops channel.
func isDiagnosis(m slacktest.Message) bool {
	return !m.Ephemeral && m.Channel == slackChannel && m.ThreadTS == "" && strings.HasPrefix(headerTitle(m), "Diagnosis for sandbox")
}

// toolExcluded reports whether some Conditional Access policy of the
// sandbox excludes the tool's account.
func toolExcluded(st sandbox.State) bool {
	for _, p := range st.Policies {
		if slices.Contains(p.ExcludeUsers, sandbox.DefaultToolAccountID) {
			return true
		}
	}
	return false
}

// TestSlackVendorTodayEndsInUpdate: the vendor's tenant as Microsoft runs it
// today. The diagnosis says to update the tool and offers no button; fix
// says why nothing can help and asks for nothing; the tenant is untouched.
func TestSlackVendorTodayEndsInUpdate(t *testing.T) {
	r := newSlackRigFor(t, false, "vendor-today")
	p := startBot(t, r.env, "serve")

	r.slash(t, p, "diagnose", "trig.vendor.1")
	diag := r.wait(t, 30*time.Second, "diagnosis", isDiagnosis)
	text := strings.ToLower(diag.BlockText())
	for _, want := range []string{"no temporary change can help", "update the tool", "retired", "sign-in paths today"} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, diag.BlockText())
		}
	}
	if n := len(diag.Buttons()); n != 0 {
		t.Fatalf("the diagnosis has %d button(s); nothing c2bot can change helps: %s", n, diag.Blocks)
	}

	r.slash(t, p, "fix --for 4s", "trig.vendor.2")
	answer := r.wait(t, 30*time.Second, "fix's answer", func(m slacktest.Message) bool {
		return strings.HasPrefix(headerTitle(m), "No temporary change can help in sandbox")
	})
	if text := strings.ToLower(answer.BlockText()); !strings.Contains(text, "update the tool") || !strings.Contains(text, "nothing was requested") {
		t.Errorf("fix does not say why:\n%s", answer.BlockText())
	}
	for _, m := range r.fake.Messages("") {
		if len(m.Buttons()) != 0 {
			t.Errorf("a message offers buttons (%s): %s", headerTitle(m), m.Blocks)
		}
	}
	if n := r.count(isCard("")); n != 0 {
		t.Errorf("%d approval card(s) posted", n)
	}
	if n := patches(r.sb, ""); n != 0 {
		t.Errorf("the tenant was PATCHed %d times", n)
	}
	p.kill(t)
	if actions := auditActions(t, r.env["C2_DB"], ""); count(actions, "requested") != 0 {
		t.Fatalf("audit = %v", actions)
	}
}

// TestSlackMFANestedGroupScopedExclusion: a delegated tool blocked by an
// MFA policy that reaches its account through a nested group. The fix is
// the scoped exclusion of the tool's account from that policy, requested
// from the diagnosis's button, applied and reverted; nothing tenant-wide
// is touched.
func TestSlackMFANestedGroupScopedExclusion(t *testing.T) {
	r := newSlackRigFor(t, false, "mfa-nested-group")
	r.env["C2_DEFAULT_DURATION"] = "4s"
	r.opened, r.blocked = toolExcluded, func(st sandbox.State) bool { return !toolExcluded(st) }
	before := r.sb.State()
	if toolExcluded(before) {
		t.Fatal("the scenario already excludes the tool")
	}
	p := startBot(t, r.env, "serve")

	r.slash(t, p, "diagnose", "trig.mfa.1")
	diag := r.wait(t, 30*time.Second, "diagnosis", isDiagnosis)
	text := diag.BlockText()
	for _, want := range []string{"Conditional Access", "Policy id", "exclude " + sandbox.DefaultToolAccount, "Temporary fix (needs approval)"} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnosis lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Security defaults (isEnabled): true → false") {
		t.Errorf("the plan bundles a tenant-wide change:\n%s", text)
	}
	r.click(t, p, clickPayload(t, diag, "Request temporary fix", slackRequester, "1700000600.000600"))
	card := r.wait(t, 30*time.Second, "approval card", isCard("Approval needed:"))
	if ct := card.BlockText(); !strings.Contains(ct, "exclude "+sandbox.DefaultToolAccount) || !strings.Contains(ct, "excluded") ||
		strings.Contains(ct, "Security defaults") || !strings.Contains(ct, "takes up to 24 hours") {
		t.Errorf("the card is not the scoped exclusion with its propagation time:\n%s", ct)
	}
	r.click(t, p, clickPayload(t, card, "Approve", slackApprover, "1700000700.000700"))
	_, appliedSeen := r.waitApplied(t, card)
	r.waitReverted(t, card, appliedSeen, 4*time.Second, 15*time.Second)
	after := r.sb.State()
	for i, pol := range after.Policies {
		if !slices.Equal(pol.ExcludeUsers, before.Policies[i].ExcludeUsers) || pol.State != before.Policies[i].State {
			t.Errorf("policy %s after the revert: %+v, before: %+v", pol.ID, pol, before.Policies[i])
		}
	}
	if after.SecurityDefaults != before.SecurityDefaults || after.LegacyAuth != before.LegacyAuth || after.InvitedMatch != before.InvitedMatch {
		t.Errorf("a tenant-wide setting changed: %+v → %+v", before, after)
	}
	if n := patches(r.sb, securityDefaults) + patches(r.sb, "/admin/sharepoint"); n != 0 {
		t.Errorf("%d tenant-wide PATCH(es)", n)
	}
	if n := patches(r.sb, "/identity/conditionalAccess/policies/"); n != 2 {
		t.Errorf("the policy was PATCHed %d times; want the exclusion and its revert", n)
	}
	p.kill(t)
	r.checkPostedOnce(t, card)
	actions := auditActions(t, r.env["C2_DB"], "r-1")
	if count(actions, "applied") != 1 || count(actions, "reverted") != 1 {
		t.Fatalf("audit = %v", actions)
	}
}
