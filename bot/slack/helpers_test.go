package slack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/bot/slack/slacktest"
)

// recorder is a Submitter that records commands and can refuse them.
type recorder struct {
	mu     sync.Mutex
	cmds   []bot.Command
	refuse bool
	ch     chan bot.Command
}

func newRecorder() *recorder { return &recorder{ch: make(chan bot.Command, 100)} }

func (r *recorder) Submit(cmd bot.Command) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return false
	}
	r.cmds = append(r.cmds, cmd)
	r.ch <- cmd
	return true
}

func (r *recorder) commands() []bot.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bot.Command(nil), r.cmds...)
}

// next waits for the next submitted command.
func (r *recorder) next(t *testing.T) bot.Command {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no command submitted")
	}
	return bot.Command{}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type signingVector struct {
	SigningSecret        string `json:"signing_secret"`
	InvalidSigningSecret string `json:"invalid_signing_secret"`
	Timestamp            string `json:"x_slack_request_timestamp"`
	ContentType          string `json:"content_type"`
	RawBody              string `json:"raw_body"`
	InvalidRawBody       string `json:"invalid_raw_body"`
	Signature            string `json:"expected_x_slack_signature"`
}

func readVector(t *testing.T, name string) signingVector {
	t.Helper()
	var v signingVector
	if err := json.Unmarshal(readFixture(t, name), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fixtureTeams are the workspaces the fake Slack and the fixtures' payloads
// come from (slash_command_*, block_actions_*, signing_vector_*).
var fixtureTeams = []string{slacktest.TeamID, "T0001", "T111", "T1DC2JH3J", "T9TK3CUKW"}

// newTestAdapter returns an adapter talking to a fresh fake Slack, with
// the clock fixed at now and rate-limit waits recorded instead of slept.
func newTestAdapter(t testing.TB, now time.Time, mod func(*Config)) (*Adapter, *slacktest.Server, *[]time.Duration) {
	t.Helper()
	srv := slacktest.NewServer()
	t.Cleanup(srv.Close)
	cfg := Config{
		BotToken:      slacktest.BotToken,
		SigningSecret: "test-signing-secret",
		APIURL:        srv.APIURL(),
		Logger:        quietLogger(),
		Now:           func() time.Time { return now },
		// The fake Slack's workspace and those of the fixtures.
		TeamIDs: fixtureTeams,
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	a.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	t.Cleanup(a.Close)
	return a, srv, waits
}
