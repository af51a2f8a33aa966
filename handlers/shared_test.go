package handlers_test

import (
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/bot"
	"github.com/c2bot/c2bot/handlers"
	"github.com/c2bot/c2bot/store"
)

// sharedStore is the bbolt store presented as one that several replicas
// share (store.Shared), to run two cores on it in one process.
type sharedStore struct {
	*store.Store
	wakes chan store.Wake
}

func (s sharedStore) Wakes() <-chan store.Wake { return s.wakes }

// twoReplicas wires a core on a shared store and a second core on the same
// store, tenants and chat: two replicas.
func twoReplicas(t *testing.T) (*env, *handlers.Core) {
	t.Helper()
	var cfg *handlers.Config
	e := newEnv(t, func(c *handlers.Config, _ *handlers.TenantConfig) {
		c.Store = sharedStore{Store: c.Store.(*store.Store), wakes: make(chan store.Wake)}
		cfg = c
	})
	other, err := handlers.New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, other
}

// TestSharedStoreTakesOverAnInterruptedApplyOnce: an apply whose replica died
// (its lease ran out) is rolled back by one replica only, even when both
// schedulers find it due at once.
func TestSharedStoreTakesOverAnInterruptedApplyOnce(t *testing.T) {
	e, other := twoReplicas(t)
	card := e.requestFix("")
	e.click(bob, card.Ref, "Approve")
	// The replica applying r-1 died: its state is applying and its lease ended.
	if _, err := e.st.Transition(e.ctx, "r-1", []store.State{store.Applied}, func(r *store.Request, _ *store.Changes) error {
		r.State = store.Applying
		r.DueAt = e.clock.Now().Add(-time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Recover on a shared store takes nothing over: the lease says who owns it.
	if err := other.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.request("r-1"); r.State != store.Applying {
		t.Fatalf("Recover on a shared store touched r-1: %s", r.State)
	}
	// The first replica's rollback is held at its first restoring PATCH
	// while the second replica's scheduler runs.
	held, release := e.sb.Hold("PATCH", "")
	before := len(e.sb.Requests())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.core.RunDue(e.ctx); err != nil {
			t.Error(err)
		}
	})
	<-held
	during := len(e.sb.Requests())
	if err := other.RunDue(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sb.Requests()); n != during {
		t.Errorf("the second replica sent %d Graph requests for a rollback the first one had claimed", n-during)
	}
	release()
	wg.Wait()
	if during == before {
		t.Fatal("the first replica sent nothing before the held PATCH")
	}
	if r := e.request("r-1"); r.State != store.Failed {
		t.Fatalf("state = %s, want failed (rolled back)", r.State)
	}
	ev, err := e.st.Audit(e.ctx, 0, "r-1")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ev {
		if x.Action == "taken_over" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d taken_over events, want 1", n)
	}
	if !blocked(e.sb.State()) {
		t.Fatalf("not rolled back: %+v", e.sb.State())
	}
}

// TestSharedStoreRedeliveryOnAnotherReplicaRunsOnce: a Teams retry (the
// same activity id) that reaches a second replica is dropped there.
func TestSharedStoreRedeliveryOnAnotherReplicaRunsOnce(t *testing.T) {
	e, other := twoReplicas(t)
	cmd := bot.Command{ID: "activity-1", User: alice, Conv: room, Text: "fix --for 1h"}
	var wg sync.WaitGroup
	wg.Go(func() { e.core.Handle(e.ctx, cmd) })
	wg.Go(func() { other.Handle(e.ctx, cmd) })
	wg.Wait()
	if rs, err := e.st.List(e.ctx, 0); err != nil || len(rs) != 1 {
		t.Fatalf("%d requests from one delivery on two replicas (%v), want 1", len(rs), err)
	}
}
