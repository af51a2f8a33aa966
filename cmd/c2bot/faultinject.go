//go:build faultinject

// Crash points for the fault-injection tests (faults_e2e_test.go). This file
// is compiled only with `-tags faultinject`; a normal build has
// faultinject_off.go instead, which neither reads the variable below nor
// wraps anything.
//
// C2_FAULTINJECT_CRASH=point or point#n makes the process SIGKILL itself the
// nth time (default the first) it reaches point. The points are the steps
// of apply and revert that holding a request open in the sandbox cannot
// reach: see crashPoints. An unknown point stops start-up.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/tenant"
)

// faultEnv names the crash point.
const faultEnv = "C2_FAULTINJECT_CRASH"

// crashPoints are the points a faultinject build can crash at.
var crashPoints = map[string]string{
	"snapshot":                "a snapshot read of one plan item has returned",
	"apply":                   "the PATCH of one plan item has been answered",
	"verify":                  "the read-back of one plan item has returned",
	"restore":                 "one plan item has been restored (read, PATCH, read back)",
	"committed:applying":      "the snapshot and the revert deadline are committed",
	"committing:applied":      "inside the transaction that records the apply, before it commits",
	"committed:applied":       "the apply is committed",
	"committed:reverting":     "the start of a revert is committed",
	"committing:reverted":     "inside the transaction that records the revert, before it commits",
	"committed:reverted":      "the revert is committed, before its notices are delivered",
	"committed:revert_failed": "a failed revert attempt and its retry time are committed",
	"committing:failed":       "inside the transaction that records a rollback, before it commits",
	"notice:sending":          "the outbox is about to post the Reverted notice",
	"notice:sent":             "the chat platform accepted the Reverted notice, before the outbox marks it done",
}

// crasher kills the process at its point.
type crasher struct {
	point string
	nth   int

	mu   sync.Mutex
	seen map[string]int
}

// reached counts a pass through point and crashes on the chosen one.
func (c *crasher) reached(point string) {
	c.mu.Lock()
	c.seen[point]++
	n := c.seen[point]
	c.mu.Unlock()
	if point != c.point || n != c.nth {
		return
	}
	// Unbuffered, so the line is out before the signal.
	fmt.Fprintf(os.Stderr, "faultinject: crash at %s#%d\n", point, n)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// injectFaults wraps the tenants, the store and the senders with the crash
// point named by C2_FAULTINJECT_CRASH; without it, it changes nothing.
func injectFaults(tenants []handlers.TenantConfig, st handlers.Store, senders []bot.Sender, log *slog.Logger) ([]handlers.TenantConfig, handlers.Store, []bot.Sender, error) {
	spec := os.Getenv(faultEnv)
	if spec == "" {
		return tenants, st, senders, nil
	}
	point, nth := spec, 1
	if p, n, ok := strings.Cut(spec, "#"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return nil, nil, nil, fmt.Errorf("%s=%q: the count after # must be a positive number", faultEnv, spec)
		}
		point, nth = p, v
	}
	if _, ok := crashPoints[point]; !ok {
		known := make([]string, 0, len(crashPoints))
		for k := range crashPoints {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, nil, nil, fmt.Errorf("%s=%q: unknown crash point (known: %s)", faultEnv, spec, strings.Join(known, ", "))
	}
	c := &crasher{point: point, nth: nth, seen: map[string]int{}}
	log.Warn("fault-injection build: this process will SIGKILL itself", "point", point, "n", nth)
	out := make([]handlers.TenantConfig, len(tenants))
	for i, t := range tenants {
		t.Client = crashTenant{Tenant: t.Client, c: c}
		out[i] = t
	}
	wrapped := make([]bot.Sender, len(senders))
	for i, s := range senders {
		fs := crashSender{Sender: s, c: c}
		if es, ok := s.(bot.EphemeralSender); ok {
			wrapped[i] = crashEphemeralSender{crashSender: fs, eph: es}
		} else {
			wrapped[i] = fs
		}
	}
	return out, crashStore{Store: st, c: c}, wrapped, nil
}

// crashTenant passes the crash points of the plan items.
type crashTenant struct {
	handlers.Tenant
	c *crasher
}

func (t crashTenant) Snapshot(ctx context.Context, it tenant.Item) (tenant.Item, error) {
	out, err := t.Tenant.Snapshot(ctx, it)
	if err == nil {
		t.c.reached("snapshot")
	}
	return out, err
}

func (t crashTenant) Apply(ctx context.Context, it tenant.Item) error {
	err := t.Tenant.Apply(ctx, it)
	if err == nil {
		t.c.reached("apply")
	}
	return err
}

func (t crashTenant) Verify(ctx context.Context, it tenant.Item) error {
	err := t.Tenant.Verify(ctx, it)
	if err == nil {
		t.c.reached("verify")
	}
	return err
}

func (t crashTenant) Restore(ctx context.Context, it tenant.Item) (tenant.RestoreResult, error) {
	res, err := t.Tenant.Restore(ctx, it)
	if err == nil {
		t.c.reached("restore")
	}
	return res, err
}

// crashStore passes the crash points of the state transitions: inside the
// transaction (committing:<state>) and after it (committed:<state>), for a
// transition that changes the state.
type crashStore struct {
	handlers.Store
	c *crasher
}

func (s crashStore) Transition(ctx context.Context, id string, from []store.State, fn func(r *store.Request, ch *store.Changes) error) (store.Request, error) {
	var before store.State
	r, err := s.Store.Transition(ctx, id, from, func(r *store.Request, ch *store.Changes) error {
		before = r.State
		if err := fn(r, ch); err != nil {
			return err
		}
		if r.State != before {
			s.c.reached("committing:" + string(r.State))
		}
		return nil
	})
	if err == nil && r.State != before {
		s.c.reached("committed:" + string(r.State))
	}
	return r, err
}

// crashSender passes the crash points around the Reverted notice.
type crashSender struct {
	bot.Sender
	c *crasher
}

func (s crashSender) Post(ctx context.Context, conv bot.Conversation, msg bot.Message) (bot.MessageRef, error) {
	notice := strings.HasPrefix(msg.Title, "Reverted:") && conv.Thread != ""
	if notice {
		s.c.reached("notice:sending")
	}
	ref, err := s.Sender.Post(ctx, conv, msg)
	if notice && err == nil {
		s.c.reached("notice:sent")
	}
	return ref, err
}

// Find keeps the sender's look-up of earlier messages (Slack, the
// console); a sender without one cannot look.
func (s crashSender) Find(ctx context.Context, conv bot.Conversation, key string) (bot.MessageRef, bool, error) {
	if f, ok := s.Sender.(bot.Finder); ok {
		return f.Find(ctx, conv, key)
	}
	return bot.MessageRef{}, false, bot.ErrCannotLook
}

// crashEphemeralSender keeps the sender's ephemeral messages.
type crashEphemeralSender struct {
	crashSender
	eph bot.EphemeralSender
}

func (s crashEphemeralSender) PostEphemeral(ctx context.Context, conv bot.Conversation, user bot.User, msg bot.Message) error {
	return s.eph.PostEphemeral(ctx, conv, user, msg)
}
