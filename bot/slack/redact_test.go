package slack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
)

// TestSlackErrorsRedacted is issue 8 item 10 on the Slack path: a Web API
// (or a proxy in front of it) whose error quotes the request — the bearer
// header, the form — must not put the bot token into the error that is
// logged or kept.
func TestSlackErrorsRedacted(t *testing.T) {
	const token = "xoxb-1111111111-2222222222222-EchoedT0kenValue"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ok": false,
			"error": "invalid_auth: Authorization: " + r.Header.Get("Authorization") + " form " + string(body) + " token=" + token})
	}))
	t.Cleanup(srv.Close)
	a, err := New(Config{BotToken: token, SigningSecret: "s3cret-signing", APIURL: srv.URL + "/api/", Logger: quietLogger(),
		Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, perr := a.Post(ctx, bot.Conversation{Platform: bot.Slack, ID: "C1"}, bot.Message{Text: "x"})
	cerr := a.Check(ctx)
	for _, err := range []error{perr, cerr} {
		if err == nil {
			t.Fatal("call succeeded against a refusing API")
		}
		for _, leak := range []string{token, "EchoedT0kenValue"} {
			if strings.Contains(err.Error(), leak) {
				t.Fatalf("error leaks the token: %v", err)
			}
		}
	}
	if !strings.Contains(perr.Error(), "[redacted]") {
		t.Fatalf("the echoed token is not visibly redacted: %v", perr)
	}
}
