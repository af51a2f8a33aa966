// Package handlers is c2bot's core: the command router and the use cases
// (diagnose, request, approve and deny, apply, revert, status, extend), the
// request state machine, the revert scheduler (which also follows an applied
// change: sign-in checks, checkpoints, the reminder) and the notification
// outbox worker. It speaks bot types to the chat adapters and uses the tenant and
// store packages through the small interfaces declared here.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// Tenant is what the core needs from one Microsoft 365 tenant
// (implemented by *tenant.Client).
type Tenant interface {
	Diagnose(ctx context.Context, t tenant.Target) (tenant.Report, error)
	SignIns(ctx context.Context, account string, since time.Time) (tenant.SignInSummary, error)
	Snapshot(ctx context.Context, it tenant.Item) (tenant.Item, error)
	Apply(ctx context.Context, it tenant.Item) error
	Verify(ctx context.Context, it tenant.Item) error
	Restore(ctx context.Context, it tenant.Item) (tenant.RestoreResult, error)
}

// Store is what the core needs from the database (implemented by every
// store.Backend: the bbolt file and PostgreSQL). A store that also
// implements store.Shared is used by several replicas at once.
type Store interface {
	Create(ctx context.Context, r store.Request, ch store.Changes) (store.Request, error)
	Get(ctx context.Context, id string) (store.Request, error)
	Transition(ctx context.Context, id string, from []store.State, fn func(r *store.Request, ch *store.Changes) error) (store.Request, error)
	TransitionPair(ctx context.Context, id string, from []store.State, other string, otherFrom []store.State,
		fn func(r, o *store.Request, ch *store.Changes) error) (store.Request, store.Request, error)
	List(ctx context.Context, limit int, states ...store.State) ([]store.Request, error)
	Due(ctx context.Context, now time.Time) ([]store.Request, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
	Audit(ctx context.Context, limit int, requestID string) ([]store.Event, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.Event, error)
	AppendAudit(ctx context.Context, events ...store.Event) error
	Enqueue(ctx context.Context, items ...store.OutboxItem) error
	OutboxReady(ctx context.Context, now time.Time, limit int) ([]store.OutboxItem, error)
	OutboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.OutboxItem, error)
	OutboxNext(ctx context.Context) (time.Time, bool, error)
	OutboxDone(ctx context.Context, id uint64) error
	OutboxRetry(ctx context.Context, id uint64, next time.Time, lastErr string) error
	OutboxTry(ctx context.Context, id uint64, at time.Time) error
	PutConversation(ctx context.Context, key string, ref json.RawMessage) error
	FirstSeen(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

// TenantConfig binds one tenant to its people and channels.
type TenantConfig struct {
	// Name is how commands refer to the tenant ("contoso").
	Name string
	// Client reads and changes the tenant.
	Client Tenant
	// Approvers are the platform-qualified user ids allowed to approve
	// changes here ("slack:U024BE7LH", "teams:<Entra object id>", "web:bob");
	// QualifyUsers turns the configuration's ids into this form.
	Approvers []string
	// AllowSelfApproval lets a requester approve their own request.
	AllowSelfApproval bool
	// Channels are platform-qualified conversation keys ("slack:C0123",
	// "teams:19:…", "web:console"; see QualifyChannels) bound to this tenant: commands there need no tenant
	// name, and commands are accepted only from bound channels. A tenant
	// with no channels accepts commands that name it from any channel.
	Channels []string
	// ToolAccount is the user principal name the backup or migration tool
	// signs in with; Product and Version describe the tool (optional).
	ToolAccount string
	Product     string
	Version     string
	// ToolAuth is how the tool signs in: "legacy", "delegated" or "app";
	// empty means the tenant infers it from the tool's sign-ins. ToolAppID
	// is the tool's own application id (ToolAuth "app").
	ToolAuth  string
	ToolAppID string
	// ApprovalsRequired is how many distinct approvers must approve a
	// change (and an extension); zero means 1. The requester never counts
	// when more than one is required.
	ApprovalsRequired int
	// RequireReason makes --reason mandatory for fix and extend.
	RequireReason bool
	// RemindBefore is how long before the revert the thread is reminded,
	// with Extend and Revert now buttons; zero means no reminder.
	RemindBefore time.Duration
}

// MaxReason bounds a request's reason, in characters.
const MaxReason = 500

// DefaultCheckpoints are when c2bot says a change has not taken effect yet,
// counted from the apply (Microsoft: up to 24 hours).
var DefaultCheckpoints = []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour}

// Config configures the core. New fills the zero durations with the
// defaults of DESIGN.md.
type Config struct {
	Tenants []TenantConfig
	// People groups each person's qualified ids across platforms, so that
	// self-approval is refused whichever platform they approve from.
	People  []Person
	Senders []bot.Sender
	Store   Store
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	DefaultDuration time.Duration // 8h
	MinDuration     time.Duration // 1m
	MaxDuration     time.Duration // 72h
	ApprovalTTL     time.Duration // 1h
	// RetryBase and RetryMax bound the backoff of failed reverts and
	// deliveries; defaults 30s and 15m.
	RetryBase time.Duration
	RetryMax  time.Duration
	// ApplyLease is how long a request may stay "applying" before the
	// scheduler treats the apply as interrupted and rolls it back; default 10m.
	ApplyLease time.Duration
	// WatchInterval is the wait before the first read of the tool's
	// sign-ins after a change, doubling after each read up to
	// WatchMaxInterval; defaults 5m and 1h.
	WatchInterval    time.Duration
	WatchMaxInterval time.Duration
	// Checkpoints are offsets from the apply at which c2bot says the change
	// has not taken effect yet (only those inside the window); nil means
	// DefaultCheckpoints.
	Checkpoints []time.Duration
	// OnEvent, when set, is called with every audit action (metrics).
	OnEvent func(action string)
	// Metrics receives command, revert and delivery metrics; nil means none.
	Metrics Metrics
	// UserRate and TenantRate limit diagnose and fix (the commands that
	// read the tenant through Graph) per person and per tenant, so a flood
	// cannot spend the tenant's Graph throttling budget and push applies
	// past their lease. Zero values take the defaults (DefaultUserRate,
	// DefaultTenantRate); a negative Events turns that limit off.
	UserRate   Rate
	TenantRate Rate
}

// Core runs commands and the scheduled work. Create it with New, then call
// Run once; Handle may be called concurrently.
type Core struct {
	// shared is the store when several replicas use it (store.Shared),
	// nil for a store one process owns.
	shared   store.Shared
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	tenants  map[string]*TenantConfig
	people   map[string]int // qualified user id → index in Config.People
	limits   *limiters
	order    []string
	byConv   map[string]string
	senders  map[string]bot.Sender
	commands map[string]command

	metrics Metrics

	wakeSched  chan struct{}
	wakeOutbox chan struct{}
	running    sync.Mutex // one scheduler pass at a time
	flushing   sync.Mutex // one outbox pass at a time
}

// command is one entry of the router table.
type command struct {
	verb    string
	usage   string
	summary string
	run     func(c *Core, ctx context.Context, cmd bot.Command, a args) error
}

// New validates cfg and builds the core. It fails on an empty tenant list,
// duplicate tenant names or channel bindings, a missing store or sender, bad
// duration bounds, or a duplicate command verb.
func New(cfg Config) (*Core, error) {
	if cfg.Store == nil {
		return nil, errors.New("handlers: no store")
	}
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("handlers: no tenant configured")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DefaultDuration, 8*time.Hour)
	def(&cfg.MinDuration, time.Minute)
	def(&cfg.MaxDuration, 72*time.Hour)
	def(&cfg.ApprovalTTL, time.Hour)
	def(&cfg.RetryBase, 30*time.Second)
	def(&cfg.RetryMax, 15*time.Minute)
	def(&cfg.ApplyLease, 10*time.Minute)
	def(&cfg.WatchInterval, 5*time.Minute)
	def(&cfg.WatchMaxInterval, time.Hour)
	if cfg.WatchMaxInterval < cfg.WatchInterval {
		cfg.WatchMaxInterval = cfg.WatchInterval
	}
	if cfg.Checkpoints == nil {
		cfg.Checkpoints = DefaultCheckpoints
	}
	cfg.Checkpoints = slices.Clone(cfg.Checkpoints)
	slices.Sort(cfg.Checkpoints)
	for _, cp := range cfg.Checkpoints {
		if cp <= 0 {
			return nil, fmt.Errorf("handlers: checkpoint %s is not after the change", cp)
		}
	}
	if cfg.MinDuration > cfg.MaxDuration {
		return nil, fmt.Errorf("handlers: minimum duration %s exceeds maximum %s", cfg.MinDuration, cfg.MaxDuration)
	}
	if cfg.DefaultDuration < cfg.MinDuration || cfg.DefaultDuration > cfg.MaxDuration {
		return nil, fmt.Errorf("handlers: default duration %s is outside %s–%s", cfg.DefaultDuration, cfg.MinDuration, cfg.MaxDuration)
	}
	shared, _ := cfg.Store.(store.Shared) // before the wrapper hides it
	cfg.Store = auditLogger{Store: cfg.Store, log: cfg.Logger, now: cfg.Now}
	c := &Core{
		cfg:        cfg,
		shared:     shared,
		log:        cfg.Logger,
		now:        cfg.Now,
		metrics:    cfg.Metrics,
		tenants:    map[string]*TenantConfig{},
		byConv:     map[string]string{},
		senders:    map[string]bot.Sender{},
		wakeSched:  make(chan struct{}, 1),
		wakeOutbox: make(chan struct{}, 1),
	}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		name := strings.ToLower(strings.TrimSpace(t.Name))
		if name == "" || strings.ContainsAny(name, " \t") || strings.HasPrefix(name, "-") {
			return nil, fmt.Errorf("handlers: tenant name %q is not a single word", t.Name)
		}
		if t.Client == nil {
			return nil, fmt.Errorf("handlers: tenant %s has no client", name)
		}
		if _, dup := c.tenants[name]; dup {
			return nil, fmt.Errorf("handlers: tenant %s is configured twice", name)
		}
		if t.ApprovalsRequired < 0 {
			return nil, fmt.Errorf("handlers: tenant %s: approvals required is negative", name)
		}
		if t.ApprovalsRequired == 0 {
			t.ApprovalsRequired = 1
		}
		if t.ApprovalsRequired > 1 && t.ApprovalsRequired > len(t.Approvers) {
			return nil, fmt.Errorf("handlers: tenant %s needs %d approvals but has %d approver(s): no change could ever be approved",
				name, t.ApprovalsRequired, len(t.Approvers))
		}
		if t.RemindBefore < 0 {
			return nil, fmt.Errorf("handlers: tenant %s: remind before is negative", name)
		}
		t.Name = name
		if err := checkQualified("tenant "+name+" approvers", t.Approvers); err != nil {
			return nil, err
		}
		if err := checkQualified("tenant "+name+" channels", t.Channels); err != nil {
			return nil, err
		}
		for i, id := range t.Approvers {
			t.Approvers[i] = canonical(id)
		}
		c.tenants[name] = t
		c.order = append(c.order, name)
		for _, ch := range t.Channels {
			if other, dup := c.byConv[ch]; dup {
				return nil, fmt.Errorf("handlers: channel %s is bound to both %s and %s", ch, other, name)
			}
			c.byConv[ch] = name
		}
	}
	for _, s := range cfg.Senders {
		if s == nil {
			continue
		}
		if _, dup := c.senders[s.Platform()]; dup {
			return nil, fmt.Errorf("handlers: two senders for %s", s.Platform())
		}
		c.senders[s.Platform()] = s
	}
	if len(c.senders) == 0 {
		return nil, errors.New("handlers: no chat sender configured")
	}
	var err error
	if c.people, err = indexPeople(cfg.People); err != nil {
		return nil, err
	}
	if c.limits, err = newLimiters(cfg.UserRate, cfg.TenantRate); err != nil {
		return nil, err
	}
	cmds, err := buildCommands(commandTable())
	if err != nil {
		return nil, err
	}
	c.commands = cmds
	return c, nil
}

// buildCommands indexes the table by verb; a duplicate verb is an error.
func buildCommands(table []command) (map[string]command, error) {
	m := make(map[string]command, len(table))
	for _, cmd := range table {
		if _, dup := m[cmd.verb]; dup {
			return nil, fmt.Errorf("handlers: command %q registered twice", cmd.verb)
		}
		m[cmd.verb] = cmd
	}
	return m, nil
}

// verbs returns the registered verbs in table order.
func (c *Core) verbs() []command {
	out := make([]command, 0, len(c.commands))
	for _, cmd := range commandTable() {
		out = append(out, c.commands[cmd.verb])
	}
	return out
}

// tenantNames returns the configured tenant names, sorted.
func (c *Core) tenantNames() []string {
	names := append([]string(nil), c.order...)
	sort.Strings(names)
	return names
}

// Handle runs one command and replies through the platform's sender. It
// implements bot.Handler.
func (c *Core) Handle(ctx context.Context, cmd bot.Command) {
	ctx = withLog(ctx, "platform", cmd.Conv.Platform)
	log := c.log.With("platform", cmd.Conv.Platform, "conversation", cmd.Conv.ID, "user", cmd.User.ID)
	if _, ok := c.senders[cmd.Conv.Platform]; !ok || cmd.User.ID == "" || len(cmd.User.ID) > maxIDLen || len(cmd.Conv.ID) > maxIDLen {
		// Identities are qualified by the adapter's platform: a command
		// without one (or without a sane user) cannot be attributed to anyone.
		log.ErrorContext(ctx, "command from an unknown platform or without a valid user dropped")
		return
	}
	if cmd.ID != "" {
		first, err := c.cfg.Store.FirstSeen(ctx, cmd.Conv.Platform+":"+cmd.ID, 24*time.Hour)
		if err != nil {
			log.ErrorContext(ctx, "delivery check failed", "err", err)
			c.replyError(ctx, cmd, err) // a lost database says "try again"
			return
		}
		if !first {
			log.InfoContext(ctx, "duplicate delivery ignored", "delivery", cmd.ID)
			c.metrics.Command("other", OutcomeDuplicate)
			return
		}
	}
	if len(cmd.Conv.Ref) > 0 {
		if err := c.cfg.Store.PutConversation(ctx, cmd.Conv.Key(), cmd.Conv.Ref); err != nil {
			log.WarnContext(ctx, "conversation reference not saved", "err", err)
		}
	}
	if err := checkCommandLen(cmd.Text); err != nil {
		c.replyError(ctx, cmd, userErrorf("I did not run that: %v.", err))
		return
	}
	a, err := parseArgs(cmd.Text)
	if err != nil {
		c.metrics.Command("other", OutcomeRefused)
		c.replyError(ctx, cmd, userErrorf("I could not read that command: %v. Try “help”.", err))
		return
	}
	if err := a.checkBounds(); err != nil {
		c.replyError(ctx, cmd, userErrorf("I did not run that: %v.", err))
		return
	}
	if a.verb == "" {
		a.verb = "help"
	}
	entry, ok := c.commands[a.verb]
	if !ok {
		c.metrics.Command("other", OutcomeRefused)
		c.replyError(ctx, cmd, userErrorf("Unknown command %q. Try “help”.", a.verb))
		return
	}
	log.InfoContext(ctx, "command", "verb", a.verb)
	if err := entry.run(c, ctx, cmd, a); err != nil {
		var ue *userError
		if !errors.As(err, &ue) {
			log.ErrorContext(ctx, "command failed", "verb", a.verb, "err", err)
			c.metrics.Command(a.verb, OutcomeError)
		} else {
			c.metrics.Command(a.verb, OutcomeRefused)
		}
		c.replyError(ctx, cmd, err)
		return
	}
	c.metrics.Command(a.verb, OutcomeOK)
}

// sender returns the sender for a platform.
func (c *Core) sender(platform string) (bot.Sender, error) {
	s, ok := c.senders[platform]
	if !ok {
		return nil, fmt.Errorf("no sender for platform %q: %w", platform, bot.ErrUndeliverable)
	}
	return s, nil
}

// reply posts msg in the command's conversation (in its thread, if any).
func (c *Core) reply(ctx context.Context, cmd bot.Command, msg bot.Message) (bot.MessageRef, error) {
	s, err := c.sender(cmd.Conv.Platform)
	if err != nil {
		return bot.MessageRef{}, err
	}
	ref, err := s.Post(ctx, cmd.Conv, msg)
	if err != nil {
		c.log.ErrorContext(ctx, "reply not delivered", "platform", cmd.Conv.Platform, "err", err)
	}
	return ref, err
}

// whisper shows msg to the command's user only, where the platform allows.
func (c *Core) whisper(ctx context.Context, cmd bot.Command, msg bot.Message) {
	s, err := c.sender(cmd.Conv.Platform)
	if err != nil {
		c.log.ErrorContext(ctx, "reply not delivered", "err", err)
		return
	}
	if es, ok := s.(bot.EphemeralSender); ok {
		if err := es.PostEphemeral(ctx, cmd.Conv, cmd.User, msg); err != nil {
			c.log.ErrorContext(ctx, "ephemeral reply not delivered", "err", err)
		}
		return
	}
	if _, err := s.Post(ctx, cmd.Conv, msg); err != nil {
		c.log.ErrorContext(ctx, "reply not delivered", "err", err)
	}
}

// replyError tells the user what went wrong, privately where possible.
func (c *Core) replyError(ctx context.Context, cmd bot.Command, err error) {
	c.whisper(ctx, cmd, bot.Message{Text: ErrorMessage(err)})
}

// event records an audit action for metrics.
func (c *Core) observe(action string) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(action)
	}
	c.metrics.Event(action)
}

// wake nudges the scheduler and the outbox worker.
func (c *Core) wake() {
	select {
	case c.wakeSched <- struct{}{}:
	default:
	}
	c.wakeDelivery()
}

func (c *Core) wakeDelivery() {
	select {
	case c.wakeOutbox <- struct{}{}:
	default:
	}
}
