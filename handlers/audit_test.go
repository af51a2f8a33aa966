package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
)

func TestChatAuditPagesThroughEveryEvent(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 45; i++ {
		if err := e.st.AppendAudit(e.ctx, store.Event{Actor: "alice", Action: fmt.Sprintf("step-%d", i), Tenant: "sandbox"}); err != nil {
			t.Fatal(err)
		}
	}
	e.say(alice, "audit")
	seen := map[string]bool{}
	for page := 1; ; page++ {
		p := e.chat.lastPost(t)
		facts := p.Msg.Sections[0].Facts
		for _, f := range facts {
			if seen[f.Value] {
				t.Fatalf("page %d repeats %q", page, f.Value)
			}
			seen[f.Value] = true
		}
		if len(p.Msg.Buttons) == 0 {
			if page != 3 || len(facts) != 5 {
				t.Fatalf("last page %d has %d events", page, len(facts))
			}
			break
		}
		if len(facts) != 20 || p.Msg.Buttons[0].Label != "More" {
			t.Fatalf("page %d: %d events, buttons %+v", page, len(facts), p.Msg.Buttons)
		}
		e.click(alice, p.Ref, "More")
	}
	if len(seen) != 45 {
		t.Fatalf("saw %d of 45 events", len(seen))
	}
	e.say(alice, "audit --before zero")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "event number") {
		t.Fatalf("bad --before: %q", w)
	}
}

// logBuffer collects log output safely.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestEveryAuditEventIsOneLogLine(t *testing.T) {
	buf := &logBuffer{}
	e := newEnv(t, func(cfg *handlers.Config, _ *handlers.TenantConfig) {
		cfg.Logger = slog.New(slog.NewJSONHandler(buf, nil))
	})
	card := e.requestFix(`--reason "nightly backup"`)
	e.click(bob, card.Ref, "Approve")
	e.say(alice, "revert r-1")
	e.flush()
	events, err := e.st.Audit(e.ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	for _, m := range buf.lines() {
		if m["event"] != "audit" {
			continue
		}
		logged = append(logged, fmt.Sprint(m["action"], "|", m["actor"], "|", m["request"], "|", m["tenant"], "|", m["detail"]))
	}
	var stored []string
	for _, ev := range events {
		stored = append(stored, fmt.Sprint(ev.Action, "|", ev.Actor, "|", ev.RequestID, "|", ev.Tenant, "|", ev.Detail))
	}
	if strings.Join(logged, "\n") != strings.Join(stored, "\n") {
		t.Fatalf("log lines:\n%s\nstored events:\n%s", strings.Join(logged, "\n"), strings.Join(stored, "\n"))
	}
	if len(stored) < 6 || !strings.Contains(stored[0], "reason: nightly backup") {
		t.Fatalf("events = %v", stored)
	}
}
