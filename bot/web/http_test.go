package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot"
)

func TestCommandIsDispatched(t *testing.T) {
	tests := []struct {
		typed, want string
	}{
		{"/c2 diagnose", "diagnose"},
		{"  /C2   diagnose contoso  ", "diagnose contoso"},
		{"c2 fix contoso --for 4h --reason \"nightly backup\"", "fix contoso --for 4h --reason \"nightly backup\""},
		{"C2 status", "status"},
		{"@c2 help", "help"},
		{"/c2\tsignins --since 24h", "signins --since 24h"},
		{"audit", "audit"},
		{"c2diagnose", "c2diagnose"},
	}
	f := newFixture(t, Config{})
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.typed, func(t *testing.T) {
			body, _ := json.Marshal(commandRequest{User: "alice", Text: tt.typed})
			status, ans := f.post(t, "/console/api/command", string(body))
			if status != http.StatusAccepted || ans["accepted"] != true {
				t.Fatalf("status %d, answer %v", status, ans)
			}
			cmd := f.rec.next(t)
			if cmd.Text != tt.want {
				t.Errorf("Text = %q, want %q", cmd.Text, tt.want)
			}
			if want := (bot.User{ID: "alice", Name: "Alice Admin"}); cmd.User != want {
				t.Errorf("User = %+v, want %+v", cmd.User, want)
			}
			if !reflect.DeepEqual(cmd.Conv, conv) {
				t.Errorf("Conv = %+v, want %+v", cmd.Conv, conv)
			}
			if cmd.Origin != nil {
				t.Errorf("Origin = %+v, want nil for a typed command", cmd.Origin)
			}
			if !regexp.MustCompile(`^web-[0-9a-f]{16}$`).MatchString(cmd.ID) || seen[cmd.ID] {
				t.Errorf("ID = %q: want a fresh web-<hex> id", cmd.ID)
			}
			seen[cmd.ID] = true
			if ans["id"] != cmd.ID {
				t.Errorf("answer id %v, dispatched id %q", ans["id"], cmd.ID)
			}
			// The typed text is echoed into the transcript as the user's message.
			msgs := f.messages(t, "bob")
			last := msgs[len(msgs)-1]
			if last.Kind != kindUser || last.Author.ID != "alice" || last.Message.Text != strings.TrimSpace(tt.typed) || last.ID != ans["message"] {
				t.Errorf("echo = %+v, answer %v", last, ans)
			}
		})
	}
}

func TestClickIsDispatched(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	ref, err := f.a.Post(ctx, conv, approvalCard)
	if err != nil {
		t.Fatal(err)
	}
	threadRef, err := f.a.Post(ctx, conv.InThread(ref), bot.Message{Text: "more", Buttons: []bot.Button{{Label: "Revert now", Command: "revert r-1"}}})
	if err != nil {
		t.Fatal(err)
	}

	status, ans := f.post(t, "/console/api/click", fmt.Sprintf(`{"user":"bob","message":%q,"button":1}`, ref.ID))
	if status != http.StatusAccepted || ans["accepted"] != true {
		t.Fatalf("status %d, answer %v", status, ans)
	}
	cmd := f.rec.next(t)
	if cmd.Text != "deny r-1" {
		t.Errorf("Text = %q, want the button's command", cmd.Text)
	}
	if cmd.User.ID != "bob" || cmd.User.Name != "Bob Approver" {
		t.Errorf("User = %+v", cmd.User)
	}
	if cmd.Origin == nil || !reflect.DeepEqual(*cmd.Origin, ref) {
		t.Fatalf("Origin = %+v, want %+v", cmd.Origin, ref)
	}
	if cmd.Conv.Key() != "web:console" || cmd.Conv.Thread != "" {
		t.Errorf("Conv = %+v", cmd.Conv)
	}
	// The origin is good for updating the card in place.
	if err := f.a.Update(ctx, *cmd.Origin, bot.Message{Title: "Denied"}); err != nil {
		t.Errorf("Update(origin): %v", err)
	}
	// The click shows in the transcript.
	msgs := f.messages(t, "alice")
	last := msgs[len(msgs)-1]
	if last.Kind != kindAction || last.Author.ID != "bob" || !strings.Contains(last.Message.Text, "Deny") {
		t.Errorf("click echo = %+v", last)
	}

	// A button in a thread: the command's conversation is that thread.
	status, _ = f.post(t, "/console/api/click", fmt.Sprintf(`{"user":"alice","message":%q,"button":0}`, threadRef.ID))
	if status != http.StatusAccepted {
		t.Fatalf("thread click status %d", status)
	}
	cmd = f.rec.next(t)
	if cmd.Text != "revert r-1" || cmd.Conv.Thread != ref.ID || cmd.Origin == nil || cmd.Origin.ID != threadRef.ID {
		t.Errorf("thread click = %+v (origin %+v)", cmd, cmd.Origin)
	}
}

func TestBadRequestsDispatchNothing(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	card, err := f.a.Post(ctx, conv, approvalCard)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := f.a.Post(ctx, conv, bot.Message{Text: "no buttons here"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.PostEphemeral(ctx, conv, bot.User{ID: "alice"}, approvalCard); err != nil {
		t.Fatal(err)
	}
	ephemeral := f.messages(t, "alice")[2].ID
	before := ids(f.messages(t, "alice"))

	long := strings.Repeat("x", maxCommandLen+1)
	huge := `{"user":"alice","text":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	tests := []struct {
		name, path, body string
		header           map[string]string
		status           int
		errPart          string
	}{
		{"bad json", "command", `{"user":"alice",`, nil, 400, "bad JSON"},
		{"not an object", "command", `["diagnose"]`, nil, 400, "bad JSON"},
		{"unknown field", "command", `{"user":"alice","text":"diagnose","admin":true}`, nil, 400, "unknown field"},
		{"two values", "command", `{"user":"alice","text":"diagnose"}{"user":"bob","text":"x"}`, nil, 400, "more than one"},
		{"unknown user", "command", `{"user":"mallory","text":"/c2 diagnose"}`, nil, 400, `unknown user "mallory"`},
		{"missing user", "command", `{"text":"/c2 diagnose"}`, nil, 400, "unknown user"},
		{"empty text", "command", `{"user":"alice","text":"   "}`, nil, 400, "empty command"},
		{"prefix only", "command", `{"user":"alice","text":"/c2"}`, nil, 400, "empty command"},
		{"too long", "command", `{"user":"alice","text":"` + long + `"}`, nil, 400, "too long"},
		{"body too large", "command", huge, nil, 413, "larger than"},
		{"form post", "command", `{"user":"alice","text":"diagnose"}`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"cross origin", "command", `{"user":"alice","text":"diagnose"}`, map[string]string{"Origin": "https://evil.example"}, 403, "cross-origin"},
		{"cross site fetch", "click", fmt.Sprintf(`{"user":"bob","message":%q,"button":0}`, card.ID), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{"click unknown user", "click", fmt.Sprintf(`{"user":"eve","message":%q,"button":0}`, card.ID), nil, 400, "unknown user"},
		{"click unknown message", "click", `{"user":"bob","message":"m-999","button":0}`, nil, 400, `unknown message "m-999"`},
		{"click missing button", "click", fmt.Sprintf(`{"user":"bob","message":%q}`, card.ID), nil, 400, "missing \"button\""},
		{"click button too big", "click", fmt.Sprintf(`{"user":"bob","message":%q,"button":2}`, card.ID), nil, 400, "has no button 2"},
		{"click negative button", "click", fmt.Sprintf(`{"user":"bob","message":%q,"button":-1}`, card.ID), nil, 400, "has no button -1"},
		{"click button not a number", "click", fmt.Sprintf(`{"user":"bob","message":%q,"button":"0"}`, card.ID), nil, 400, "bad JSON"},
		{"click message without buttons", "click", fmt.Sprintf(`{"user":"bob","message":%q,"button":0}`, plain.ID), nil, 400, "has no button 0"},
		{"click someone else's ephemeral", "click", fmt.Sprintf(`{"user":"bob","message":%q,"button":0}`, ephemeral), nil, 400, "unknown message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/console/api/"+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			status, ans := do(t, req)
			if status != tt.status {
				t.Errorf("status %d, want %d (answer %v)", status, tt.status, ans)
			}
			msg, _ := ans["error"].(string)
			if !strings.Contains(msg, tt.errPart) {
				t.Errorf("error %q, want it to mention %q", msg, tt.errPart)
			}
		})
	}
	t.Run("wrong method", func(t *testing.T) {
		res, err := http.Get(f.srv.URL + "/console/api/command")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET command: status %d", res.StatusCode)
		}
	})

	f.d.Close() // waits for anything that was accepted
	if got := f.rec.all(); len(got) != 0 {
		t.Errorf("dispatched %d commands, want none: %+v", len(got), got)
	}
	if after := ids(f.messages(t, "alice")); !reflect.DeepEqual(after, before) {
		t.Errorf("transcript changed by rejected requests: %v → %v", before, after)
	}
}

// refuser is a Submitter whose queue is always full.
type refuser struct{ calls int }

func (r *refuser) Submit(bot.Command) bool { r.calls++; return false }

func TestUnavailable(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(a.Close)
	f := &fixture{a: a, srv: srv}

	status, ans := f.post(t, "/console/api/command", `{"user":"alice","text":"/c2 diagnose"}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(ans["error"]), "not connected") {
		t.Errorf("before Attach: status %d, answer %v", status, ans)
	}
	if n := len(f.messages(t, "alice")); n != 0 {
		t.Errorf("before Attach: %d messages in the transcript, want 0", n)
	}

	full := &refuser{}
	a.Attach(full)
	status, ans = f.post(t, "/console/api/command", `{"user":"alice","text":"/c2 diagnose"}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(ans["error"]), "busy") {
		t.Errorf("queue full: status %d, answer %v", status, ans)
	}
	if full.calls != 1 {
		t.Errorf("Submit called %d times, want 1", full.calls)
	}
	msgs := f.messages(t, "alice")
	if len(msgs) != 1 || msgs[0].Kind != kindUser || !strings.Contains(msgs[0].Failed, "not run") || msgs[0].Version != 2 {
		t.Errorf("echo of a refused command = %+v, want it marked not run", msgs)
	}
}

func TestStripPrefix(t *testing.T) {
	tests := map[string]string{
		"/c2 diagnose":      "diagnose",
		"/C2 diagnose":      "diagnose",
		"c2 diagnose":       "diagnose",
		"C2   status":       "status",
		"@c2 help":          "help",
		"c2":                "",
		"/c2":               "",
		"  ":                "",
		"diagnose":          "diagnose",
		"c2diagnose":        "c2diagnose",
		"/c2x diagnose":     "/c2x diagnose",
		"/c2\u00a0status":   "status",
		"c2 c2 diagnose":    "c2 diagnose",
		" /c2 fix --for 4h": "fix --for 4h",
	}
	for in, want := range tests {
		if got := stripPrefix(in); got != want {
			t.Errorf("stripPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPageAndStaticFiles(t *testing.T) {
	f := newFixture(t, Config{Users: []bot.User{
		{ID: "alice", Name: "Alice Admin"},
		{ID: "bob", Name: "Bob <b>Approver</b>"},
	}, Channel: "demo-room"})
	tests := []struct {
		path, ctype string
		status      int
		contains    []string
	}{
		{"/", "text/html; charset=utf-8", 200, []string{
			"c2bot console — sandbox tenant",
			`data-testid="user-switch"`, `<option value="alice">Alice Admin</option>`,
			`<option value="bob">Bob &lt;b&gt;Approver&lt;/b&gt;</option>`,
			`data-testid="command-input"`, `data-testid="send"`, `data-testid="transcript"`,
			`data-channel="demo-room"`, `data-default-user="alice"`,
			`<script src="/console/static/app.js"></script>`,
		}},
		{"/console", "text/html; charset=utf-8", 200, []string{"c2bot console"}},
		{"/console/", "text/html; charset=utf-8", 200, []string{"c2bot console"}},
		{"/console/static/app.js", "text/javascript; charset=utf-8", 200, []string{"EventSource", "textContent"}},
		{"/console/static/style.css", "text/css; charset=utf-8", 200, []string{".sev-blocker", ".btn-primary", ".btn-danger"}},
		{"/console/static/favicon.svg", "image/svg+xml", 200, []string{"<svg"}},
		{"/console/static/index.html", "", 404, nil},
		{"/console/static/../web.go", "", 404, nil},
		{"/nope", "", 404, nil},
		{"/console/api/messages?user=nobody", "application/json; charset=utf-8", 400, []string{`"error"`}},
		{"/console/api/events?user=", "application/json; charset=utf-8", 400, []string{"unknown user"}},
		{"/console/api/users", "application/json; charset=utf-8", 200, []string{`"channel":"demo-room"`, `"id":"bob"`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, err := http.Get(f.srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.ctype != "" && res.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tt.ctype)
			}
			for _, s := range tt.contains {
				if !strings.Contains(string(b), s) {
					t.Errorf("body lacks %q", s)
				}
			}
			if tt.status == 200 && res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff header")
			}
			if strings.HasPrefix(tt.ctype, "text/html") {
				csp := res.Header.Get("Content-Security-Policy")
				if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
					t.Errorf("Content-Security-Policy = %q", csp)
				}
			}
		})
	}
}

// TestScriptIsInert checks that message text travels as data: the JSON the
// page reads has no raw markup, and the page script puts text into the DOM
// only through textContent.
func TestScriptIsInert(t *testing.T) {
	f := newFixture(t, Config{})
	evil := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s := f.openStream(t, ctx, "alice")
	s.snapshot(t)
	msg := bot.Message{Title: evil, Text: evil, Sections: []bot.Section{{Title: evil, Facts: []bot.Fact{{Name: evil, Value: evil}}}},
		Buttons: []bot.Button{{Label: evil, Command: "approve r-1"}}, Footer: evil}
	if _, err := f.a.Post(ctx, conv, msg); err != nil {
		t.Fatal(err)
	}
	ev := s.mustNext(t, "message")
	res, err := http.Get(f.srv.URL + "/console/api/messages?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for name, body := range map[string]string{"messages": string(raw), "event": ev.data} {
		if strings.Contains(body, "<") || strings.Contains(body, ">") {
			t.Errorf("%s JSON holds raw markup: %s", name, body)
		}
		if !strings.Contains(body, `\u003cscript\u003e`) {
			t.Errorf("%s JSON lacks the escaped text", name)
		}
	}
	var snap snapshotBody
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	if got := snap.Messages[0].Message; got.Title != evil || got.Sections[0].Facts[0].Value != evil || got.Buttons[0].Label != evil {
		t.Errorf("text did not survive the round trip: %+v", got)
	}

	js, err := staticFS.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	html, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(html), -1) {
		if !strings.Contains(m, "src=") {
			t.Errorf("index.html has an inline script: %s", m)
		}
	}
	if regexp.MustCompile(`(?i)https?://`).Match(html) || regexp.MustCompile(`(?i)https?://`).Match(js) {
		t.Errorf("the page refers to an outside URL")
	}
}

// TestTestIDsDocumented keeps the list of browser-test hooks at the top of
// app.js in step with the hooks the page really has.
func TestTestIDsDocumented(t *testing.T) {
	js, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	header := string(js)[:strings.Index(string(js), "'use strict'")]
	re := regexp.MustCompile(`data-testid(?:="|', ')([a-z-]+)`)
	found := map[string]bool{}
	for _, src := range [][]byte{js, html} {
		for _, m := range re.FindAllSubmatch(src, -1) {
			found[string(m[1])] = true
		}
	}
	for _, want := range []string{"user-switch", "command-input", "send", "message", "button", "section", "fact", "thread", "error", "connection"} {
		if !found[want] {
			t.Errorf("the page has no data-testid %q", want)
		}
	}
	for id := range found {
		if !regexp.MustCompile(`(?m)^//\s+`+regexp.QuoteMeta(id)+`\b`).MatchString(header) &&
			!strings.Contains(header, " "+id+" ") && !strings.Contains(header, " "+id+",") {
			t.Errorf("data-testid %q is not documented at the top of app.js", id)
		}
	}
}
