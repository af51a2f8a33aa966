package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/c2bot/c2bot/bot"
)

// Request limits.
const (
	maxBodyBytes   = 16 << 10 // a command or click request body
	maxCommandLen  = 2000     // bytes of command text after the prefix
	eventRetryMsec = 2000     // how soon a browser reconnects a dropped stream
)

// Sentences shown to the person when a command cannot be run.
const (
	msgNotAttached = "the console is not connected to the bot yet; try again in a moment"
	msgBusy        = "the bot is busy; try again in a moment"
)

//go:embed static
var staticFS embed.FS

// page is the console page, parsed once.
var page = template.Must(template.ParseFS(staticFS, "static/index.html"))

// staticTypes are the files served under /console/static/ and their types.
var staticTypes = map[string]string{
	"app.js":      "text/javascript; charset=utf-8",
	"style.css":   "text/css; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

// contentSecurityPolicy keeps the page to its own files: no inline script,
// no third-party origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the console's HTTP handler, meant to be mounted at "/"
// (more specific routes of the caller's mux, such as /api/messages or
// /healthz, keep working). Routes:
//
//	GET  /, /console                    the page
//	GET  /console/static/{app.js,style.css,favicon.svg}
//	GET  /console/api/users             {"channel","users":[{id,name}]}
//	GET  /console/api/messages?user=ID  {"channel","user","messages":[Entry…]}
//	GET  /console/api/events?user=ID    Server-Sent Events: "snapshot" first
//	                                    (same body as /messages), then one
//	                                    "message" event (an Entry) per new or
//	                                    updated message; ": ping" comments
//	POST /console/api/command           {"user":"alice","text":"/c2 diagnose"} → 202
//	POST /console/api/click             {"user":"bob","message":"m-3","button":0} → 202
//
// Every request, GETs included, must name the console by a loopback host
// (localhost, 127.0.0.0/8, [::1]) or the configured listen address: a page
// on a name an attacker re-points at 127.0.0.1 (DNS rebinding) is its own
// origin to the browser, so only the Host header gives it away. POST bodies
// must be JSON (Content-Type application/json, at most 16 KiB) from the
// console's own origin. Errors are JSON {"error":"…"}: 400 for bad input
// (nothing is dispatched), 403 for another Host or a cross-origin request,
// 415 for another content type, 503 when the bot is busy or not attached yet.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.servePage)
	mux.HandleFunc("GET /console", a.servePage)
	mux.HandleFunc("GET /console/{$}", a.servePage)
	mux.HandleFunc("GET /console/static/{file}", serveStatic)
	mux.HandleFunc("GET /console/api/users", a.serveUsers)
	mux.HandleFunc("GET /console/api/messages", a.serveMessages)
	mux.HandleFunc("GET /console/api/events", a.serveEvents)
	mux.HandleFunc("POST /console/api/command", a.serveCommand)
	mux.HandleFunc("POST /console/api/click", a.serveClick)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			a.cfg.Logger.WarnContext(r.Context(), "console request refused: Host is not a loopback name", "host", r.Host, "path", r.URL.Path)
			a.refused("rebinding")
			writeError(w, http.StatusForbidden, "the console answers only to localhost, 127.0.0.1 or [::1] (this Host is refused against DNS rebinding)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a Host header names the console: a loopback
// name or the host of the configured listen address, with any port.
func (a *Adapter) hostAllowed(hostport string) bool {
	if bot.IsLoopbackHost(hostport) {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return false
	}
	if lh, _, err := net.SplitHostPort(a.cfg.ListenAddr); err == nil && lh != "" {
		return strings.EqualFold(strings.Trim(lh, "[]"), host)
	}
	return false
}

// pageData is what index.html is rendered with.
type pageData struct {
	Channel     string
	Users       []bot.User
	DefaultUser string
}

func (a *Adapter) servePage(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	data := pageData{Channel: a.cfg.Channel, Users: a.cfg.Users, DefaultUser: a.cfg.Users[0].ID}
	if err := page.Execute(&buf, data); err != nil {
		a.cfg.Logger.ErrorContext(r.Context(), "console page render failed", "error", err)
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	_, _ = w.Write(buf.Bytes())
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ctype, ok := staticTypes[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (a *Adapter) serveUsers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"channel": a.cfg.Channel, "users": a.cfg.Users})
}

// snapshotBody is the body of GET /messages and of the "snapshot" event.
type snapshotBody struct {
	Channel  string  `json:"channel"`
	User     string  `json:"user"`
	Messages []Entry `json:"messages"`
}

func (a *Adapter) serveMessages(w http.ResponseWriter, r *http.Request) {
	u, ok := a.queryUser(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, snapshotBody{Channel: a.cfg.Channel, User: u.ID, Messages: a.snapshot(u.ID)})
}

// serveEvents streams the transcript as Server-Sent Events until the
// client goes away or the console is closed.
func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	u, ok := a.queryUser(w, r)
	if !ok {
		return
	}
	sub, snap, err := a.subscribe(u.ID)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the console is shutting down")
		return
	}
	defer a.unsubscribe(sub)

	rc := http.NewResponseController(w)
	// A server-wide write timeout would cut the stream; this one lives until
	// the client leaves or Close is called.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	data, err := json.Marshal(snapshotBody{Channel: a.cfg.Channel, User: u.ID, Messages: snap})
	if err != nil {
		a.cfg.Logger.ErrorContext(r.Context(), "console snapshot encode failed", "error", err)
		return
	}
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", eventRetryMsec); err != nil {
		return
	}
	if _, err := w.Write(formatEvent("snapshot", "", data)); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		a.cfg.Logger.WarnContext(r.Context(), "console stream cannot flush", "error", err)
		return
	}

	tick := time.NewTicker(a.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.done:
			return
		case ev, ok := <-sub.ch:
			if !ok {
				return
			}
			if _, err := w.Write(ev); err != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// commandRequest is the body of POST /console/api/command.
type commandRequest struct {
	User string `json:"user"`
	Text string `json:"text"`
}

func (a *Adapter) serveCommand(w http.ResponseWriter, r *http.Request) {
	var req commandRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	u, ok := a.users[req.User]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown user %q", req.User))
		return
	}
	text := stripPrefix(req.Text)
	if text == "" {
		writeError(w, http.StatusBadRequest, `empty command: type a command such as "/c2 diagnose"`)
		return
	}
	if len(text) > maxCommandLen {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("command too long (at most %d characters)", maxCommandLen))
		return
	}
	cmd := bot.Command{User: u, Conv: a.Conversation(), Text: text}
	echo := &entry{kind: kindUser, author: u, msg: bot.Message{Text: strings.TrimSpace(req.Text)}}
	a.dispatch(w, r, cmd, echo)
}

// clickRequest is the body of POST /console/api/click.
type clickRequest struct {
	User    string `json:"user"`
	Message string `json:"message"`
	Button  *int   `json:"button"`
}

func (a *Adapter) serveClick(w http.ResponseWriter, r *http.Request) {
	var req clickRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	u, ok := a.users[req.User]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown user %q", req.User))
		return
	}
	e, ok := a.lookup(req.Message, u.ID)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown message %q", req.Message))
		return
	}
	if req.Button == nil {
		writeError(w, http.StatusBadRequest, `missing "button" (the button's index in the message)`)
		return
	}
	i := *req.Button
	if e.kind != kindBot || i < 0 || i >= len(e.msg.Buttons) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("message %q has no button %d", e.id, i))
		return
	}
	btn := e.msg.Buttons[i]
	text := strings.TrimSpace(btn.Command)
	if text == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("button %q has no command", btn.Label))
		return
	}
	origin := a.refFor(&e)
	conv := a.Conversation()
	conv.Thread = e.thread
	cmd := bot.Command{User: u, Conv: conv, Text: text, Origin: &origin}
	echo := &entry{kind: kindAction, author: u, thread: e.thread, msg: bot.Message{Text: "clicked “" + btn.Label + "”"}}
	a.dispatch(w, r, cmd, echo)
}

// dispatch gives cmd an id, shows the person's echo in the transcript and
// submits cmd. When the bot is busy the echo is marked as not run and the
// answer is 503.
func (a *Adapter) dispatch(w http.ResponseWriter, r *http.Request, cmd bot.Command, echo *entry) {
	a.submitMu.RLock()
	sub := a.submit
	a.submitMu.RUnlock()
	if sub == nil {
		writeError(w, http.StatusServiceUnavailable, msgNotAttached)
		return
	}
	id, err := randomHex(8)
	if err != nil {
		a.cfg.Logger.ErrorContext(r.Context(), "console command id failed", "error", err)
		writeError(w, http.StatusInternalServerError, "cannot accept the command now")
		return
	}
	// Random rather than counted: the core remembers delivery ids to drop
	// redeliveries, and a counter would repeat after a restart.
	cmd.ID = "web-" + id
	a.add(echo)
	if !sub.Submit(cmd) {
		a.markFailed(echo.id, "not run: "+msgBusy)
		a.cfg.Logger.WarnContext(r.Context(), "console command rejected, dispatcher full", "user", cmd.User.ID, "command_id", cmd.ID)
		writeError(w, http.StatusServiceUnavailable, msgBusy)
		return
	}
	a.cfg.Logger.InfoContext(r.Context(), "console command accepted", "user", cmd.User.ID, "command_id", cmd.ID, "kind", echo.kind)
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true, "id": cmd.ID, "message": echo.id})
}

// stripPrefix returns text without surrounding space and without a leading
// "/c2", "@c2" or "c2" (any case) followed by a space or the end:
// "/C2 diagnose" → "diagnose", "c2" → "", "c2diagnose" → "c2diagnose".
func stripPrefix(text string) string {
	t := strings.TrimSpace(text)
	for _, p := range []string{"/c2", "@c2", "c2"} {
		if len(t) < len(p) || !strings.EqualFold(t[:len(p)], p) {
			continue
		}
		rest := t[len(p):]
		if rest == "" {
			return ""
		}
		if r, _ := utf8.DecodeRuneInString(rest); unicode.IsSpace(r) {
			return strings.TrimSpace(rest)
		}
	}
	return t
}

// queryUser returns the user named by ?user=, or answers 400.
func (a *Adapter) queryUser(w http.ResponseWriter, r *http.Request) (bot.User, bool) {
	id := r.URL.Query().Get("user")
	u, ok := a.users[id]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown user %q", id))
		return bot.User{}, false
	}
	return u, true
}

// readJSON checks that r is a same-origin JSON request and decodes its body
// into v, which must be the only value in it. On failure it answers and
// returns false.
func (a *Adapter) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !a.sameOrigin(r) {
		a.refused("cross_site")
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send the request as application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return false
	}
	return true
}

// sameOrigin reports whether r comes from the console's own page (or from
// a client that sends no Origin, such as curl). A cross-site page cannot
// post JSON without a CORS preflight, which the console never grants; this
// check also covers browsers that send simple requests. The Origin must be
// the console's own (an allowed host, the same host and port as the
// request's Host): a page of another local server (same-site) is refused
// too.
func (a *Adapter) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
		a.hostAllowed(u.Host) && strings.EqualFold(u.Host, r.Host)
}

// writeJSON answers with v as JSON. encoding/json escapes <, > and & so the
// body is inert even if a browser were to sniff it as HTML.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"cannot encode the answer"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers with {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// refused counts an inbound request the adapter refused.
func (a *Adapter) refused(reason string) {
	if a.cfg.OnRefused != nil {
		a.cfg.OnRefused(reason)
	}
}
