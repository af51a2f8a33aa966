package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
)

// serve posts an activity to the adapter's handler from a loopback client.
func serve(t *testing.T, a *Adapter, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
	req.RemoteAddr = "127.0.0.1:50123"
	req.Host = "127.0.0.1:3978"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	return rec
}

func executeActivity(t *testing.T, serviceURL, command string) []byte {
	return withFields(t, fixture(t, "playground_action_execute_invoke.json"), map[string]any{
		"serviceUrl": serviceURL,
		"value": map[string]any{"action": map[string]any{
			"type": "Action.Execute", "verb": "c2", "title": "Approve",
			"data": map[string]any{"c2cmd": command},
		}},
	})
}

func decodeInvoke(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("invoke response %q: %v", rec.Body, err)
	}
	return m
}

func TestInvokeAnsweredWithUpdatedCard(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	rec := &recorder{onSubmit: func(cmd bot.Command) {
		// The handler approves and updates the clicked card in place.
		if err := a.Update(bg, *cmd.Origin, bot.Message{Title: "Approved by Alex Wilber", Text: "Change r-1 applied; reverts at 16:00."}); err != nil {
			t.Errorf("update: %v", err)
		}
	}}
	a.Attach(rec)

	res := decodeInvoke(t, serve(t, a, executeActivity(t, fc.URL+"/_connector", "approve r-1")))

	// The same shape as universal_action_invoke_response.json.
	var want map[string]any
	json.Unmarshal(fixture(t, "universal_action_invoke_response.json"), &want)
	if res["statusCode"] != want["statusCode"] || res["type"] != want["type"] {
		t.Fatalf("invoke response = %v", res)
	}
	card := res["value"].(map[string]any)
	if card["type"] != "AdaptiveCard" || card["body"].([]any)[0].(map[string]any)["text"] != "Approved by Alex Wilber" {
		t.Fatalf("card = %v", card)
	}
	cmds := rec.commands()
	if len(cmds) != 1 || cmds[0].Text != "approve r-1" || cmds[0].Origin == nil || cmds[0].Origin.ID != "1795592486071" {
		t.Fatalf("commands = %+v", cmds)
	}
	if calls := fc.recorded(); len(calls) != 0 {
		t.Fatalf("the card update went to the connector too: %+v", calls)
	}

	// A later update of the same card (the change applied) goes through
	// the connector.
	if err := a.Update(bg, *cmds[0].Origin, bot.Message{Title: "Applied"}); err != nil {
		t.Fatal(err)
	}
	calls := fc.recorded()
	if len(calls) != 1 || calls[0].Method != http.MethodPut || !strings.HasSuffix(calls[0].Path, "/activities/1795592486071") {
		t.Fatalf("later update = %+v", calls)
	}
}

func TestInvokeSettledByPost(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	rec := &recorder{onSubmit: func(cmd bot.Command) {
		// An unauthorised click: the handler explains in the conversation.
		if _, err := a.Post(bg, cmd.Conv, bot.Message{Text: "Only approvers can approve r-1."}); err != nil {
			t.Errorf("post: %v", err)
		}
	}}
	a.Attach(rec)
	res := decodeInvoke(t, serve(t, a, executeActivity(t, fc.URL+"/_connector", "approve r-1")))
	if res["type"] != "application/vnd.microsoft.activity.message" || res["value"] != "Only approvers can approve r-1." {
		t.Fatalf("invoke response = %v", res)
	}
	if calls := fc.recorded(); len(calls) != 1 || calls[0].Method != http.MethodPost {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestInvokeWithoutUpdateInTime(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	a.invokeWait = 20 * time.Millisecond
	release := make(chan struct{})
	rec := &recorder{onSubmit: func(cmd bot.Command) {
		<-release // a slow handler: the update comes after the answer
		if err := a.Update(bg, *cmd.Origin, bot.Message{Title: "Applied"}); err != nil {
			t.Errorf("update: %v", err)
		}
	}}
	a.Attach(rec)
	res := decodeInvoke(t, serve(t, a, executeActivity(t, fc.URL+"/_connector", "approve r-1")))
	if res["type"] != "application/vnd.microsoft.activity.message" || res["value"] != textWorking {
		t.Fatalf("invoke response = %v", res)
	}
	close(release)
	rec.commands() // wait for the handler
	calls := fc.recorded()
	if len(calls) != 1 || calls[0].Method != http.MethodPut {
		t.Fatalf("late update not sent to the connector: %+v", calls)
	}
	a.mu.Lock()
	n := len(a.inflight)
	a.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d invokes left registered", n)
	}
}

func TestInvokeForeignCard(t *testing.T) {
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	for _, f := range []string{"playground_action_execute_invoke.json", "playground_action_execute_invoke_with_input.json"} {
		res := decodeInvoke(t, serve(t, a, fixture(t, f)))
		if res["type"] != "application/vnd.microsoft.activity.message" || res["value"] != textNotOurs {
			t.Errorf("%s: invoke response = %v", f, res)
		}
	}
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("dispatched %d commands", n)
	}
}

func TestInvokeBusy(t *testing.T) {
	a := newLocalAdapter(t)
	a.Attach(&recorder{refuse: true})
	res := decodeInvoke(t, serve(t, a, executeActivity(t, "http://127.0.0.1:9/", "approve r-1")))
	if res["value"] != textBusy {
		t.Fatalf("invoke response = %v", res)
	}
	if len(a.inflight) != 0 {
		t.Fatal("refused invoke left registered")
	}
}

func TestActionSubmitAndTypedMessages(t *testing.T) {
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	submit := withFields(t, fixture(t, "playground_action_submit_message.json"), map[string]any{"value": map[string]any{"c2cmd": "deny r-1"}})
	for _, body := range [][]byte{
		submit,
		fixture(t, "playground_channel_message_with_mention.json"),
		fixture(t, "playground_action_submit_message.json"), // a foreign card: ignored
		fixture(t, "playground_installationUpdate.json"),    // nothing to do
	} {
		if r := serve(t, a, body); r.Code != http.StatusOK || r.Body.Len() != 0 {
			t.Fatalf("status %d body %q", r.Code, r.Body)
		}
	}
	cmds := rec.commands()
	if len(cmds) != 2 {
		t.Fatalf("commands = %+v", cmds)
	}
	if cmds[0].Text != "deny r-1" || cmds[0].Origin == nil || cmds[0].Origin.ID != "1795592486071" {
		t.Errorf("submit command = %+v", cmds[0])
	}
	if cmds[1].Text != "status" || cmds[1].Conv.Thread != "1795592543787" || cmds[1].Origin != nil {
		t.Errorf("typed command = %+v", cmds[1])
	}
}

func TestBusyMessageGetsReply(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	a.Attach(&recorder{refuse: true})
	body := withFields(t, fixture(t, "playground_personal_message.json"), map[string]any{"serviceUrl": fc.URL, "text": "diagnose"})
	if r := serve(t, a, body); r.Code != http.StatusOK {
		t.Fatalf("status %d", r.Code)
	}
	calls := fc.recorded()
	if len(calls) != 1 || !strings.Contains(mustJSON(t, calls[0].Body), "busy") {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestConversationUpdateWelcomes(t *testing.T) {
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	if r := serve(t, a, fixture(t, "playground_conversationUpdate_personal.json")); r.Code != http.StatusOK {
		t.Fatalf("status %d", r.Code)
	}
	// Members added without the bot: no welcome.
	other := withFields(t, fixture(t, "playground_conversationUpdate_personal.json"), map[string]any{"membersAdded": []any{map[string]any{"id": "user-id-1"}}})
	serve(t, a, other)
	cmds := rec.commands()
	if len(cmds) != 1 || cmds[0].Text != "help" || cmds[0].Conv.ID != "3483bc16-6859-4ecc-a925-00dc2fe7126e" {
		t.Fatalf("commands = %+v", cmds)
	}
}

func TestHandlerRefusals(t *testing.T) {
	a := newLocalAdapter(t)
	rec := &recorder{}
	a.Attach(rec)
	body := fixture(t, "playground_personal_message.json")

	// Unauthenticated mode: only loopback clients.
	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
	req.RemoteAddr = "10.0.0.7:40000"
	req.Host = "127.0.0.1:3978"
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	a.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("remote client: status %d, want 401", w.Code)
	}
	if r := serve(t, a, []byte(`{"type":`)); r.Code != http.StatusBadRequest {
		t.Errorf("malformed: status %d, want 400", r.Code)
	}
	get := httptest.NewRequest(http.MethodGet, "/api/messages", nil)
	get.RemoteAddr = "127.0.0.1:1"
	w = httptest.NewRecorder()
	a.Handler().ServeHTTP(w, get)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", w.Code)
	}
	big := withFields(t, body, map[string]any{"text": strings.Repeat("x", maxActivityBytes)})
	if r := serve(t, a, big); r.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: status %d", r.Code)
	}
	unknownInvoke := withFields(t, body, map[string]any{"type": "invoke", "name": "task/fetch"})
	if r := serve(t, a, unknownInvoke); r.Code != http.StatusNotImplemented {
		t.Errorf("unknown invoke: status %d", r.Code)
	}
	if n := len(rec.commands()); n != 0 {
		t.Fatalf("dispatched %d commands", n)
	}

	fresh := newLocalAdapter(t) // nothing attached yet
	if r := serve(t, fresh, body); r.Code != http.StatusServiceUnavailable {
		t.Errorf("no dispatcher: status %d, want 503", r.Code)
	}
}

// TestWithDispatcher runs the adapter with the real bot.Dispatcher under
// concurrent clicks (meaningful with -race).
func TestWithDispatcher(t *testing.T) {
	fc := newFakeConnector(t)
	a := newLocalAdapter(t)
	d := bot.NewDispatcher(bg, bot.HandlerFunc(func(ctx context.Context, cmd bot.Command) {
		if cmd.Origin != nil {
			a.Update(ctx, *cmd.Origin, bot.Message{Title: "Handled " + cmd.Text})
			return
		}
		a.Post(ctx, cmd.Conv, bot.Message{Text: "ok " + cmd.Text})
	}), 4, 16)
	a.Attach(d)
	done := make(chan string, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			var body []byte
			if i%2 == 0 {
				body = withFields(t, executeActivity(t, fc.URL, "approve r-1"), map[string]any{"replyToId": "card-" + string(rune('a'+i))})
			} else {
				body = withFields(t, fixture(t, "playground_personal_message.json"), map[string]any{"serviceUrl": fc.URL, "text": "status"})
			}
			req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
			req.RemoteAddr = "127.0.0.1:1"
			req.Host = "localhost:3978"
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			w := httptest.NewRecorder()
			a.Handler().ServeHTTP(w, req)
			done <- w.Body.String()
		}(i)
	}
	for i := 0; i < 8; i++ {
		<-done
	}
	d.Close()
}
