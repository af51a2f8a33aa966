// Package slacktest is a local fake of the parts of Slack that c2bot uses:
// the Web API methods auth.test, chat.postMessage, chat.update,
// chat.postEphemeral, conversations.history, conversations.replies and
// apps.connections.open, plus a Socket Mode WebSocket endpoint. It records every call, keeps the messages posted so
// tests can read them (buttons included), and fails calls on demand.
// Helpers build signed slash-command and button-click requests for HTTP
// mode.
//
// Point the adapter at it with Config.APIURL = srv.APIURL(). It listens on
// 127.0.0.1 only.
package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Default identities of the fake workspace.
const (
	BotToken  = "xoxb-slacktest-bot-token"
	AppToken  = "xapp-slacktest-app-token"
	TeamID    = "T0C2TEST"
	BotUserID = "U0C2BOT"
	BotID     = "B0C2BOT"
)

// Call is one Web API request the fake received.
type Call struct {
	// Method is the API method, "chat.postMessage".
	Method string
	// Token is the token the request carried (Authorization header, or the
	// form's token field).
	Token string
	// FromHeader is true when the token came in an Authorization header.
	FromHeader bool
	// Form holds the form fields (for form-encoded requests).
	Form url.Values
	// Body is the raw request body.
	Body []byte
}

// Reply scripts the answer to one call.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Error, when set, is answered as {"ok":false,"error":Error}.
	Error string
	// Body, when set, is answered verbatim as JSON (a recorded response).
	Body []byte
}

// Message is a message as the fake workspace holds it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
	// User is the only person who sees an ephemeral message.
	User      string
	Ephemeral bool
	// Author is who posted it: BotUserID for the bot's posts (with
	// BotID), a person's or another app's user id for messages added
	// with Add.
	Author, AuthorBot string
	// Updates counts chat.update calls on this message.
	Updates int
}

// Button is a button drawn in a message's blocks.
type Button struct {
	ActionID string
	BlockID  string
	Label    string
	Value    string
	Style    string
}

// Server is the fake Slack. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	botToken, appToken string

	mu       sync.Mutex
	changed  chan struct{}
	calls    []Call
	scripted map[string][]Reply
	messages []*Message
	seq      int
	scopes   map[string]bool

	// Socket Mode.
	conn    *websocket.Conn
	writeMu sync.Mutex
	acks    map[string]json.RawMessage
	envSeq  int
	stop    chan struct{}
	wg      sync.WaitGroup
}

// NewServer starts a fake Slack on 127.0.0.1 that accepts BotToken and
// AppToken. Close it when done.
func NewServer() *Server {
	s := &Server{
		botToken: BotToken,
		appToken: AppToken,
		changed:  make(chan struct{}),
		scripted: make(map[string][]Reply),
		acks:     make(map[string]json.RawMessage),
		stop:     make(chan struct{}),
		scopes:   map[string]bool{},
	}
	for _, sc := range ManifestScopes {
		s.scopes[sc] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("/socket", s.serveSocket)
	// Set s.srv before serving: handlers read s.srv.URL.
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Start()
	return s
}

// ManifestScopes are the bot scopes the fake's token has unless
// SetScopes says otherwise: those c2bot's manifests request.
var ManifestScopes = []string{"commands", "chat:write", "app_mentions:read", "channels:history", "groups:history", "im:history"}

// SetScopes replaces the bot token's scopes. A method that needs a scope
// the token lacks answers missing_scope, as Slack does.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = map[string]bool{}
	for _, sc := range scopes {
		s.scopes[sc] = true
	}
}

// Add puts a message into the workspace as if somebody else had posted it
// (Author a person's or another app's user id) and returns its ts.
func (s *Server) Add(m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.TS = s.nextTSLocked()
	s.messages = append(s.messages, &m)
	s.notifyLocked()
	return m.TS
}

// nextTSLocked is the ts of the next message, increasing; s.mu is held.
func (s *Server) nextTSLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", 1700000000+s.seq, s.seq)
}

// Close stops the server and any Socket Mode connection.
func (s *Server) Close() {
	close(s.stop)
	s.mu.Lock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.mu.Unlock()
	s.srv.Close()
	s.wg.Wait()
}

// APIURL is the Web API base to put in the adapter's Config.APIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Calls returns the calls to method received so far, or all calls when
// method is "".
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Script makes the next len(replies) calls to method answer with replies,
// in order, whatever their token; later calls are served normally again.
func (s *Server) Script(method string, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripted[method] = append(s.scripted[method], replies...)
}

// Messages returns copies of the messages in channel (all channels when
// channel is ""), ephemeral ones included, in the order they were posted.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if channel == "" || m.Channel == channel {
			out = append(out, *m)
		}
	}
	return out
}

// WaitMessage waits until a message matching pred exists and returns it.
func (s *Server) WaitMessage(ctx context.Context, pred func(Message) bool) (Message, error) {
	var found Message
	err := s.wait(ctx, func() bool {
		for _, m := range s.messages {
			if pred(*m) {
				found = *m
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitCalls waits until at least n calls to method were received.
func (s *Server) WaitCalls(ctx context.Context, method string, n int) ([]Call, error) {
	err := s.wait(ctx, func() bool {
		count := 0
		for _, c := range s.calls {
			if c.Method == method {
				count++
			}
		}
		return count >= n
	})
	if err != nil {
		return nil, err
	}
	return s.Calls(method), nil
}

// wait runs cond under the lock each time the state changes, until it
// holds or ctx ends.
func (s *Server) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slacktest: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes waiters; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	call := Call{Method: method, Body: body}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		call.Form, _ = url.ParseQuery(string(body))
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		call.Token, call.FromHeader = tok, true
	} else if call.Form != nil {
		call.Token = call.Form.Get("token")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
	defer s.notifyLocked()

	if r := s.scripted[method]; len(r) > 0 {
		s.scripted[method] = r[1:]
		writeReply(w, r[0])
		return
	}
	want := s.botToken
	if method == "apps.connections.open" {
		want = s.appToken
	}
	if call.Token == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	if call.Token != want {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	f := call.Form
	if f == nil {
		f = url.Values{}
	}
	switch method {
	case "auth.test":
		// Web API answers name the token's scopes in this header.
		w.Header().Set("X-OAuth-Scopes", strings.Join(s.scopeList(), ","))
		writeJSON(w, map[string]any{
			"ok": true, "url": "https://c2-test.slack.com/", "team": "c2 test",
			"user": "c2bot", "team_id": TeamID, "user_id": BotUserID, "bot_id": BotID,
		})
	case "chat.postMessage", "chat.postEphemeral":
		if f.Get("channel") == "" {
			writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
			return
		}
		if method == "chat.postEphemeral" && f.Get("user") == "" {
			writeJSON(w, map[string]any{"ok": false, "error": "user_not_in_channel"})
			return
		}
		m := &Message{
			Channel:   f.Get("channel"),
			TS:        s.nextTSLocked(),
			ThreadTS:  f.Get("thread_ts"),
			Text:      f.Get("text"),
			Blocks:    json.RawMessage(f.Get("blocks")),
			User:      f.Get("user"),
			Ephemeral: method == "chat.postEphemeral",
			Author:    BotUserID,
			AuthorBot: BotID,
		}
		s.messages = append(s.messages, m)
		if m.Ephemeral {
			writeJSON(w, map[string]any{"ok": true, "message_ts": m.TS})
			return
		}
		writeJSON(w, map[string]any{
			"ok": true, "channel": m.Channel, "ts": m.TS,
			"message": map[string]any{"type": "message", "subtype": "bot_message", "bot_id": BotID, "text": m.Text, "ts": m.TS},
		})
	case "chat.update":
		for _, m := range s.messages {
			if m.Channel == f.Get("channel") && m.TS == f.Get("ts") && !m.Ephemeral {
				m.Text = f.Get("text")
				if b := f.Get("blocks"); b != "" {
					m.Blocks = json.RawMessage(b)
				}
				m.Updates++
				writeJSON(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text})
				return
			}
		}
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
	case "conversations.history", "conversations.replies":
		s.serveHistory(w, method, f)
	case "apps.connections.open":
		writeJSON(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket"})
	default:
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func writeReply(w http.ResponseWriter, f Reply) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	if f.Body != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(f.Body)
		return
	}
	if f.Error == "" {
		w.WriteHeader(status) // empty body, as Slack's 429s and slack-go's tests have it
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": f.Error})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// Buttons returns the buttons in m's actions blocks.
func (m Message) Buttons() []Button {
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
			Text     struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	var out []Button
	for _, b := range blocks {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type == "button" {
				out = append(out, Button{ActionID: e.ActionID, BlockID: b.BlockID, Label: e.Text.Text, Value: e.Value, Style: e.Style})
			}
		}
	}
	return out
}

// Button returns the button labelled label, if m has one.
func (m Message) Button(label string) (Button, bool) {
	for _, b := range m.Buttons() {
		if b.Label == label {
			return b, true
		}
	}
	return Button{}, false
}

// BlockText returns every text string in m's blocks, one per line: what a
// person reads in the message.
func (m Message) BlockText() string {
	var v any
	_ = json.Unmarshal(m.Blocks, &v)
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if s, ok := t["text"].(string); ok {
				b.WriteString(s)
				b.WriteByte('\n')
			}
			for k, c := range t {
				if k != "text" {
					walk(c)
				} else if _, ok := c.(string); !ok {
					walk(c)
				}
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(v)
	return b.String()
}

// Now returns the time as a Unix timestamp string, for request signing.
func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// historyScope is the scope reading a conversation needs, by the kind of
// its id: public channels C…, private channels G… (older ids), direct
// messages D… (docs.slack.dev/reference/methods/conversations.history:
// "Relevant *:history scope").
func historyScope(channel string) string {
	switch {
	case strings.HasPrefix(channel, "G"):
		return "groups:history"
	case strings.HasPrefix(channel, "D"):
		return "im:history"
	}
	return "channels:history"
}

// serveHistory answers conversations.history (the channel's top-level
// messages, newest first) and conversations.replies (a thread: its parent
// first, then the replies, oldest first), with oldest/latest/inclusive,
// limit and cursor paging, as docs.slack.dev/reference/methods/
// conversations.history and conversations.replies describe them.
// Ephemeral messages are nobody's history. s.mu is held.
func (s *Server) serveHistory(w http.ResponseWriter, method string, f url.Values) {
	channel := f.Get("channel")
	if need := historyScope(channel); !s.scopes[need] {
		writeJSON(w, map[string]any{"ok": false, "error": "missing_scope", "needed": need, "provided": strings.Join(s.scopeList(), ",")})
		return
	}
	inclusive := f.Get("inclusive") == "true" || f.Get("inclusive") == "1"
	inRange := func(ts string) bool {
		if o := f.Get("oldest"); o != "" && (ts < o || (ts == o && !inclusive)) {
			return false
		}
		if l := f.Get("latest"); l != "" && (ts > l || (ts == l && !inclusive)) {
			return false
		}
		return true
	}
	var list []*Message
	switch method {
	case "conversations.history":
		for i := len(s.messages) - 1; i >= 0; i-- {
			m := s.messages[i]
			if m.Channel == channel && !m.Ephemeral && m.ThreadTS == "" && inRange(m.TS) {
				list = append(list, m)
			}
		}
	default:
		ts := f.Get("ts")
		var parent *Message
		for _, m := range s.messages {
			if m.Channel == channel && m.TS == ts && !m.Ephemeral {
				parent = m
			}
		}
		if parent == nil {
			writeJSON(w, map[string]any{"ok": false, "error": "thread_not_found"})
			return
		}
		if parent.ThreadTS != "" { // a reply's ts names its thread
			ts = parent.ThreadTS
			for _, m := range s.messages {
				if m.Channel == channel && m.TS == ts {
					parent = m
				}
			}
		}
		if inRange(parent.TS) {
			list = append(list, parent)
		}
		for _, m := range s.messages {
			if m.Channel == channel && m.ThreadTS == ts && m.TS != ts && !m.Ephemeral && inRange(m.TS) {
				list = append(list, m)
			}
		}
	}
	start := 0
	if c := f.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "next:"))
		if err != nil || n < 0 || n > len(list) {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_cursor"})
			return
		}
		start = n
	}
	limit, _ := strconv.Atoi(f.Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	end := min(start+limit, len(list))
	msgs := make([]map[string]any, 0, end-start)
	for _, m := range list[start:end] {
		out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": m.Author}
		if m.AuthorBot != "" {
			out["bot_id"] = m.AuthorBot
		}
		if m.ThreadTS != "" {
			out["thread_ts"] = m.ThreadTS
		}
		if len(m.Blocks) > 0 {
			out["blocks"] = m.Blocks
		}
		msgs = append(msgs, out)
	}
	next := ""
	if end < len(list) {
		next = fmt.Sprintf("next:%d", end)
	}
	writeJSON(w, map[string]any{"ok": true, "messages": msgs, "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}})
}

func (s *Server) scopeList() []string {
	var out []string
	for sc := range s.scopes {
		out = append(out, sc)
	}
	sort.Strings(out)
	return out
}
