package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// With C2_LOG_FORMAT=json every line is one JSON object, and every line
// about a request, whichever package writes it, names the request, its
// tenant and its platform.
func TestJSONLogsCarryRequestTenantAndPlatform(t *testing.T) {
	_, env := sandboxEnv(t)
	env["C2_LOG_FORMAT"] = "json"
	p := startBot(t, env, "serve")
	p.say(t, "alice", "/c2 fix --for 2s")
	card := p.waitMessage(t, "bob", 20*time.Second, titled("Approval needed"))
	p.click(t, "bob", card, "Approve")
	p.waitMessage(t, "bob", 30*time.Second, titled("Reverted"))
	p.kill(t)
	lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
	about := 0
	for _, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("not one JSON object per line: %v\n%s", err, l)
		}
		if obj["request"] != "r-1" {
			continue
		}
		about++
		if obj["tenant"] != "sandbox" || obj["platform"] != "web" {
			t.Errorf("line about r-1 lacks tenant or platform: %s", l)
		}
	}
	if about < 5 {
		t.Fatalf("only %d lines about r-1:\n%s", about, p.logs.String())
	}
}
