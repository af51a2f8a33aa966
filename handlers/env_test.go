package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
	"github.com/c2bot/c2bot/tenant/sandbox"
)

// chat is a recording bot.Sender: the test double of a chat platform.
type chat struct {
	mu       sync.Mutex
	n        int
	posts    []posted
	msgs     map[string]bot.Message // current text of each message
	whispers []posted
	failing  int // the next failing calls of Post/Update return an error
	gone     bool
	// lose: the next lose posts land but their answer is lost (an error
	// comes back, as after a timeout once the platform accepted them).
	lose int
	// canFind: Find looks through the posts (as Slack does with a
	// *:history scope); otherwise it cannot look (as Teams).
	canFind bool
	finds   int // Find calls
}

type posted struct {
	Ref  bot.MessageRef
	User bot.User
	Msg  bot.Message
}

func newChat() *chat { return &chat{msgs: map[string]bot.Message{}} }

func (c *chat) Platform() string { return bot.Web }

func (c *chat) fail() error {
	if c.gone {
		return fmt.Errorf("channel archived: %w", bot.ErrUndeliverable)
	}
	if c.failing > 0 {
		c.failing--
		return errors.New("chat platform unreachable")
	}
	return nil
}

func (c *chat) Post(_ context.Context, conv bot.Conversation, msg bot.Message) (bot.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail(); err != nil {
		return bot.MessageRef{}, err
	}
	c.n++
	ref := bot.MessageRef{Conv: conv, ID: fmt.Sprintf("m-%d", c.n)}
	c.posts = append(c.posts, posted{Ref: ref, Msg: msg})
	c.msgs[ref.ID] = msg
	if c.lose > 0 {
		c.lose--
		return bot.MessageRef{}, errors.New("chat platform: answer lost (timeout)")
	}
	return ref, nil
}

// Find returns the post marked key in conv's thread, when canFind.
func (c *chat) Find(_ context.Context, conv bot.Conversation, key string) (bot.MessageRef, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finds++
	if !c.canFind {
		return bot.MessageRef{}, false, bot.ErrCannotLook
	}
	for _, p := range c.posts {
		if p.Msg.Key == key && p.Ref.Conv.ID == conv.ID && p.Ref.Conv.Thread == conv.Thread {
			return p.Ref, true, nil
		}
	}
	return bot.MessageRef{}, false, nil
}

func (c *chat) Update(_ context.Context, ref bot.MessageRef, msg bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail(); err != nil {
		return err
	}
	if _, ok := c.msgs[ref.ID]; !ok {
		return fmt.Errorf("no message %s: %w", ref.ID, bot.ErrUndeliverable)
	}
	c.msgs[ref.ID] = msg
	return nil
}

func (c *chat) PostEphemeral(_ context.Context, conv bot.Conversation, user bot.User, msg bot.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.whispers = append(c.whispers, posted{Ref: bot.MessageRef{Conv: conv}, User: user, Msg: msg})
	return nil
}

func (c *chat) lastPost(t testing.TB) posted {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.posts) == 0 {
		t.Fatal("nothing was posted")
	}
	return c.posts[len(c.posts)-1]
}

func (c *chat) message(id string) bot.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[id]
}

func (c *chat) lastWhisper(t testing.TB) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.whispers) == 0 {
		t.Fatal("no private reply")
	}
	return c.whispers[len(c.whispers)-1].Msg.PlainText()
}

func (c *chat) count() (posts, whispers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.posts), len(c.whispers)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a core wired to the sandbox tenant, a real bbolt file and a chat.
type env struct {
	t     testing.TB
	sb    *sandbox.Server
	st    *store.Store
	core  *handlers.Core
	chat  *chat
	clock *clock
	ctx   context.Context
	cl    *tenant.Client
}

var (
	alice = bot.User{ID: "alice", Name: "Alice"}
	bob   = bot.User{ID: "bob", Name: "Bob"}
	carol = bot.User{ID: "carol", Name: "Carol"}
	room  = bot.Conversation{Platform: bot.Web, ID: "console"}
)

type envOption func(*handlers.Config, *handlers.TenantConfig)

// newEnv is an env on the default scenario: a delegated tool blocked by
// Security defaults today; the plan turns them off for the window.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvFull(t, sandbox.DefaultScenario, sandbox.Options{}, false, opts...)
}

// newEnvOn is an env on the named sandbox scenario, its tool described to
// the core as the scenario describes it, and every clock at the scenario's
// date. The core's clock is the test's to move; the sandbox and the Graph
// client run in real time from the same start (moving them with the core's
// clock would expire their tokens under MSAL's cache).
func newEnvOn(t testing.TB, scenario string, opts ...envOption) *env {
	t.Helper()
	return newEnvFull(t, scenario, sandbox.Options{}, false, opts...)
}

// newEnvWith is newEnv on a sandbox started with sbOpts. With shareClock the
// sandbox and the Graph client run on the test's clock (its sign-ins and
// propagation follow Advance), and its tokens live long enough for MSAL's
// cached one.
func newEnvWith(t testing.TB, sbOpts sandbox.Options, shareClock bool, opts ...envOption) *env {
	t.Helper()
	return newEnvFull(t, sandbox.DefaultScenario, sbOpts, shareClock, opts...)
}

func newEnvFull(t testing.TB, scenario string, sbOpts sandbox.Options, shareClock bool, opts ...envOption) *env {
	t.Helper()
	sc, ok := sandbox.FindScenario(scenario)
	if !ok {
		t.Fatalf("no scenario %q", scenario)
	}
	start := sc.Date
	if start.IsZero() {
		start = time.Now()
	}
	ck := &clock{t: start.UTC().Truncate(time.Second)}
	offset := time.Until(ck.t)
	tenantNow := func() time.Time { return time.Now().Add(offset) }
	if shareClock {
		tenantNow = ck.Now
		sbOpts.TokenLifetime = 1000 * time.Hour
	}
	sbOpts.Now = tenantNow
	sb, sc, err := sandbox.StartScenario(scenario, sbOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	sb.SetCAThrottle(false)
	cl, err := tenant.New(tenant.Config{
		TenantID: sandbox.DefaultTenantID, ClientID: sandbox.DefaultClientID, ClientSecret: sandbox.DefaultClientSecret,
		GraphURL: sb.URL(), AuthorityURL: sb.URL(), HTTPClient: sb.Client(), MaxRetries: 1, Now: tenantNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "c2bot.db"), store.Options{Now: ck.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ch := newChat()
	tc := handlers.TenantConfig{Name: "sandbox", Client: cl, Approvers: []string{"web:bob", "web:carol"}, ToolAccount: sandbox.DefaultToolAccount,
		Product: sc.Product, Version: sc.Version, ToolAppID: sc.ToolAppID}
	cfg := handlers.Config{Senders: []bot.Sender{ch}, Store: st, Now: ck.Now, RetryBase: time.Minute, RetryMax: 10 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if _, bench := t.(*testing.B); bench {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts {
		o(&cfg, &tc)
	}
	cfg.Tenants = append([]handlers.TenantConfig{tc}, cfg.Tenants...)
	core, err := handlers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, sb: sb, st: st, core: core, chat: ch, clock: ck, ctx: ctx, cl: cl}
}

// say runs a typed command.
func (e *env) say(u bot.User, text string) {
	e.t.Helper()
	e.core.Handle(e.ctx, bot.Command{User: u, Conv: room, Text: text})
}

// click runs a button of a posted message.
func (e *env) click(u bot.User, ref bot.MessageRef, label string) {
	e.t.Helper()
	msg := e.chat.message(ref.ID)
	for _, b := range msg.Buttons {
		if b.Label == label {
			e.core.Handle(e.ctx, bot.Command{User: u, Conv: room, Text: b.Command, Origin: &ref})
			return
		}
	}
	e.t.Fatalf("message %s has no %q button: %s", ref.ID, label, msg.PlainText())
}

// flush delivers the outbox.
func (e *env) flush() {
	e.t.Helper()
	if err := e.core.Flush(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// due runs the scheduler once.
func (e *env) due() {
	e.t.Helper()
	if err := e.core.RunDue(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.flush()
}

func (e *env) request(id string) store.Request {
	e.t.Helper()
	r, err := e.st.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// requestFix asks for the fix as alice and returns the card.
func (e *env) requestFix(extra string) posted {
	e.t.Helper()
	e.say(alice, strings.TrimSpace("fix "+extra))
	card := e.chat.lastPost(e.t)
	if !strings.HasPrefix(card.Msg.Title, "Approval needed") {
		e.t.Fatalf("expected an approval card, got: %s", card.Msg.PlainText())
	}
	return card
}

// writes counts PATCH requests to a Graph path.
func (e *env) writes(prefix string) int {
	n := 0
	for _, r := range e.sb.Requests() {
		if r.Method == "PATCH" && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

const (
	pathSD = "/policies/identitySecurityDefaultsEnforcementPolicy"
	pathSP = "/admin/sharepoint/settings"
)

// blocked and opened: the default tenant before and during its fix
// (Security defaults on, then off; SharePoint is not part of that plan).
func blocked(st sandbox.State) bool { return st.SecurityDefaults && !st.LegacyAuth }
func opened(st sandbox.State) bool  { return !st.SecurityDefaults && !st.LegacyAuth }

// blocked2025 and opened2025: the vendor's tenant in 2025 (vendor-2025) before and during
// its two-item fix (Security defaults off, SharePoint legacy auth on; the
// invited-account match is never touched).
func blocked2025(st sandbox.State) bool {
	return st.SecurityDefaults && !st.LegacyAuth && st.InvitedMatch
}
func opened2025(st sandbox.State) bool {
	return !st.SecurityDefaults && st.LegacyAuth && st.InvitedMatch
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// outboxLen is how many notices wait in the outbox, whenever they are due.
func (e *env) outboxLen() int {
	e.t.Helper()
	items, err := e.st.OutboxReady(e.ctx, e.clock.Now().Add(1000*time.Hour), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(items)
}
