// Package web is c2bot's local console: a small web page, served by the
// c2bot binary itself, that shows one chat channel for the sandbox demo.
//
// A person types "/c2 diagnose" into the page and clicks the buttons of the
// bot's answers, acting as one of a few simulated users (by default "alice",
// who requests, and "bob", who approves). The bot's messages reach the page
// live over Server-Sent Events, and messages the bot updates in place (an
// approval card turning "applied", later "reverted") are re-rendered in place.
//
// The Adapter is the bot.Sender (and bot.EphemeralSender) for platform
// bot.Web, and it hands the commands it receives to a Submitter (usually a
// *bot.Dispatcher). Because the handler behind the dispatcher needs the
// adapter as its sender, the two are joined in two steps:
//
//	console, err := web.New(web.Config{})      // the Sender
//	h := handlers.New(…, console, …)            // the core, posting through console
//	d := bot.NewDispatcher(ctx, h, 4, 64)
//	console.Attach(d)                           // commands now flow to h
//	mux.Handle("/", console.Handler())          // the page and its API
//	srv.RegisterOnShutdown(console.Close)       // end the live streams on shutdown
//
// Everything is kept in memory; the transcript is empty after a restart.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/c2bot/c2bot/bot"
)

// Defaults used by New for unset Config fields.
const (
	DefaultChannel     = "console"
	DefaultMaxMessages = 500
)

// subscriberBuffer is how many events a live stream may lag behind before
// it is dropped; the browser then reconnects and starts from a snapshot.
const subscriberBuffer = 256

// heartbeatInterval is how often an idle event stream sends a comment line,
// so proxies and browsers keep the connection open.
const heartbeatInterval = 15 * time.Second

// botAuthor is the author shown on the bot's own messages.
var botAuthor = bot.User{ID: "c2bot", Name: "c2bot"}

// ErrClosed is returned when a live stream is asked of a closed console.
var ErrClosed = errors.New("console closed")

// Config configures a console. The zero value is usable: it gives the
// channel "console" with the users alice (Alice Admin) and bob (Bob Approver).
type Config struct {
	// Users are the simulated people one can act as. Ids must be unique,
	// non-empty and free of spaces. Default: alice and bob.
	Users []bot.User
	// Channel is the console's one conversation id (bot.Conversation.ID).
	// Default: "console".
	Channel string
	// Logger receives operational logs. Default: discard.
	// OnRefused, when set, is called with the reason of every inbound
	// request the adapter refuses (metrics): bad_signature, stale,
	// too_large, bad_request, busy, wrong_workspace, unauthorised,
	// forbidden, wrong_tenant, cross_site, rebinding.
	OnRefused func(reason string)
	Logger    *slog.Logger
	// Now is the clock for message times. Default: time.Now.
	Now func() time.Time
	// MaxMessages is how many messages the transcript keeps; the oldest are
	// dropped first. Default: 500.
	MaxMessages int
	// ListenAddr is the address the console is served on (C2_LISTEN). Its
	// host is accepted in the Host header besides the loopback names
	// (localhost, 127.0.0.0/8, [::1]); every other Host is refused, which is
	// what defeats DNS rebinding.
	ListenAddr string
}

// DefaultUsers returns the two simulated users of the demo.
func DefaultUsers() []bot.User {
	return []bot.User{
		{ID: "alice", Name: "Alice Admin"},
		{ID: "bob", Name: "Bob Approver"},
	}
}

// checkAndSetDefaults validates c and fills in defaults.
func (c *Config) checkAndSetDefaults() error {
	if len(c.Users) == 0 {
		c.Users = DefaultUsers()
	}
	seen := make(map[string]bool, len(c.Users))
	for _, u := range c.Users {
		if u.ID == "" {
			return errors.New("user with empty id")
		}
		if strings.IndexFunc(u.ID, unicode.IsSpace) >= 0 || len(u.ID) > 64 {
			return fmt.Errorf("user id %q: must be at most 64 characters without spaces", u.ID)
		}
		if seen[u.ID] {
			return fmt.Errorf("duplicate user id %q", u.ID)
		}
		seen[u.ID] = true
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	return nil
}

// Submitter accepts a command for asynchronous handling and reports whether
// it was accepted. *bot.Dispatcher implements it.
type Submitter interface {
	// Submit queues cmd and returns false when it cannot take it now.
	Submit(cmd bot.Command) bool
}

// Entry kinds, as sent to the page in Entry.Kind.
const (
	kindBot    = "bot"    // posted by the bot (possibly ephemeral)
	kindUser   = "user"   // a command a person typed
	kindAction = "action" // a button a person clicked
)

// entry is one line of the transcript.
type entry struct {
	id      string
	kind    string
	author  bot.User
	to      string // user id for an ephemeral message, "" when everyone sees it
	thread  string
	at      time.Time
	updated time.Time
	version int
	failed  string // why a person's command was not run, if it was not
	msg     bot.Message
}

// visibleTo reports whether user may see e.
func (e *entry) visibleTo(user string) bool { return e.to == "" || e.to == user }

// subscriber is one live event stream.
type subscriber struct {
	user string
	ch   chan []byte
}

// Adapter is the console: the bot.Sender and bot.EphemeralSender for
// platform bot.Web, and the http.Handler of the page (see Handler).
// It is safe for concurrent use.
type Adapter struct {
	cfg       Config
	users     map[string]bot.User
	instance  string // distinguishes message ids of this process from a previous one
	ref       json.RawMessage
	heartbeat time.Duration

	submitMu sync.RWMutex
	submit   Submitter

	mu      sync.Mutex
	seq     int // last message number
	event   int // last event number
	entries []*entry
	byID    map[string]*entry
	subs    map[*subscriber]struct{}
	closed  bool
	done    chan struct{}
}

var (
	_ bot.Sender          = (*Adapter)(nil)
	_ bot.Finder          = (*Adapter)(nil)
	_ bot.EphemeralSender = (*Adapter)(nil)
)

// New returns a console for cfg. It returns an error when cfg.Users holds an
// empty, oversized or duplicate id. Commands received before Attach are
// answered with 503.
func New(cfg Config) (*Adapter, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, fmt.Errorf("console config: %w", err)
	}
	inst, err := randomHex(6)
	if err != nil {
		return nil, fmt.Errorf("console instance id: %w", err)
	}
	ref, err := json.Marshal(refData{Console: inst})
	if err != nil {
		return nil, fmt.Errorf("console ref: %w", err)
	}
	a := &Adapter{
		cfg:       cfg,
		users:     make(map[string]bot.User, len(cfg.Users)),
		instance:  inst,
		ref:       ref,
		heartbeat: heartbeatInterval,
		byID:      make(map[string]*entry),
		subs:      make(map[*subscriber]struct{}),
		done:      make(chan struct{}),
	}
	for _, u := range cfg.Users {
		a.users[u.ID] = u
	}
	return a, nil
}

// Attach sets where commands typed or clicked in the console go; pass the
// *bot.Dispatcher whose handler posts through this adapter. Calling it again
// replaces the previous submitter.
func (a *Adapter) Attach(s Submitter) {
	a.submitMu.Lock()
	a.submit = s
	a.submitMu.Unlock()
}

// Close ends every live event stream and refuses new ones. Posting and
// updating keep working (the transcript is memory only). It is safe to call
// more than once.
func (a *Adapter) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	close(a.done)
	for s := range a.subs {
		close(s.ch)
		delete(a.subs, s)
	}
}

// Users returns the simulated users, in configuration order.
func (a *Adapter) Users() []bot.User { return append([]bot.User(nil), a.cfg.Users...) }

// Channel returns the console's conversation id.
func (a *Adapter) Channel() string { return a.cfg.Channel }

// Conversation returns the console's conversation, for callers that want to
// post to it unprompted.
func (a *Adapter) Conversation() bot.Conversation {
	return bot.Conversation{Platform: bot.Web, ID: a.cfg.Channel}
}

// Platform returns bot.Web.
func (a *Adapter) Platform() string { return bot.Web }

// refData is the adapter-private part of the MessageRefs the console hands
// out (bot.Conversation.Ref): the process instance, so that a reference kept
// by the core across a restart is refused instead of updating whatever new
// message happens to have the same id.
type refData struct {
	Console string `json:"console"`
}

// checkConv returns an error wrapping bot.ErrUndeliverable when conv is not
// this console's channel.
func (a *Adapter) checkConv(conv bot.Conversation) error {
	if conv.Platform != bot.Web {
		return fmt.Errorf("console: platform %q is not %q: %w", conv.Platform, bot.Web, bot.ErrUndeliverable)
	}
	if conv.ID != a.cfg.Channel {
		return fmt.Errorf("console: unknown channel %q: %w", conv.ID, bot.ErrUndeliverable)
	}
	return nil
}

// Post appends msg to the channel (as a thread reply when conv.Thread is
// set) and pushes it to every open page. It returns a reference whose ID is
// "m-<n>". A conversation other than this console's channel gives an error
// wrapping bot.ErrUndeliverable.
func (a *Adapter) Post(ctx context.Context, conv bot.Conversation, msg bot.Message) (bot.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return bot.MessageRef{}, fmt.Errorf("console post: %w", err)
	}
	if err := a.checkConv(conv); err != nil {
		return bot.MessageRef{}, err
	}
	e := a.add(&entry{kind: kindBot, author: botAuthor, thread: conv.Thread, msg: cloneMessage(msg)})
	return a.refFor(e), nil
}

// Find returns the bot's message in conv's thread (or at the top of the
// channel) marked with key, among the messages the console still holds.
func (a *Adapter) Find(ctx context.Context, conv bot.Conversation, key string) (bot.MessageRef, bool, error) {
	if err := ctx.Err(); err != nil {
		return bot.MessageRef{}, false, fmt.Errorf("console find: %w", err)
	}
	if err := a.checkConv(conv); err != nil {
		return bot.MessageRef{}, false, err
	}
	if key == "" {
		return bot.MessageRef{}, false, errors.New("console find: empty key")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.entries) - 1; i >= 0; i-- {
		e := a.entries[i]
		if e.kind == kindBot && e.to == "" && e.thread == conv.Thread && e.msg.Key == key {
			return a.refFor(e), true, nil
		}
	}
	return bot.MessageRef{}, false, nil
}

// PostEphemeral appends msg to the channel for user only: other users'
// pages never receive it. An unknown user or a foreign conversation gives an
// error wrapping bot.ErrUndeliverable.
func (a *Adapter) PostEphemeral(ctx context.Context, conv bot.Conversation, user bot.User, msg bot.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("console post ephemeral: %w", err)
	}
	if err := a.checkConv(conv); err != nil {
		return err
	}
	if _, ok := a.users[user.ID]; !ok {
		return fmt.Errorf("console: unknown user %q: %w", user.ID, bot.ErrUndeliverable)
	}
	a.add(&entry{kind: kindBot, author: botAuthor, to: user.ID, thread: conv.Thread, msg: cloneMessage(msg)})
	return nil
}

// Update replaces the bot message at ref with msg, keeping its place in the
// transcript, and pushes the new version to the pages that can see it. An
// id that is unknown (never posted, dropped as too old, or posted by an
// earlier process), or that names a person's message, gives an error
// wrapping bot.ErrUndeliverable.
func (a *Adapter) Update(ctx context.Context, ref bot.MessageRef, msg bot.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("console update: %w", err)
	}
	if err := a.checkConv(ref.Conv); err != nil {
		return err
	}
	if len(ref.Conv.Ref) > 0 {
		var rd refData
		if err := json.Unmarshal(ref.Conv.Ref, &rd); err != nil || rd.Console != a.instance {
			return fmt.Errorf("console: message %q is from an earlier console session: %w", ref.ID, bot.ErrUndeliverable)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.byID[ref.ID]
	if !ok {
		return fmt.Errorf("console: unknown message %q: %w", ref.ID, bot.ErrUndeliverable)
	}
	if e.kind != kindBot || e.to != "" {
		return fmt.Errorf("console: message %q cannot be updated: %w", ref.ID, bot.ErrUndeliverable)
	}
	e.msg = cloneMessage(msg)
	e.version++
	e.updated = a.cfg.Now()
	a.broadcastLocked(e)
	return nil
}

// refFor returns the reference to a message of this console.
func (a *Adapter) refFor(e *entry) bot.MessageRef {
	return bot.MessageRef{
		Conv: bot.Conversation{Platform: bot.Web, ID: a.cfg.Channel, Thread: e.thread, Ref: a.ref},
		ID:   e.id,
	}
}

// add numbers e, appends it, drops the oldest entries beyond MaxMessages
// and pushes e to the streams that may see it.
func (a *Adapter) add(e *entry) *entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	e.id = "m-" + strconv.Itoa(a.seq)
	e.at = a.cfg.Now()
	e.version = 1
	a.entries = append(a.entries, e)
	a.byID[e.id] = e
	if over := len(a.entries) - a.cfg.MaxMessages; over > 0 {
		for _, old := range a.entries[:over] {
			delete(a.byID, old.id)
		}
		n := copy(a.entries, a.entries[over:])
		clear(a.entries[n:])
		a.entries = a.entries[:n]
	}
	a.broadcastLocked(e)
	return e
}

// markFailed records on a person's message that it was not run, and pushes
// the change.
func (a *Adapter) markFailed(id, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.byID[id]
	if !ok {
		return
	}
	e.failed = reason
	e.version++
	e.updated = a.cfg.Now()
	a.broadcastLocked(e)
}

// lookup returns a copy of the entry id if user may see it.
func (a *Adapter) lookup(id, user string) (entry, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.byID[id]
	if !ok || !e.visibleTo(user) {
		return entry{}, false
	}
	return *e, true
}

// snapshotLocked returns the entries user may see, oldest first, as JSON views.
func (a *Adapter) snapshotLocked(user string) []Entry {
	out := make([]Entry, 0, len(a.entries))
	for _, e := range a.entries {
		if e.visibleTo(user) {
			out = append(out, e.view())
		}
	}
	return out
}

// snapshot is snapshotLocked under the lock.
func (a *Adapter) snapshot(user string) []Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapshotLocked(user)
}

// subscribe registers a live stream for user and returns it together with
// the snapshot it starts from; no event can fall between the two.
func (a *Adapter) subscribe(user string) (*subscriber, []Entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, ErrClosed
	}
	s := &subscriber{user: user, ch: make(chan []byte, subscriberBuffer)}
	a.subs[s] = struct{}{}
	return s, a.snapshotLocked(user), nil
}

// unsubscribe removes s, if it is still registered.
func (a *Adapter) unsubscribe(s *subscriber) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.subs[s]; ok {
		delete(a.subs, s)
		close(s.ch)
	}
}

// broadcastLocked sends e, as one SSE event, to every stream whose user may
// see it. A stream that is too far behind is dropped (its channel closed);
// the page reconnects and reloads the snapshot.
func (a *Adapter) broadcastLocked(e *entry) {
	if len(a.subs) == 0 {
		return
	}
	a.event++
	data, err := json.Marshal(e.view())
	if err != nil { // cannot happen: the view holds only strings, ints and times
		a.cfg.Logger.Error("console event encode failed", "message", e.id, "error", err)
		return
	}
	ev := formatEvent("message", strconv.Itoa(a.event), data)
	for s := range a.subs {
		if !e.visibleTo(s.user) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			a.cfg.Logger.Warn("console stream too slow, dropped", "user", s.user)
			delete(a.subs, s)
			close(s.ch)
		}
	}
}

// formatEvent renders one Server-Sent Event. data is single-line JSON.
func formatEvent(name, id string, data []byte) []byte {
	var b strings.Builder
	b.Grow(len(data) + len(name) + len(id) + 24)
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteByte('\n')
	if id != "" {
		b.WriteString("id: ")
		b.WriteString(id)
		b.WriteByte('\n')
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	return []byte(b.String())
}

// cloneMessage returns a deep copy of m, so a caller changing its message
// after Post cannot change the transcript.
func cloneMessage(m bot.Message) bot.Message {
	m.Buttons = append([]bot.Button(nil), m.Buttons...)
	secs := make([]bot.Section, len(m.Sections))
	for i, s := range m.Sections {
		s.Facts = append([]bot.Fact(nil), s.Facts...)
		secs[i] = s
	}
	if m.Sections != nil {
		m.Sections = secs
	}
	return m
}

// randomHex returns 2n random hex digits.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
