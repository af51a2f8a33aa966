package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The Teams end-to-end test drives the real c2bot binary from Microsoft 365
// Agents Playground (@microsoft/m365agentsplayground, installed by
// .ci/playground.sh): the playground plays Teams and the Bot Connector, the
// sandbox tenant plays Microsoft 365.
//
//	.ci/playground.sh /tmp/pg
//	C2_PLAYGROUND_DIR=/tmp/pg go test ./cmd/c2bot/ -run TestTeamsPlayground -v
//
// Without C2_PLAYGROUND_DIR the test is skipped, unless
// C2_REQUIRE_PLAYGROUND=1 (CI), which makes a missing playground a failure.

// Users, bot and team of the playground's default configuration (version
// 0.2.28); the test checks them against /_internal/v1/config.
const (
	pgBotID      = "00000000-0000-0000-0000-00000000000011"
	pgBotName    = "Test Bot"
	pgTeamID     = "team-id" // also the id of the team's General channel
	pgAlexID     = "user-id-0"
	pgAlexAAD    = "00000000-0000-0000-0000-0000000000020"
	pgMeganID    = "user-id-1"
	pgMeganAAD   = "00000000-0000-0000-0000-0000000000021"
	pgMeganName  = "Megan Bowen"
	pgAdeleID    = "user-id-2"
	pgAdeleAAD   = "00000000-0000-0000-0000-0000000000022"
	pgTenantID   = "00000000-0000-0000-0000-0000000000001"
	pgOfflineTag = "c2-e2e-offline:"
)

// pgPreload is loaded into the playground's node process (--require). The
// playground binds every interface and bundles an Application Insights
// client; this keeps its servers on 127.0.0.1 and refuses (and reports on
// stderr) any connection that would leave the machine, so the test runs
// offline and fails if the playground tries to phone home.
const pgPreload = `'use strict';
const net = require('net');
const tag = '` + pgOfflineTag + `';
process.stderr.write(tag + ' loopback only\n');
function loopback(h) {
  return h === undefined || h === null || h === '' || h === 'localhost' ||
    h === '::1' || h === '::ffff:127.0.0.1' || /^127\./.test(h);
}
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (args.length === 0 || typeof a0 === 'function') {
    args.unshift(0, '127.0.0.1');
  } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  } else if (a0 && typeof a0 === 'object' && !a0.path && a0.fd === undefined &&
             !a0.handle && !a0._handle && !a0.host) {
    args[0] = Object.assign({}, a0, { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let o = args[0];
  if (Array.isArray(o)) o = o[0];
  let host, port;
  if (o && typeof o === 'object') {
    if (o.path) return connect.apply(this, args); // a pipe, as net decides
    host = o.host; port = o.port;
  } else if (typeof o === 'number' || (typeof o === 'string' && /^\d+$/.test(o))) {
    port = o; host = typeof args[1] === 'string' ? args[1] : undefined;
  } else {
    return connect.apply(this, args);
  }
  if (!loopback(host)) {
    process.stderr.write(tag + ' refused a connection to ' + host + ':' + port + '\n');
    const err = new Error('connect EACCES ' + host + ':' + port + ' (offline test)');
    err.code = 'EACCES';
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};
`

// playgroundBin returns the playground's command, or skips the test (fails
// it when C2_REQUIRE_PLAYGROUND=1) when it is not installed.
func playgroundBin(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) +
			"; install it with `.ci/playground.sh DIR` and set C2_PLAYGROUND_DIR=DIR"
		if os.Getenv("C2_REQUIRE_PLAYGROUND") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := os.Getenv("C2_PLAYGROUND_DIR")
	if dir == "" {
		missing("C2_PLAYGROUND_DIR is not set")
	}
	if !filepath.IsAbs(dir) { // go test runs in the package directory
		missing("C2_PLAYGROUND_DIR must be an absolute path (got %q)", dir)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "agentsplayground")
	if _, err := os.Stat(bin); err != nil {
		missing("no Agents Playground in C2_PLAYGROUND_DIR: %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is not installed: %v", err)
	}
	return bin
}

// playground is a running Agents Playground with a client of its
// conversation stream.
type playground struct {
	url  string // http://127.0.0.1:port
	logs *syncBuffer

	mu     sync.Mutex
	events []pgEvent
	wake   chan struct{}
}

// pgEvent is one message of the playground's conversation stream
// (/_ws_conversation/v1/conversations/stream): what its chat window shows.
type pgEvent struct {
	At     time.Time `json:"-"`      // when the test received it
	Action string    `json:"action"` // createMessage, updateMessage, typing
	Conv   string    `json:"actionConversationId"`
	Msg    struct {
		ID   string `json:"messageId"`
		From struct {
			ID string `json:"id"`
		} `json:"from"`
		Text        string `json:"text"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	} `json:"message"`
}

// pgCard is the part of an Adaptive Card the test reads.
type pgCard struct {
	Body    []pgElement      `json:"body"`
	Actions []map[string]any `json:"actions"`
}

// pgElement is a card element: a TextBlock, or a Container of FactSets.
type pgElement struct {
	Type  string      `json:"type"`
	Text  string      `json:"text"`
	Items []pgElement `json:"items"`
	Facts []struct {
		Title string `json:"title"`
		Value string `json:"value"`
	} `json:"facts"`
}

// markdownEscape matches the backslash escapes of card text.
var markdownEscape = regexp.MustCompile(`\\(.)`)

// unescape returns card text as the reader sees it.
func unescape(s string) string { return markdownEscape.ReplaceAllString(s, "$1") }

// title is the card's first TextBlock, unescaped.
func (c pgCard) title() string {
	for _, b := range c.Body {
		if b.Type == "TextBlock" {
			return unescape(b.Text)
		}
	}
	return ""
}

// text is every TextBlock of the card, containers included, unescaped.
func (c pgCard) text() string {
	var parts []string
	var walk func([]pgElement)
	walk = func(els []pgElement) {
		for _, e := range els {
			if e.Type == "TextBlock" {
				parts = append(parts, unescape(e.Text))
			}
			walk(e.Items)
		}
	}
	walk(c.Body)
	return strings.Join(parts, "\n")
}

// fact returns the value of the card's fact named name.
func (c pgCard) fact(name string) string {
	var find func([]pgElement) (string, bool)
	find = func(els []pgElement) (string, bool) {
		for _, e := range els {
			for _, f := range e.Facts {
				if unescape(f.Title) == name {
					return unescape(f.Value), true
				}
			}
			if v, ok := find(e.Items); ok {
				return v, true
			}
		}
		return "", false
	}
	v, _ := find(c.Body)
	return v
}

// action returns the card's button titled label.
func (c pgCard) action(label string) (map[string]any, bool) {
	for _, a := range c.Actions {
		if a["title"] == label {
			return a, true
		}
	}
	return nil, false
}

// card decodes the event's Adaptive Card, if it has one.
func (e pgEvent) card() (pgCard, bool) {
	for _, a := range e.Msg.Attachments {
		if a.ContentType != "application/vnd.microsoft.card.adaptive" {
			continue
		}
		var c pgCard
		if json.Unmarshal(a.Content, &c) == nil {
			return c, true
		}
	}
	return pgCard{}, false
}

func (e pgEvent) String() string {
	s := e.Action + " " + e.Conv + " " + e.Msg.ID + " from " + e.Msg.From.ID
	if c, ok := e.card(); ok {
		return s + ": card " + strconv.Quote(c.title())
	}
	return s + ": " + strconv.Quote(e.Msg.Text)
}

// startPlayground starts the playground in front of the bot's /api/messages
// and connects to its conversation stream. It is killed (with its process
// group) when the test ends.
func startPlayground(t *testing.T, botURL string) *playground {
	t.Helper()
	bin := playgroundBin(t)
	dir := t.TempDir()
	preload := filepath.Join(dir, "offline.js")
	if err := os.WriteFile(preload, []byte(pgPreload), 0o600); err != nil {
		t.Fatal(err)
	}
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	cmd := exec.Command(bin,
		"--port", port,
		"--app-endpoint", botURL+"/api/messages",
		"--service-url", "http://127.0.0.1:"+port+"/_connector",
		"--channel-id", "msteams",
		"--disable-telemetry",
	)
	cmd.Dir = dir // the playground looks for its config file and writes its log here
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NODE_OPTIONS=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"NODE_OPTIONS=--require "+preload,
		"TEAMSAPPTESTER_BROWSER=none", // do not open a browser
		"APPLICATION_INSIGHTS_NO_STATSBEAT=true",
		"M365_AGENTS_PLAYGROUND_LOGFILE="+filepath.Join(dir, "playground.log"),
		"M365_AGENTS_PLAYGROUND_CONFIG_PATH="+filepath.Join(dir, "m365agentsplayground.yml"), // absent: defaults
		"TEAMS_APP_TEST_TOOL_CONFIG_PATH="+filepath.Join(dir, "teamsapptester.yml"),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pg := &playground{url: "http://127.0.0.1:" + port, logs: &syncBuffer{}, wake: make(chan struct{}, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pg.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	listening := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = pg.logs.Write([]byte(line + "\n"))
			if p, ok := strings.CutPrefix(line, "Listening on "); ok {
				select {
				case listening <- strings.TrimSpace(p):
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("playground output:\n%s", pg.logs.String())
			if log, err := os.ReadFile(filepath.Join(dir, "playground.log")); err == nil {
				t.Logf("playground log:\n%s", log)
			}
		}
	})
	select {
	case p := <-listening:
		if p != port {
			t.Fatalf("playground listens on %s, not on the port asked for (%s)", p, port)
		}
	case <-done:
		t.Fatalf("playground exited:\n%s", pg.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("playground did not start:\n%s", pg.logs.String())
	}
	pg.stream(t)
	return pg
}

// stream connects to the conversation stream and records its events. The
// playground buffers events until a client connects, so none is lost.
func (pg *playground) stream(t *testing.T) {
	t.Helper()
	wsURL := "ws" + strings.TrimPrefix(pg.url, "http") + "/_ws_conversation/v1/conversations/stream"
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("conversation stream: %v", err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { _ = conn.Close() })
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			ev := pgEvent{At: time.Now()}
			if json.Unmarshal(data, &ev) != nil || ev.Action == "" {
				continue
			}
			pg.mu.Lock()
			pg.events = append(pg.events, ev)
			pg.mu.Unlock()
			select {
			case pg.wake <- struct{}{}:
			default:
			}
		}
	}()
}

// seen returns the events recorded so far.
func (pg *playground) seen() []pgEvent {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return slices.Clone(pg.events)
}

// waitEvent waits until the stream has carried an event satisfying ok.
func (pg *playground) waitEvent(t *testing.T, within time.Duration, what string, ok func(pgEvent) bool) pgEvent {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		for _, ev := range pg.seen() {
			if ok(ev) {
				return ev
			}
		}
		select {
		case <-pg.wake:
		case <-deadline.C:
			var lines []string
			for _, ev := range pg.seen() {
				lines = append(lines, ev.String())
			}
			t.Fatalf("no %s in the playground within %s; it showed:\n%s", what, within, strings.Join(lines, "\n"))
		}
	}
}

// call sends a JSON request to the playground and decodes its JSON answer
// into out (when non-nil); it fails the test on any status but 200.
func (pg *playground) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, pg.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

// pgConfig is the part of /_internal/v1/config the test checks.
type pgConfig struct {
	Config struct {
		Bot struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"bot"`
		CurrentUser  pgUser   `json:"currentUser"`
		Users        []pgUser `json:"users"`
		PersonalChat struct {
			ID string `json:"id"`
		} `json:"personalChat"`
		Teams []struct {
			ID      string   `json:"id"`
			Members []string `json:"members"`
		} `json:"teams"`
	} `json:"config"`
}

type pgUser struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	AadObjectID string `json:"aadObjectId"`
}

// checkConfig fails the test when the playground's set-up is not the one
// the test was written for; it returns the id of Alex's personal chat with
// the bot.
func (pg *playground) checkConfig(t *testing.T) string {
	t.Helper()
	var cfg pgConfig
	pg.call(t, "GET", "/_internal/v1/config", nil, &cfg)
	c := cfg.Config
	users := map[string]string{c.CurrentUser.ID: c.CurrentUser.AadObjectID}
	for _, u := range c.Users {
		users[u.ID] = u.AadObjectID
	}
	var teams []string
	for _, tm := range c.Teams {
		teams = append(teams, tm.ID)
	}
	if c.Bot.ID != pgBotID || c.CurrentUser.ID != pgAlexID || users[pgAlexID] != pgAlexAAD ||
		users[pgMeganID] != pgMeganAAD || users[pgAdeleID] != pgAdeleAAD || !slices.Contains(teams, pgTeamID) {
		t.Fatalf("the playground's default set-up changed: %+v", c)
	}
	if c.PersonalChat.ID == "" {
		t.Fatalf("the playground has no personal chat: %+v", c)
	}
	return c.PersonalChat.ID
}

// checkOffline fails the test unless the offline guard was loaded and
// refused nothing.
func (pg *playground) checkOffline(t *testing.T) {
	t.Helper()
	out := pg.logs.String()
	if !strings.Contains(out, pgOfflineTag+" loopback only") {
		t.Errorf("the playground ran without the offline guard (NODE_OPTIONS ignored?)")
	}
	if strings.Contains(out, pgOfflineTag+" refused") {
		t.Errorf("the playground tried to reach the network:\n%s", out)
	}
}

// invokeAnswer is the playground's answer to an Action.Execute click: the
// bot's invoke response without its status code.
type invokeAnswer struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// click presses a card button as user: an adaptiveCard/action invoke with
// the button's Action.Execute, as Teams sends it.
func (pg *playground) click(t *testing.T, user, conv, cardID string, card pgCard, label string) invokeAnswer {
	t.Helper()
	a, ok := card.action(label)
	if !ok {
		t.Fatalf("card %q has no %q button", card.title(), label)
	}
	if a["type"] != "Action.Execute" {
		t.Fatalf("button %q is %v, want Action.Execute", label, a["type"])
	}
	var ans invokeAnswer
	pg.call(t, "POST", "/_conversation/v1/invoke", map[string]any{
		"name": "adaptiveCard/action",
		"value": map[string]any{
			"action":  map[string]any{"type": a["type"], "title": a["title"], "verb": a["verb"], "data": a["data"]},
			"trigger": "manual",
		},
		"from":         map[string]any{"id": user},
		"conversation": map[string]any{"id": conv},
		"replyToId":    cardID,
	}, &ans)
	return ans
}

// submit presses a card button as user the way a client without
// Action.Execute does: the button's Action.Submit fallback, which reaches
// the bot as a message whose value is the button's data.
func (pg *playground) submit(t *testing.T, user, conv, cardID string, card pgCard, label string) {
	t.Helper()
	a, ok := card.action(label)
	if !ok {
		t.Fatalf("card %q has no %q button", card.title(), label)
	}
	fb, _ := a["fallback"].(map[string]any)
	if fb["type"] != "Action.Submit" {
		t.Fatalf("button %q has no Action.Submit fallback: %v", label, a)
	}
	pg.call(t, "POST", "/_conversation/v1/submit", map[string]any{
		"value":        fb["data"],
		"from":         map[string]any{"id": user},
		"conversation": map[string]any{"id": conv},
		"replyToId":    cardID,
	}, nil)
}

// message decodes a message invoke answer.
func (a invokeAnswer) message(t *testing.T) string {
	t.Helper()
	var s string
	if a.Type != "application/vnd.microsoft.activity.message" || json.Unmarshal(a.Value, &s) != nil {
		t.Fatalf("invoke answer is not a message: %s %s", a.Type, a.Value)
	}
	return s
}

// card decodes a card invoke answer.
func (a invokeAnswer) card(t *testing.T) pgCard {
	t.Helper()
	var c pgCard
	if a.Type != "application/vnd.microsoft.card.adaptive" || json.Unmarshal(a.Value, &c) != nil {
		t.Fatalf("invoke answer is not a card: %s %s", a.Type, a.Value)
	}
	return c
}

// fromBot matches the bot's messages whose card title starts with prefix.
func fromBot(action, prefix string) func(pgEvent) bool {
	return func(ev pgEvent) bool {
		c, ok := ev.card()
		return ev.Action == action && ev.Msg.From.ID == pgBotID && ok && strings.HasPrefix(c.title(), prefix)
	}
}

// mentionBot posts text in the team's General channel as user, after an
// @mention of the bot, and returns the conversation id of the post's
// thread, where the bot answers.
func (pg *playground) mentionBot(t *testing.T, user, text string) string {
	t.Helper()
	var posted struct {
		MessageID          string `json:"messageId"`
		PostConversationID string `json:"postConversationId"`
	}
	mention := "<at>" + pgBotName + "</at>"
	pg.call(t, "POST", "/_conversation/v1/conversations/"+pgTeamID+"/messages", map[string]any{
		"from": map[string]any{"id": user}, "text": mention + " " + text, "textFormat": "xml",
		"mentions": []map[string]any{{"mentioned": map[string]any{"id": pgBotID}, "text": mention}},
	}, &posted)
	thread := posted.PostConversationID
	if thread != pgTeamID+";messageid="+posted.MessageID {
		t.Fatalf("post conversation = %q, message %q", thread, posted.MessageID)
	}
	return thread
}

// approve clicks Approve on the approval card cardID as approver user. It
// returns the card the click was answered with (Approved or already
// Applied, without an Approve button) and the Applied card, waiting for the
// card's update when the answer was not Applied yet.
func (pg *playground) approve(t *testing.T, user, conv, cardID string, card pgCard) (answer, applied pgCard) {
	t.Helper()
	answer = pg.click(t, user, conv, cardID, card, "Approve").card(t)
	t.Logf("%s's click answered with card %q", user, answer.title())
	if title := answer.title(); !strings.HasPrefix(title, "Approved") && !strings.HasPrefix(title, "Applied") {
		t.Fatalf("approval answered with card %q", title)
	}
	if _, ok := answer.action("Approve"); ok {
		t.Errorf("answer card still offers Approve")
	}
	if strings.HasPrefix(answer.title(), "Applied") {
		return answer, answer
	}
	ev := pg.waitEvent(t, 20*time.Second, "Applied card", func(ev pgEvent) bool {
		return ev.Msg.ID == cardID && fromBot("updateMessage", "Applied")(ev)
	})
	applied, _ = ev.card()
	return answer, applied
}

// revertsAt reads the revert time of an Applied card. The card shows whole
// seconds, so the time is a lower bound of the end of the window.
func revertsAt(t *testing.T, applied pgCard) time.Time {
	t.Helper()
	at, err := time.Parse("2006-01-02 15:04:05 MST", applied.fact("Reverts at"))
	if err != nil {
		t.Fatalf("Applied card has no revert time: %v", err)
	}
	return at
}

// logShown logs what the playground showed since start.
func (pg *playground) logShown(t *testing.T, start time.Time) {
	t.Helper()
	var lines []string
	for _, ev := range pg.seen() {
		lines = append(lines, ev.At.Sub(start).Round(time.Millisecond).String()+" "+ev.String())
	}
	t.Logf("playground showed (in %s):\n%s", time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n"))
}

// TestTeamsPlaygroundEndToEnd runs c2bot's Teams flows through the Agents
// Playground. In a personal chat: diagnose, the Request temporary fix button,
// Deny. In a team channel: install (welcome), a request typed with an
// @mention, refused clicks by the requester (Action.Execute) and by a
// non-approver (the Action.Submit fallback), the approval by a second
// approver answered in the invoke response, the tenant opened, and the
// revert posted proactively in the card's thread when the window ends.
func TestTeamsPlaygroundEndToEnd(t *testing.T) {
	playgroundBin(t) // skip early, before the sandbox starts
	start := time.Now()
	sb, env := sandboxEnv(t)
	env["C2_CONSOLE"] = "false" // Teams is the only chat platform
	env["C2_APPROVERS"] = pgAlexAAD + "," + pgMeganAAD
	delete(env, "C2_TEAMS_APP_ID")           // the playground sends no token:
	env["C2_TEAMS_UNAUTHENTICATED"] = "true" // unauthenticated by explicit opt-in
	env["C2_TEAMS_TENANTS"] = pgTenantID
	p := startBot(t, env, "serve")
	pg := startPlayground(t, p.url)
	personal := pg.checkConfig(t)
	if !sandboxBlocked(sb.State()) {
		t.Fatalf("sandbox does not start blocked: %+v", sb.State())
	}

	// In his personal chat with the bot, Alex asks for a diagnosis, requests
	// the fix with the card's button, and thinks better of it.
	pg.call(t, "POST", "/_conversation/v1/conversations/"+personal+"/messages", map[string]any{
		"from": map[string]any{"id": pgAlexID}, "text": "c2 diagnose", "textFormat": "plain",
	}, nil)
	ev := pg.waitEvent(t, 20*time.Second, "diagnosis", fromBot("createMessage", "Diagnosis for sandbox"))
	diag, _ := ev.card()
	if ev.Conv != personal || !strings.Contains(diag.text(), "Security defaults are on") {
		t.Fatalf("diagnosis %q shown in %q", diag.title(), ev.Conv)
	}
	ans := pg.click(t, pgAlexID, personal, ev.Msg.ID, diag, "Request temporary fix")
	if msg := ans.message(t); !strings.HasPrefix(msg, "Approval needed") {
		t.Fatalf("Request temporary fix answered %q", msg)
	}
	ev = pg.waitEvent(t, 10*time.Second, "approval card in the personal chat", fromBot("createMessage", "Approval needed: temporary change to sandbox (r-1)"))
	card, _ := ev.card()
	ans = pg.click(t, pgAlexID, personal, ev.Msg.ID, card, "Deny")
	if got := ans.card(t); !strings.HasPrefix(got.title(), "Denied") || len(got.Actions) != 0 {
		t.Fatalf("Deny answered with card %q and buttons %v", got.title(), got.Actions)
	}

	// Installing the app in the team: the bot introduces itself there.
	pg.call(t, "POST", "/_debug/conversation/"+pgTeamID+"/installation", map[string]any{}, nil)
	pg.waitEvent(t, 15*time.Second, "welcome", func(ev pgEvent) bool {
		return ev.Conv == pgTeamID && fromBot("createMessage", "c2bot commands")(ev)
	})

	// Alex asks in the General channel, mentioning the bot.
	thread := pg.mentionBot(t, pgAlexID, "fix --for 5s --reason \"playground e2e\"")
	ev = pg.waitEvent(t, 20*time.Second, "approval card", fromBot("createMessage", "Approval needed: temporary change to sandbox (r-2)"))
	cardID := ev.Msg.ID
	card, _ = ev.card()
	if ev.Conv != thread {
		t.Errorf("approval card shown in %q, want the request's thread %q", ev.Conv, thread)
	}
	for _, want := range [][2]string{{"Requested by", "Alex Wilber"}, {"Reason", "playground e2e"}, {"Window", "5s"}} {
		if v := card.fact(want[0]); v != want[1] {
			t.Errorf("approval card: %s = %q, want %q", want[0], v, want[1])
		}
	}

	// Alex may approve, but not his own request; Adele may not approve at all
	// (her client sends the Action.Submit fallback: the refusal is posted).
	ans = pg.click(t, pgAlexID, thread, cardID, card, "Approve")
	if msg := ans.message(t); !strings.Contains(msg, "yourself") {
		t.Fatalf("self-approval answered %q", msg)
	}
	pg.submit(t, pgAdeleID, thread, cardID, card, "Approve")
	pg.waitEvent(t, 10*time.Second, "refusal of Adele's click", func(ev pgEvent) bool {
		return ev.Conv == thread && fromBot("createMessage", "You are not an approver for sandbox, so r-2")(ev)
	})
	if !sandboxBlocked(sb.State()) || patches(sb, "/") != 0 {
		t.Fatalf("a refused click changed the tenant: %+v", sb.State())
	}

	// Megan approves: Teams replaces the card with the invoke response.
	answer, applied := pg.approve(t, pgMeganID, thread, cardID, card)
	if !strings.Contains(answer.text(), pgMeganName) {
		t.Errorf("answer card does not name the approver: %q", answer.text())
	}
	if !sandboxOpened(sb.State()) {
		t.Fatalf("tenant not opened after approval: %+v", sb.State())
	}
	revertAt := revertsAt(t, applied)

	// The window ends: the revert notice arrives unprompted, in the card's thread.
	rev := pg.waitEvent(t, 30*time.Second, "revert notice", fromBot("createMessage", "Reverted: sandbox is back to its original settings (r-2)"))
	if rev.Conv != thread {
		t.Errorf("revert notice shown in %q, want the request's thread %q", rev.Conv, thread)
	}
	if rev.At.Before(revertAt) { // the card shows whole seconds: a lower bound
		t.Errorf("revert notice arrived at %s, before the window ended at %s", rev.At.UTC(), revertAt)
	}
	pg.waitEvent(t, 10*time.Second, "Reverted card", func(ev pgEvent) bool {
		return ev.Msg.ID == cardID && fromBot("updateMessage", "Reverted")(ev)
	})
	if !sandboxBlocked(sb.State()) {
		t.Fatalf("tenant not blocked again: %+v", sb.State())
	}

	p.kill(t)
	if actions := auditActions(t, env["C2_DB"], "r-1"); count(actions, "denied") != 1 || count(actions, "applied") != 0 {
		t.Errorf("audit of r-1 = %v, want it denied and never applied", actions)
	}
	actions := auditActions(t, env["C2_DB"], "r-2")
	for _, a := range []string{"requested", "approved", "applied", "reverted"} {
		if count(actions, a) != 1 {
			t.Errorf("audit of r-2 = %v, want one %q", actions, a)
		}
	}
	pg.checkOffline(t)
	pg.logShown(t, start)
}

// TestTeamsPlaygroundRestartMidWindow kills c2bot with SIGKILL while a fix
// is applied and starts a new process on the same database and address,
// with the playground still running. The new process must revert the
// tenant when the window ends and, with nothing from Teams to answer, post
// the revert notice in the request's thread and update the card from the
// conversation reference it finds in the database.
func TestTeamsPlaygroundRestartMidWindow(t *testing.T) {
	playgroundBin(t) // skip early, before the sandbox starts
	start := time.Now()
	sb, env := sandboxEnv(t)
	env["C2_CONSOLE"] = "false" // Teams is the only chat platform
	env["C2_APPROVERS"] = pgAlexAAD + "," + pgMeganAAD
	delete(env, "C2_TEAMS_APP_ID")           // the playground sends no token:
	env["C2_TEAMS_UNAUTHENTICATED"] = "true" // unauthenticated by explicit opt-in
	env["C2_TEAMS_TENANTS"] = pgTenantID
	p := startBot(t, env, "serve")
	pg := startPlayground(t, p.url)
	pg.checkConfig(t)

	// Alex asks in the General channel; Megan approves.
	thread := pg.mentionBot(t, pgAlexID, "fix --for 8s --reason \"restart e2e\"")
	ev := pg.waitEvent(t, 20*time.Second, "approval card", fromBot("createMessage", "Approval needed: temporary change to sandbox (r-1)"))
	cardID := ev.Msg.ID
	card, _ := ev.card()
	if ev.Conv != thread {
		t.Errorf("approval card shown in %q, want the request's thread %q", ev.Conv, thread)
	}
	_, applied := pg.approve(t, pgMeganID, thread, cardID, card)
	if !sandboxOpened(sb.State()) {
		t.Fatalf("tenant not opened after approval: %+v", sb.State())
	}
	revertAt := revertsAt(t, applied)

	// The bot crashes mid-window and comes back on the same database and
	// address: the playground keeps sending to the same endpoint.
	p.kill(t)
	killedAt := time.Now()
	if !time.Now().Before(revertAt) {
		t.Fatalf("the window ended (%s) before the kill: the test is too slow for its window", revertAt)
	}
	p2 := startBot(t, env, "serve")
	restarted := time.Now()
	t.Logf("restarted in %s, %s before the window ends", restarted.Sub(killedAt).Round(time.Millisecond), revertAt.Sub(restarted).Round(time.Millisecond))
	// State first, then time: a blocked tenant seen before the window's end
	// (a lower bound) means the restart reverted early.
	if st := sb.State(); !sandboxOpened(st) && time.Now().Before(revertAt) {
		t.Fatalf("the restart changed the tenant before the window ended: %+v", st)
	}

	// The window ends: the new process reverts and says so, unprompted, in
	// the request's thread, and updates the card it posted before the crash.
	rev := pg.waitEvent(t, 30*time.Second, "revert notice", fromBot("createMessage", "Reverted: sandbox is back to its original settings (r-1)"))
	if rev.Conv != thread {
		t.Errorf("revert notice shown in %q, want the request's thread %q", rev.Conv, thread)
	}
	if rev.At.Before(revertAt) || rev.At.Before(restarted) {
		t.Errorf("revert notice arrived at %s, before the window ended (%s) or the restart (%s)", rev.At.UTC(), revertAt, restarted.UTC())
	}
	upd := pg.waitEvent(t, 10*time.Second, "Reverted card", func(ev pgEvent) bool {
		return ev.Msg.ID == cardID && fromBot("updateMessage", "Reverted")(ev)
	})
	if upd.Conv != thread || upd.At.Before(restarted) {
		t.Errorf("Reverted card updated in %q at %s, want the thread %q after the restart", upd.Conv, upd.At.UTC(), thread)
	}
	if reverted, _ := upd.card(); len(reverted.Actions) != 0 {
		t.Errorf("Reverted card offers buttons: %v", reverted.Actions)
	}
	if !sandboxBlocked(sb.State()) {
		t.Fatalf("tenant not blocked again after the restart: %+v", sb.State())
	}

	// Nothing else about r-1 was posted: one approval card, one notice, and
	// no card re-posted in place of the old one.
	var notices, cards int
	for _, ev := range pg.seen() {
		if fromBot("createMessage", "Reverted:")(ev) {
			notices++
		}
		if c, ok := ev.card(); ok && ev.Action == "createMessage" && strings.Contains(c.title(), "(r-1)") && !strings.HasPrefix(c.title(), "Reverted: sandbox is back") {
			cards++
		}
	}
	if notices != 1 || cards != 1 {
		t.Errorf("the playground showed %d revert notices and %d r-1 cards, want 1 and 1", notices, cards)
	}
	// The kill can come before the first process recorded the delivery of
	// the Applied update: the new process then sends it again, which
	// changes nothing. The card's updates may repeat, but end Reverted.
	var updates []string
	for _, ev := range pg.seen() {
		if c, ok := ev.card(); ok && ev.Action == "updateMessage" && ev.Msg.ID == cardID {
			updates = append(updates, c.title())
		}
	}
	for i, u := range updates {
		if !strings.HasPrefix(u, "Applied") && (i != len(updates)-1 || !strings.HasPrefix(u, "Reverted")) {
			t.Errorf("card updates = %q, want Applied ones then Reverted", updates)
			break
		}
	}

	p2.kill(t)
	actions := auditActions(t, env["C2_DB"], "r-1")
	for _, a := range []string{"requested", "approved", "applied", "reverted"} {
		if count(actions, a) != 1 {
			t.Errorf("audit of r-1 = %v, want one %q", actions, a)
		}
	}
	pg.checkOffline(t)
	pg.logShown(t, start)
}
