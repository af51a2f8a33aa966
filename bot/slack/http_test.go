package slack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

func vectorTime(t *testing.T, v signingVector) time.Time {
	t.Helper()
	sec, err := strconv.ParseInt(v.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(sec, 0)
}

func vectorRequest(path string, v signingVector, body, sig string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", v.ContentType)
	if v.Timestamp != "" {
		req.Header.Set("X-Slack-Request-Timestamp", v.Timestamp)
	}
	if sig != "" {
		req.Header.Set("X-Slack-Signature", sig)
	}
	return req
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSigningVectors(t *testing.T) {
	docs := readVector(t, "signing_vector_slack_docs.json")
	sgo := readVector(t, "signing_vector_slack_go.json")
	tests := []struct {
		name   string
		v      signingVector
		secret string
		path   string
		body   string
		sig    string
		now    func(signingVector) time.Time
		want   int
	}{
		{"docs vector at its time", docs, docs.SigningSecret, PathCommands, docs.RawBody, docs.Signature, nil, http.StatusOK},
		{"docs vector 4 minutes later", docs, docs.SigningSecret, PathCommands, docs.RawBody, docs.Signature,
			func(v signingVector) time.Time { return vectorTime(t, v).Add(4 * time.Minute) }, http.StatusOK},
		{"docs vector with the real clock is stale", docs, docs.SigningSecret, PathCommands, docs.RawBody, docs.Signature,
			func(signingVector) time.Time { return time.Now() }, http.StatusUnauthorized},
		{"docs vector from the future", docs, docs.SigningSecret, PathCommands, docs.RawBody, docs.Signature,
			func(v signingVector) time.Time { return vectorTime(t, v).Add(-6 * time.Minute) }, http.StatusUnauthorized},
		{"docs body tampered", docs, docs.SigningSecret, PathCommands, docs.RawBody + "------", docs.Signature, nil, http.StatusUnauthorized},
		{"wrong signature", docs, docs.SigningSecret, PathCommands, docs.RawBody, "v0=" + strings.Repeat("ab", 32), nil, http.StatusUnauthorized},
		{"signature not hex", docs, docs.SigningSecret, PathCommands, docs.RawBody, "v0=zz", nil, http.StatusUnauthorized},
		{"signature without v0", docs, docs.SigningSecret, PathCommands, docs.RawBody, strings.TrimPrefix(docs.Signature, "v0="), nil, http.StatusUnauthorized},
		{"missing signature", docs, docs.SigningSecret, PathCommands, docs.RawBody, "", nil, http.StatusUnauthorized},
		{"slack-go vector at its time", sgo, sgo.SigningSecret, PathEvents, sgo.RawBody, sgo.Signature, nil, http.StatusOK},
		{"slack-go vector, invalid secret", sgo, sgo.InvalidSigningSecret, PathEvents, sgo.RawBody, sgo.Signature, nil, http.StatusUnauthorized},
		{"slack-go vector, invalid body", sgo, sgo.SigningSecret, PathEvents, sgo.InvalidRawBody, sgo.Signature, nil, http.StatusUnauthorized},
		{"slack-go vector with the real clock is stale", sgo, sgo.SigningSecret, PathEvents, sgo.RawBody, sgo.Signature,
			func(signingVector) time.Time { return time.Now() }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := vectorTime(t, tt.v)
			if tt.now != nil {
				now = tt.now(tt.v)
			}
			a, _, _ := newTestAdapter(t, now, func(c *Config) { c.SigningSecret = tt.secret })
			rec := newRecorder()
			a.Attach(rec)
			got := serve(a.Handler(), vectorRequest(tt.path, tt.v, tt.body, tt.sig))
			if got.Code != tt.want {
				t.Fatalf("status = %d, want %d (%s)", got.Code, tt.want, got.Body)
			}
			// The slack-go vector is an event from workspace "XXXXXXXXX",
			// which c2bot does not serve: signed, acknowledged, not run.
			runs := tt.want == http.StatusOK && tt.v.RawBody != sgo.RawBody
			if n := len(rec.commands()); runs != (n == 1) {
				t.Fatalf("%d commands submitted for status %d", n, got.Code)
			}
		})
	}
}

func TestMissingTimestampHeader(t *testing.T) {
	docs := readVector(t, "signing_vector_slack_docs.json")
	a, _, _ := newTestAdapter(t, vectorTime(t, docs), func(c *Config) { c.SigningSecret = docs.SigningSecret })
	req := vectorRequest(PathCommands, docs, docs.RawBody, docs.Signature)
	req.Header.Del("X-Slack-Request-Timestamp")
	if got := serve(a.Handler(), req); got.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", got.Code)
	}
}

func TestOversizeBody(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, _, _ := newTestAdapter(t, now, nil)
	rec := newRecorder()
	a.Attach(rec)
	body := "text=" + strings.Repeat("x", MaxBodyBytes)
	req := httptest.NewRequest(http.MethodPost, PathCommands, strings.NewReader(body))
	slacktest.Sign(req, "test-signing-secret", []byte(body), now)
	if got := serve(a.Handler(), req); got.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", got.Code)
	}
	if len(rec.commands()) != 0 {
		t.Fatal("oversize request was run")
	}
}

func TestWrongMethodAndPath(t *testing.T) {
	a, _, _ := newTestAdapter(t, time.Now(), nil)
	if got := serve(a.Handler(), httptest.NewRequest(http.MethodGet, PathCommands, nil)); got.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET status = %d, want 405", got.Code)
	}
	if got := serve(a.Handler(), httptest.NewRequest(http.MethodPost, "/slack/other", nil)); got.Code != http.StatusNotFound {
		t.Fatalf("unknown path status = %d, want 404", got.Code)
	}
}

func TestNoSigningSecretRefusesHTTP(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, _, _ := newTestAdapter(t, now, func(c *Config) { c.SigningSecret = ""; c.AppToken = slacktest.AppToken })
	rec := newRecorder()
	a.Attach(rec)
	req := slacktest.NewSlashCommandRequest(PathCommands, "", now, slacktest.SlashCommand{ChannelID: "C1", UserID: "U1", Text: "help"})
	if got := serve(a.Handler(), req); got.Code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", got.Code)
	}
	if len(rec.commands()) != 0 {
		t.Fatal("unsigned request was run")
	}
}

func TestSlashCommandFixtures(t *testing.T) {
	tests := []struct {
		file string
		want bot.Command
	}{
		{"slash_command_form_body_docs_signing_example.txt", bot.Command{
			ID:   "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
			User: bot.User{ID: "U2CERLKJA", Name: "roadrunner"},
			Conv: bot.Conversation{Platform: bot.Slack, ID: "G8PSS9T3V"},
			Text: "",
		}},
		{"slash_command_form_body_docs_weather.txt", bot.Command{
			ID:   "13345224609.738474920.8088930838d88f008e0",
			User: bot.User{ID: "U2147483697", Name: "Steve"},
			Conv: bot.Conversation{Platform: bot.Slack, ID: "C2147483705"},
			Text: "94070",
		}},
		{"slash_command_form_body_boltjs_aws.txt", bot.Command{
			ID:   "111.222.xxx",
			User: bot.User{ID: "W111", Name: "primary-owner"},
			Conv: bot.Conversation{Platform: bot.Slack, ID: "C111"},
			Text: "",
		}},
	}
	now := time.Unix(1700000000, 0)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			a, _, _ := newTestAdapter(t, now, nil)
			rec := newRecorder()
			a.Attach(rec)
			body := readFixture(t, tt.file)
			req := httptest.NewRequest(http.MethodPost, PathCommands, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			slacktest.Sign(req, "test-signing-secret", body, now)
			got := serve(a.Handler(), req)
			if got.Code != http.StatusOK {
				t.Fatalf("status = %d: %s", got.Code, got.Body)
			}
			var ack map[string]string
			if err := json.Unmarshal(got.Body.Bytes(), &ack); err != nil {
				t.Fatal(err)
			}
			if ack["response_type"] != "ephemeral" || !strings.HasPrefix(ack["text"], "Working on") {
				t.Fatalf("ack = %v", ack)
			}
			cmds := rec.commands()
			if len(cmds) != 1 {
				t.Fatalf("%d commands", len(cmds))
			}
			assertCommand(t, cmds[0], tt.want)
		})
	}
}

func assertCommand(t *testing.T, got, want bot.Command) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("command\n got %s\nwant %s", g, w)
	}
}

func TestSlashCommandText(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, _, _ := newTestAdapter(t, now, nil)
	rec := newRecorder()
	a.Attach(rec)
	req := slacktest.NewSlashCommandRequest(PathCommands, "test-signing-secret", now, slacktest.SlashCommand{
		ChannelID: "C0TENANT", UserID: "U0ALICE", UserName: "alice", Text: "  diagnose contoso ", TriggerID: "trig.1",
	})
	got := serve(a.Handler(), req)
	var ack map[string]string
	_ = json.Unmarshal(got.Body.Bytes(), &ack)
	if ack["text"] != "Working on `diagnose contoso`…" {
		t.Fatalf("ack text = %q", ack["text"])
	}
	assertCommand(t, rec.next(t), bot.Command{
		ID: "trig.1", User: bot.User{ID: "U0ALICE", Name: "alice"},
		Conv: bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}, Text: "diagnose contoso",
	})
}

func TestWorkingOnEscapes(t *testing.T) {
	got := workingOn("fix --reason \"<!channel> `x` & <@U1>\"")
	if strings.Contains(got, "<!channel>") || strings.Contains(got, "<@U1>") || strings.Count(got, "`") != 2 {
		t.Fatalf("workingOn = %q", got)
	}
}

func TestBusyAndStarting(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, _, _ := newTestAdapter(t, now, nil)
	send := func(trigger string) map[string]string {
		req := slacktest.NewSlashCommandRequest(PathCommands, "test-signing-secret", now, slacktest.SlashCommand{
			ChannelID: "C1", UserID: "U1", Text: "status", TriggerID: trigger,
		})
		got := serve(a.Handler(), req)
		if got.Code != http.StatusOK {
			t.Fatalf("status = %d", got.Code)
		}
		var ack map[string]string
		_ = json.Unmarshal(got.Body.Bytes(), &ack)
		return ack
	}
	if ack := send("t1"); !strings.Contains(ack["text"], "starting") {
		t.Fatalf("before Attach: %v", ack)
	}
	rec := newRecorder()
	rec.refuse = true
	a.Attach(rec)
	if ack := send("t1"); ack["text"] != "c2bot is busy, try again in a minute" {
		t.Fatalf("busy: %v", ack)
	}
	rec.mu.Lock()
	rec.refuse = false
	rec.mu.Unlock()
	// The refused delivery was not remembered: the same id runs now.
	if ack := send("t1"); !strings.HasPrefix(ack["text"], "Working on") {
		t.Fatalf("after busy: %v", ack)
	}
	if n := len(rec.commands()); n != 1 {
		t.Fatalf("%d commands", n)
	}
}

// TestAckWhileHandlerBlocks runs a real bot.Dispatcher whose handler blocks:
// the HTTP answer must still arrive, for a slash command and for a click.
func TestAckWhileHandlerBlocks(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, _, _ := newTestAdapter(t, now, nil)
	release := make(chan struct{})
	started := make(chan bot.Command, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := bot.NewDispatcher(ctx, bot.HandlerFunc(func(ctx context.Context, cmd bot.Command) {
		started <- cmd
		<-release
	}), 1, 4)
	defer d.Close()
	defer close(release)
	a.Attach(d)

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	resp, err := srv.Client().Do(slacktest.NewSlashCommandRequest(srv.URL+PathCommands, "test-signing-secret", now,
		slacktest.SlashCommand{ChannelID: "C1", UserID: "U1", Text: "diagnose", TriggerID: "t-slow"}))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Working on") {
		t.Fatalf("slash ack: %d %s", resp.StatusCode, body)
	}
	if cmd := <-started; cmd.ID != "t-slow" {
		t.Fatalf("started %q", cmd.ID)
	}
	// The handler is now blocked; a click is still acknowledged.
	payload := json.RawMessage(readFixture(t, "block_actions_docs_message_button.json"))
	resp, err = srv.Client().Do(slacktest.NewInteractionRequest(srv.URL+PathInteractions, "test-signing-secret", now, payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("click ack: %d", resp.StatusCode)
	}
}

func TestBlockActionsFixtures(t *testing.T) {
	now := time.Unix(1700000000, 0)
	docsWant := bot.Command{
		ID:     clickID("1548426417.840180", "UA8RXUSPL", "click_me_123"),
		User:   bot.User{ID: "UA8RXUSPL", Name: "jtorrance"},
		Conv:   bot.Conversation{Platform: bot.Slack, ID: "CBR2V3XEX"},
		Text:   "click_me_123",
		Origin: &bot.MessageRef{Conv: bot.Conversation{Platform: bot.Slack, ID: "CBR2V3XEX"}, ID: "1548261231.000200"},
	}
	boltWant := bot.Command{
		ID:     clickID("1596530385.194939", "W111", "click_me_123"),
		User:   bot.User{ID: "W111", Name: "primary-owner"},
		Conv:   bot.Conversation{Platform: bot.Slack, ID: "C111"},
		Text:   "click_me_123",
		Origin: &bot.MessageRef{Conv: bot.Conversation{Platform: bot.Slack, ID: "C111"}, ID: "111.222"},
	}
	tests := []struct {
		name string
		body string
		want *bot.Command
	}{
		{"docs message button", "payload=" + url.QueryEscape(string(readFixture(t, "block_actions_docs_message_button.json"))), &docsWant},
		{"bolt python form body", strings.TrimSpace(string(readFixture(t, "block_actions_bolt_python_button.form_body.txt"))), &boltWant},
		{"bolt python json", "payload=" + url.QueryEscape(string(readFixture(t, "block_actions_bolt_python_button.json"))), &boltWant},
		{"view multiselect is not a button", "payload=" + url.QueryEscape(string(readFixture(t, "block_actions_slack_go_view_multiselect.json"))), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _ := newTestAdapter(t, now, nil)
			rec := newRecorder()
			a.Attach(rec)
			req := httptest.NewRequest(http.MethodPost, PathInteractions, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			slacktest.Sign(req, "test-signing-secret", []byte(tt.body), now)
			got := serve(a.Handler(), req)
			if got.Code != http.StatusOK || got.Body.Len() != 0 {
				t.Fatalf("status = %d body %q", got.Code, got.Body)
			}
			cmds := rec.commands()
			if tt.want == nil {
				if len(cmds) != 0 {
					t.Fatalf("submitted %v", cmds)
				}
				return
			}
			if len(cmds) != 1 {
				t.Fatalf("%d commands", len(cmds))
			}
			assertCommand(t, cmds[0], *tt.want)
		})
	}
}

func TestClickInThreadKeepsThread(t *testing.T) {
	msg := slacktest.Message{Channel: "C1", TS: "200.000200", ThreadTS: "100.000100", Blocks: json.RawMessage(`[]`)}
	payload := slacktest.ClickPayload(msg, slacktest.Button{ActionID: "c2:0", Label: "Approve", Value: "approve r-42"}, "U2", "bob", "300.1")
	raw, _ := json.Marshal(payload)
	var ic slack.InteractionCallback
	if err := json.Unmarshal(raw, &ic); err != nil {
		t.Fatal(err)
	}
	cmd, ok := fromBlockActions(ic)
	if !ok {
		t.Fatal("not parsed")
	}
	want := bot.Conversation{Platform: bot.Slack, ID: "C1", Thread: "100.000100"}
	if !sameConv(cmd.Conv, want) || !sameConv(cmd.Origin.Conv, want) || cmd.Origin.ID != "200.000200" || cmd.Text != "approve r-42" {
		t.Fatalf("cmd = %+v origin %+v", cmd, cmd.Origin)
	}
	// The reply to the click lands in the same thread.
	if got := cmd.Conv.InThread(*cmd.Origin); got.Thread != "100.000100" {
		t.Fatalf("InThread = %+v", got)
	}
}

func TestEvents(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, _, _ := newTestAdapter(t, now, nil)
	rec := newRecorder()
	a.Attach(rec)
	h := a.Handler()

	t.Run("url_verification", func(t *testing.T) {
		req := slacktest.NewEventRequest(PathEvents, "test-signing-secret", now, map[string]string{
			"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification",
		})
		got := serve(h, req)
		if got.Code != http.StatusOK || got.Body.String() != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
			t.Fatalf("challenge: %d %q", got.Code, got.Body)
		}
	})

	t.Run("app_mention, then redelivered", func(t *testing.T) {
		ev := slacktest.AppMention("Ev01", "C0TENANT", "U0ALICE", "diagnose  contoso &amp; co")
		got := serve(h, slacktest.NewEventRequest(PathEvents, "test-signing-secret", now, ev))
		if got.Code != http.StatusOK {
			t.Fatalf("status %d", got.Code)
		}
		assertCommand(t, rec.next(t), bot.Command{
			ID: "Ev01", User: bot.User{ID: "U0ALICE"},
			Conv: bot.Conversation{Platform: bot.Slack, ID: "C0TENANT"}, Text: "diagnose contoso & co",
		})
		for i := 1; i <= 3; i++ {
			req := slacktest.NewEventRequest(PathEvents, "test-signing-secret", now, ev)
			req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(i))
			req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
			if got := serve(h, req); got.Code != http.StatusOK {
				t.Fatalf("retry %d status %d", i, got.Code)
			}
		}
		if n := len(rec.commands()); n != 1 {
			t.Fatalf("%d commands after redeliveries", n)
		}
	})

	t.Run("a retry never seen before runs", func(t *testing.T) {
		req := slacktest.NewEventRequest(PathEvents, "test-signing-secret", now, slacktest.AppMention("Ev02", "C1", "U1", "status"))
		req.Header.Set("X-Slack-Retry-Num", "1")
		serve(h, req)
		if c := rec.next(t); c.ID != "Ev02" {
			t.Fatalf("got %q", c.ID)
		}
	})

	t.Run("bot messages and unknown events are acknowledged, not run", func(t *testing.T) {
		before := len(rec.commands())
		ev := slacktest.AppMention("Ev03", "C1", "U1", "status")
		ev["event"].(map[string]any)["bot_id"] = "B999"
		if got := serve(h, slacktest.NewEventRequest(PathEvents, "test-signing-secret", now, ev)); got.Code != http.StatusOK {
			t.Fatalf("bot mention status %d", got.Code)
		}
		unknown := map[string]any{"type": "event_callback", "event_id": "Ev04", "event": map[string]any{"type": "no_such_event_type"}}
		if got := serve(h, slacktest.NewEventRequest(PathEvents, "test-signing-secret", now, unknown)); got.Code != http.StatusOK {
			t.Fatalf("unknown event status %d", got.Code)
		}
		if n := len(rec.commands()); n != before {
			t.Fatalf("ran %d more commands", n-before)
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, PathEvents, strings.NewReader("{nope"))
		slacktest.Sign(req, "test-signing-secret", []byte("{nope"), now)
		if got := serve(h, req); got.Code != http.StatusBadRequest {
			t.Fatalf("status %d", got.Code)
		}
	})
}

func TestAppMentionStripsOnlyTheBot(t *testing.T) {
	tests := []struct {
		text, botID, want string
	}{
		{"<@UBOT> diagnose contoso", "UBOT", "diagnose contoso"},
		{"<@UBOT|c2> fix --reason \"ask &lt;@U9&gt;\"", "UBOT", "fix --reason \"ask <@U9>\""},
		{"hey <@UBOT> status", "UBOT", "hey status"},
		{"<@UBOT> approve r-1 for <@U7>", "UBOT", "approve r-1 for <@U7>"},
		{"<@UOTHER> status", "", "status"},
		{"<@UBOT> /c2 help", "UBOT", "help"},
	}
	for _, tt := range tests {
		ev := &slackevents.AppMentionEvent{Type: "app_mention", User: "U1", Channel: "C1", Text: tt.text}
		cmd, ok := fromAppMention("E1", ev, tt.botID)
		if !ok || cmd.Text != tt.want {
			t.Errorf("%q → %q (ok %v), want %q", tt.text, cmd.Text, ok, tt.want)
		}
	}
}

func sameConv(a, b bot.Conversation) bool {
	return a.Platform == b.Platform && a.ID == b.ID && a.Thread == b.Thread && string(a.Ref) == string(b.Ref)
}

func TestSlashCommandTextIsUnescaped(t *testing.T) {
	cmd := fromSlashCommand(slack.SlashCommand{TriggerID: "t", UserID: "U1", ChannelID: "C1",
		Text: `fix --reason "backup &amp; restore &lt;nightly&gt;"`})
	if want := `fix --reason "backup & restore <nightly>"`; cmd.Text != want {
		t.Fatalf("Text = %q, want %q", cmd.Text, want)
	}
}
