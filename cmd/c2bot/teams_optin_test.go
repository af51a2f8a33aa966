package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

// TestSlackOnlyServeHasNoOpenTeamsEndpoint is issue 8 item 1 end to end: a
// serve configured only for Slack, on a loopback address, used to turn
// unauthenticated Teams on by itself, so any web page in the operator's
// browser could post a text/plain activity with a chosen aadObjectId and
// serviceUrl and have it run. Now there is no /api/messages at all, and
// the activity changes nothing.
func TestSlackOnlyServeHasNoOpenTeamsEndpoint(t *testing.T) {
	rig := newSlackRig(t, false)
	p := startBot(t, rig.env, "serve")
	activity, err := os.ReadFile(filepath.Join("..", "..", "bot", "teams", "testdata", "fixtures", "playground_personal_message.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ctype := range []string{"text/plain;charset=UTF-8", "application/json"} {
		req, err := http.NewRequest(http.MethodPost, p.url+"/api/messages", strings.NewReader(string(activity)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Origin", "https://attacker.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("POST /api/messages (%s) on a Slack-only serve: %s, want 404", ctype, resp.Status)
		}
	}
	if n := rig.count(func(slacktest.Message) bool { return true }); n != 0 {
		t.Fatalf("refused Teams posts made %d Slack messages", n)
	}
	if n := patches(rig.sb, ""); n != 0 {
		t.Fatalf("refused Teams posts wrote to the tenant %d times", n)
	}
}
