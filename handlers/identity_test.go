package handlers_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
)

// platformChat is the recording chat on another platform.
type platformChat struct {
	*chat
	platform string
}

func (p platformChat) Platform() string { return p.platform }

// withPlatforms adds Slack and Teams senders; the returned chats record them.
func withPlatforms(slack, teams **chat) envOption {
	return func(cfg *handlers.Config, _ *handlers.TenantConfig) {
		*slack, *teams = newChat(), newChat()
		cfg.Senders = append(cfg.Senders, platformChat{*slack, bot.Slack}, platformChat{*teams, bot.Teams})
	}
}

var (
	slackRoom = bot.Conversation{Platform: bot.Slack, ID: "C1"}
	teamsRoom = bot.Conversation{Platform: bot.Teams, ID: "19:c1@thread.tacv2"}
)

func (e *env) sayIn(conv bot.Conversation, u bot.User, text string) {
	e.t.Helper()
	e.core.Handle(e.ctx, bot.Command{User: u, Conv: conv, Text: text})
}

func lastWhisperOf(t *testing.T, c *chat) string {
	t.Helper()
	return c.lastWhisper(t)
}

// Issue 8 item 2: an id on one platform never matches the same string on
// another. The Slack approver U1 can approve; a console or Teams user whose
// id is also "U1" cannot.
func TestIdsArePlatformQualified(t *testing.T) {
	var sl, tm *chat
	e := newEnv(t, withPlatforms(&sl, &tm), func(_ *handlers.Config, tc *handlers.TenantConfig) {
		tc.Approvers = []string{"slack:U1"}
	})
	e.requestFix("")
	impostor := bot.User{ID: "U1", Name: "Not the approver"}
	e.say(impostor, "approve r-1")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "web:U1") || !strings.Contains(w, "not an approver") {
		t.Fatalf("console reply = %q", w)
	}
	e.sayIn(teamsRoom, impostor, "approve r-1")
	if w := lastWhisperOf(t, tm); !strings.Contains(w, "not an approver") {
		t.Fatalf("teams reply = %q", w)
	}
	if e.request("r-1").State != store.Pending || e.writes("") != 0 {
		t.Fatal("an id of another platform approved")
	}
	e.sayIn(slackRoom, bot.User{ID: "U1"}, "approve r-1")
	e.flush()
	if r := e.request("r-1"); r.State != store.Applied || r.Approver.ID != "slack:U1" || r.Requester.ID != "web:alice" {
		t.Fatalf("request = %s by %s for %s", r.State, r.Approver.ID, r.Requester.ID)
	}
	// A command whose platform has no adapter is attributed to nobody and dropped.
	e.sayIn(bot.Conversation{Platform: "irc", ID: "x"}, bot.User{ID: "U1"}, "revert r-1")
	if e.request("r-1").State != store.Applied {
		t.Fatal("a command from an unknown platform ran")
	}
}

// Issue 8 item 2: people groups one person's ids, so Alice asking in Slack
// and approving in Teams is self-approval; she may still cancel her request
// from Teams.
func TestSelfApprovalIsCaughtAcrossPlatforms(t *testing.T) {
	aliceSlack := bot.User{ID: "UA", Name: "Alice"}
	aliceTeams := bot.User{ID: "AAD-A", Name: "Alice"} // object ids compare case-insensitively
	for _, grouped := range []bool{true, false} {
		t.Run(map[bool]string{true: "grouped", false: "not grouped"}[grouped], func(t *testing.T) {
			var sl, tm *chat
			e := newEnv(t, withPlatforms(&sl, &tm), func(cfg *handlers.Config, tc *handlers.TenantConfig) {
				tc.Approvers = []string{"teams:aad-a", "web:bob"}
				if grouped {
					cfg.People = []handlers.Person{{Name: "alice", IDs: []string{"slack:UA", "teams:aad-a", "web:alice"}}}
				}
			})
			e.sayIn(slackRoom, aliceSlack, "fix")
			if e.request("r-1").Requester.ID != "slack:UA" {
				t.Fatalf("requester = %s", e.request("r-1").Requester.ID)
			}
			e.sayIn(teamsRoom, aliceTeams, "approve r-1")
			if !grouped {
				if e.request("r-1").State != store.Applied {
					t.Fatal("without people the Teams approver is someone else and may approve")
				}
				return
			}
			if w := lastWhisperOf(t, tm); !strings.Contains(w, "asked for r-1 yourself") {
				t.Fatalf("reply = %q", w)
			}
			if e.request("r-1").State != store.Pending || e.writes("") != 0 {
				t.Fatal("self-approval across platforms was accepted")
			}
			e.sayIn(teamsRoom, aliceTeams, "cancel r-1")
			if e.request("r-1").State != store.Cancelled {
				t.Fatalf("the requester could not cancel from her other platform: %s", e.request("r-1").State)
			}
		})
	}
}

// Issue 8 item 2: requests stored before ids were qualified hold bare ids;
// they are read as ids of the platform the request was made on, so the
// requester still cannot approve their own request after the upgrade.
func TestBareStoredIdsAreReadOnTheirPlatform(t *testing.T) {
	e := newEnv(t)
	items, _ := json.Marshal([]map[string]string{})
	conv, _ := json.Marshal(room)
	now := e.clock.Now()
	if _, err := e.st.Create(e.ctx, store.Request{Tenant: "sandbox", State: store.Pending, Requester: store.Person{ID: "bob", Name: "Bob"},
		Duration: time.Hour, CreatedAt: now, ExpiresAt: now.Add(time.Hour), DueAt: now.Add(time.Hour), Items: items, Conv: conv},
		store.Changes{}); err != nil {
		t.Fatal(err)
	}
	e.say(bob, "approve r-1")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "yourself") {
		t.Fatalf("reply = %q", w)
	}
	e.say(bob, "cancel r-1")
	if e.request("r-1").State != store.Cancelled {
		t.Fatal("the requester of an old request could not cancel it")
	}
}

// Issue 8: "commands are accepted only from configured channels" holds with
// qualified channel ids: a Teams conversation whose id equals the bound
// Slack channel's id is not that channel.
func TestChannelRuleUsesQualifiedIds(t *testing.T) {
	var sl, tm *chat
	e := newEnv(t, withPlatforms(&sl, &tm), func(_ *handlers.Config, tc *handlers.TenantConfig) {
		tc.Channels = []string{"slack:C1"}
	})
	e.sayIn(bot.Conversation{Platform: bot.Teams, ID: "C1"}, alice, "diagnose")
	if w := lastWhisperOf(t, tm); !strings.Contains(w, "does not take commands in this channel") {
		t.Fatalf("teams reply = %q", w)
	}
	e.sayIn(bot.Conversation{Platform: bot.Web, ID: "C1"}, alice, "diagnose sandbox")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "only from its own channels") {
		t.Fatalf("console reply = %q", w)
	}
	if e.writes("") != 0 || len(e.sb.Requests()) != 0 {
		t.Fatal("a refused channel reached the tenant")
	}
	e.sayIn(slackRoom, alice, "diagnose")
	if !strings.Contains(sl.lastPost(t).Msg.Title, "Diagnosis for sandbox") {
		t.Fatal("the bound Slack channel was refused")
	}
}

// noStore and noTenant satisfy the interfaces for New, which calls neither.
type noStore struct{ handlers.Store }
type noTenant struct{ handlers.Tenant }

// New refuses ids that are not qualified: the core never guesses a platform.
func TestCoreRefusesUnqualifiedIds(t *testing.T) {
	for _, opt := range []envOption{
		func(_ *handlers.Config, tc *handlers.TenantConfig) { tc.Approvers = []string{"bob"} },
		func(_ *handlers.Config, tc *handlers.TenantConfig) { tc.Channels = []string{"C0123"} },
		func(cfg *handlers.Config, _ *handlers.TenantConfig) {
			cfg.People = []handlers.Person{{Name: "a", IDs: []string{"slack:U1"}}, {Name: "b", IDs: []string{"slack:U1"}}}
		},
	} {
		cfg := handlers.Config{Store: noStore{}, Senders: []bot.Sender{newChat()}}
		tc := handlers.TenantConfig{Name: "t", Client: noTenant{}}
		opt(&cfg, &tc)
		cfg.Tenants = []handlers.TenantConfig{tc}
		if _, err := handlers.New(cfg); err == nil {
			t.Fatalf("New accepted %+v / %+v", tc, cfg.People)
		}
	}
}

// Issue 8 item 9: audit shows only the tenants the channel may see. A
// channel bound to one tenant sees nothing of another; an unbound channel
// sees only tenants without channels of their own.
func TestAuditIsScopedToTheChannelsTenants(t *testing.T) {
	e := newEnv(t, func(cfg *handlers.Config, tc *handlers.TenantConfig) {
		tc.Channels = []string{"web:a"}
		other := *tc
		other.Name, other.Channels = "open", nil
		third := *tc
		third.Name, third.Channels = "third", []string{"web:c"}
		cfg.Tenants = append(cfg.Tenants, other, third)
	})
	chanA := bot.Conversation{Platform: bot.Web, ID: "a"}
	chanC := bot.Conversation{Platform: bot.Web, ID: "c"}
	e.sayIn(chanA, alice, "diagnose")
	e.say(alice, "diagnose open")
	audit := func(conv bot.Conversation) string {
		e.sayIn(conv, alice, "audit")
		return e.chat.lastPost(t).Msg.PlainText()
	}
	if s := audit(chanA); !strings.Contains(s, "sandbox") || strings.Contains(s, "open") {
		t.Fatalf("bound channel's audit:\n%s", s)
	}
	if s := audit(room); !strings.Contains(s, "open") || strings.Contains(s, "sandbox") {
		t.Fatalf("unbound channel's audit shows a bound tenant:\n%s", s)
	}
	if s := audit(chanC); strings.Contains(s, "sandbox") || strings.Contains(s, "open") {
		t.Fatalf("a channel bound to another tenant sees foreign events:\n%s", s)
	}
}

// Issue 8 item 11: every user-supplied field is bounded, with a clear reply,
// and nothing is stored or sent to the tenant.
func TestOversizedInputIsRefused(t *testing.T) {
	e := newEnv(t)
	card := e.requestFix("--for 2h")
	e.click(bob, card.Ref, "Approve")
	graph := len(e.sb.Requests())
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct{ text, reply string }{
		{`extend r-1 1h --reason "` + long(501) + `"`, "reason is too long (501 characters; 500 at most)"},
		{`fix --reason "` + long(501) + `"`, "reason is too long"},
		{"diagnose --account " + long(250) + "@contoso.com", "--account is too long"},
		{"diagnose " + long(65), "too long (65 characters; 64 at most)"},
		{"approve r-" + strings.Repeat("1", 70), "at most"},
		{"extend r-1 " + strings.Repeat("9", 40) + "h", "at most"},
		{"diagnose --version " + strings.Repeat("1.", 20), "--version is too long"},
		{"status " + strings.Repeat("x ", 30), "too many words"},
		{"audit " + long(2001), "command is too long"},
	}
	for _, tt := range tests {
		e.say(alice, tt.text)
		if w := e.chat.lastWhisper(t); !strings.Contains(w, tt.reply) {
			t.Errorf("%.40q…: reply = %q, want %q", tt.text, w, tt.reply)
		}
	}
	if got := len(e.sb.Requests()); got != graph {
		t.Fatalf("oversized input reached Graph (%d requests)", got-graph)
	}
	if open, _ := e.st.List(e.ctx, 0); len(open) != 1 {
		t.Fatalf("%d requests stored, want only r-1", len(open))
	}
	// Within the bound is fine.
	e.say(alice, `extend r-1 1h --reason "`+long(500)+`"`)
	if r, err := e.st.Get(e.ctx, "r-2"); err != nil || len([]rune(r.Reason)) != 500 {
		t.Fatalf("a 500-character reason was refused: %v", err)
	}
}

// Issue 8: diagnose, fix and signins are limited per person and per
// tenant, on the core's clock, before any Graph request is made.
func TestRateLimitDiagnoseAndFix(t *testing.T) {
	var sl, tm *chat
	e := newEnv(t, withPlatforms(&sl, &tm), func(cfg *handlers.Config, _ *handlers.TenantConfig) {
		cfg.UserRate = handlers.Rate{Events: 2, Per: 10 * time.Minute}
		cfg.TenantRate = handlers.Rate{Events: 4, Per: 10 * time.Minute}
		cfg.People = []handlers.Person{{Name: "alice", IDs: []string{"web:alice", "slack:UA"}}}
	})
	e.say(alice, "diagnose")
	e.say(alice, "signins")
	graph := len(e.sb.Requests())
	e.say(alice, "fix")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "too often (at most 2 per 10m per person)") || !strings.Contains(w, "again in") {
		t.Fatalf("reply = %q", w)
	}
	// The same person on another platform shares the allowance.
	e.sayIn(slackRoom, bot.User{ID: "UA"}, "diagnose")
	if w := lastWhisperOf(t, sl); !strings.Contains(w, "too often") {
		t.Fatalf("slack reply = %q", w)
	}
	if len(e.sb.Requests()) != graph {
		t.Fatal("a limited command reached Graph")
	}
	e.say(bob, "diagnose")
	e.say(carol, "diagnose")
	e.say(bot.User{ID: "dave"}, "diagnose")
	if w := e.chat.lastWhisper(t); !strings.Contains(w, "Tenant sandbox has had too many") {
		t.Fatalf("tenant limit reply = %q", w)
	}
	e.clock.Advance(10 * time.Minute)
	e.say(alice, "diagnose")
	if !strings.Contains(e.chat.lastPost(t).Msg.Title, "Diagnosis for sandbox") {
		t.Fatal("the allowance did not refill")
	}
	if _, err := handlers.ParseRate("ten"); err == nil {
		t.Fatal("ParseRate accepted nonsense")
	}
	if r, err := handlers.ParseRate("5/1h"); err != nil || r.Events != 5 || r.Per != time.Hour {
		t.Fatalf("ParseRate = %v %v", r, err)
	}
}

// Display names and ids come from the platform; they are bounded too.
func TestOversizedIdentityIsBounded(t *testing.T) {
	e := newEnv(t)
	e.say(bot.User{ID: "alice", Name: strings.Repeat("A", 5000)}, "fix")
	if r := e.request("r-1"); len([]rune(r.Requester.Name)) != 80 {
		t.Fatalf("stored name has %d characters", len([]rune(r.Requester.Name)))
	}
	e.say(bot.User{ID: strings.Repeat("x", 300)}, "cancel r-1")
	if e.request("r-1").State != store.Pending {
		t.Fatal("a command with an oversized user id ran")
	}
}
