package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
)

// testTimeout bounds every wait in these tests, so a broken feature fails
// instead of hanging; it is never an assertion about speed.
const testTimeout = 10 * time.Second

// recorder is a bot.Handler that records the commands it is given.
type recorder struct {
	mu   sync.Mutex
	cmds []bot.Command
	got  chan bot.Command
}

func newRecorder() *recorder { return &recorder{got: make(chan bot.Command, 100)} }

func (r *recorder) Handle(_ context.Context, cmd bot.Command) {
	r.mu.Lock()
	r.cmds = append(r.cmds, cmd)
	r.mu.Unlock()
	r.got <- cmd
}

func (r *recorder) all() []bot.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bot.Command(nil), r.cmds...)
}

// next waits for the next handled command.
func (r *recorder) next(t *testing.T) bot.Command {
	t.Helper()
	select {
	case cmd := <-r.got:
		return cmd
	case <-time.After(testTimeout):
		t.Fatal("no command was dispatched")
		return bot.Command{}
	}
}

// fixture is a console served by an httptest server, attached to a
// dispatcher whose handler records commands.
type fixture struct {
	a   *Adapter
	srv *httptest.Server
	rec *recorder
	d   *bot.Dispatcher
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rec := newRecorder()
	d := bot.NewDispatcher(context.Background(), rec, 2, 32)
	a.Attach(d)
	srv := httptest.NewServer(a.Handler())
	// Cleanups run last-in first-out: end the streams, then the server.
	t.Cleanup(srv.Close)
	t.Cleanup(a.Close)
	t.Cleanup(d.Close)
	return &fixture{a: a, srv: srv, rec: rec, d: d}
}

// post sends body as JSON to path and returns the status and decoded answer.
func (f *fixture) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(b) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, b)
		}
	}
	return res.StatusCode, out
}

// messages returns GET /console/api/messages for user.
func (f *fixture) messages(t *testing.T, user string) []Entry {
	t.Helper()
	res, err := http.Get(f.srv.URL + "/console/api/messages?user=" + user)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("messages for %q: status %d", user, res.StatusCode)
	}
	var body snapshotBody
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Messages
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	name string
	id   string
	data string
}

// stream is an open event stream.
type stream struct {
	res *http.Response
	br  *bufio.Reader
}

// openStream opens the event stream for user; it ends when ctx does.
func (f *fixture) openStream(t *testing.T, ctx context.Context, user string) *stream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/console/api/events?user="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("open stream for %q: status %d", user, res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream Content-Type = %q", ct)
	}
	return &stream{res: res, br: bufio.NewReader(res.Body)}
}

// next reads the next event, skipping comments and retry hints.
func (s *stream) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// mustNext reads the next event and checks its name.
func (s *stream) mustNext(t *testing.T, name string) sseEvent {
	t.Helper()
	ev, err := s.next()
	if err != nil {
		t.Fatalf("reading %q event: %v", name, err)
	}
	if ev.name != name {
		t.Fatalf("event %q, want %q (data %s)", ev.name, name, ev.data)
	}
	return ev
}

// nextEntry reads the next "message" event and decodes it.
func (s *stream) nextEntry(t *testing.T) Entry {
	t.Helper()
	ev := s.mustNext(t, "message")
	var e Entry
	if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
		t.Fatalf("message event: %v: %s", err, ev.data)
	}
	return e
}

// snapshot reads the first event of a stream, the snapshot.
func (s *stream) snapshot(t *testing.T) snapshotBody {
	t.Helper()
	ev := s.mustNext(t, "snapshot")
	var b snapshotBody
	if err := json.Unmarshal([]byte(ev.data), &b); err != nil {
		t.Fatalf("snapshot event: %v: %s", err, ev.data)
	}
	return b
}

func ids(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

var conv = bot.Conversation{Platform: bot.Web, ID: DefaultChannel}

// approvalCard is a message with two buttons, like the core's approval card.
var approvalCard = bot.Message{
	Title: "Approval needed: r-1",
	Sections: []bot.Section{{
		Title: "Changes", Severity: bot.SeverityWarning,
		Facts: []bot.Fact{{Name: "Security defaults", Value: "enabled → disabled"}},
	}},
	Buttons: []bot.Button{
		{Label: "Approve", Command: "approve r-1", Style: bot.StylePrimary},
		{Label: "Deny", Command: "deny r-1", Style: bot.StyleDanger},
	},
	Footer: "Request r-1",
}

func newStreamRequest(ctx context.Context, base, user string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, base+"/console/api/events?user="+user, nil)
}

func newReader(res *http.Response) *bufio.Reader { return bufio.NewReader(res.Body) }

func unmarshal(data string, v any) error {
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return fmt.Errorf("decode event: %w: %s", err, data)
	}
	return nil
}
