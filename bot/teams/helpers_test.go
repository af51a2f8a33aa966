package teams

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/c2bot/c2bot/bot"
)

// fixture returns the activity of a fixture file in testdata/fixtures
// (captured Playground files wrap it in {"activity": …}).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	var wrapped struct {
		Activity json.RawMessage `json:"activity"`
	}
	if json.Unmarshal(data, &wrapped) == nil && len(wrapped.Activity) > 0 {
		return wrapped.Activity
	}
	return data
}

// withFields returns activity JSON with top-level fields replaced.
func withFields(t testing.TB, activity []byte, fields map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(activity, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		m[k] = v
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// recorder is a Submitter that records commands and can act like the
// handler through onSubmit.
type recorder struct {
	mu       sync.Mutex
	cmds     []bot.Command
	refuse   bool
	onSubmit func(cmd bot.Command)
	wg       sync.WaitGroup
}

func (r *recorder) Submit(cmd bot.Command) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return false
	}
	r.cmds = append(r.cmds, cmd)
	if r.onSubmit != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.onSubmit(cmd)
		}()
	}
	return true
}

func (r *recorder) commands() []bot.Command {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bot.Command(nil), r.cmds...)
}

// connCall is one request the fake connector received.
type connCall struct {
	Method, Path, Authorization string
	Body                        map[string]any
}

// fakeConnector is a Bot Connector answering like the Agents Playground
// (playground_connector_behaviour.json): 201 {"id"} for posts, 200 for
// updates, 404 ConversationNotFound for unknown conversations. The
// conversation "gone" gives 404, "removed" 403 BotNotInConversationRoster
// and "flaky" 502.
type fakeConnector struct {
	*httptest.Server
	mu    sync.Mutex
	calls []connCall
	next  int
}

func newFakeConnector(t *testing.T) *fakeConnector {
	f := &fakeConnector{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeConnector) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	f.mu.Lock()
	f.calls = append(f.calls, connCall{Method: r.Method, Path: r.URL.EscapedPath(), Authorization: r.Header.Get("Authorization"), Body: m})
	f.next++
	id := 1795592371700 + f.next
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.Contains(r.URL.Path, "/conversations/gone"):
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"ConversationNotFound","message":"Conversation not found"}}`)
	case strings.Contains(r.URL.Path, "/conversations/removed"):
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`)
	case strings.Contains(r.URL.Path, "/conversations/flaky"):
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, `<html>bad gateway</html>`)
	case r.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": jsonNumber(id)})
	case r.Method == http.MethodPut:
		w.WriteHeader(http.StatusOK)
		json.NewEncoder(w).Encode(map[string]any{"id": jsonNumber(id)})
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func jsonNumber(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (f *fakeConnector) recorded() []connCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]connCall(nil), f.calls...)
}

// quietLogger discards logs.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// playgroundTenant is the tenant of the Agents Playground's activities.
const playgroundTenant = "00000000-0000-0000-0000-0000000000001"

// newLocalAdapter is an unauthenticated adapter (the Playground set-up).
func newLocalAdapter(t *testing.T) *Adapter {
	t.Helper()
	a, err := New(Config{ListenAddr: "127.0.0.1:3978", Unauthenticated: true, Tenants: []string{playgroundTenant}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// conversationFor returns the bot.Conversation an activity produces, its
// serviceUrl pointed at url.
func conversationFor(t *testing.T, activity []byte, url string) bot.Conversation {
	t.Helper()
	act, err := parseActivity(withFields(t, activity, map[string]any{"serviceUrl": url}))
	if err != nil {
		t.Fatal(err)
	}
	return act.conversation()
}

var bg = context.Background()
