// Package storetest is the conformance suite of the store contract
// (store.Backend): every backend runs it from its own tests with Run and
// must pass all of it, concurrent transitions from several goroutines and
// from several processes included. It uses only the contract, never a
// backend's insides.
package storetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2bot/c2bot/store"
)

// Factory makes and opens stores of one backend.
type Factory struct {
	// New returns the location of a fresh, empty store (a file path, a
	// database URL); the test that asked for it cleans it up.
	New func(t *testing.T) string
	// Open opens the store at location. The suite closes what it opens.
	Open func(t testing.TB, location string, opts store.Options) (store.Backend, error)
	// Exclusive says one process at a time holds the store (bbolt's file
	// lock): the processes of the multi-process test then take turns
	// instead of running at the same time.
	Exclusive bool
}

// Environment of a child process of the multi-process test.
const (
	childEnv    = "C2_STORETEST_CHILD"    // the store's location
	childNameEv = "C2_STORETEST_CHILD_ID" // the child's actor name
	childCount  = "C2_STORETEST_REQUESTS" // how many requests to race for
)

// Run runs the whole suite against the backend f makes.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"CreateGet", testCreateGet},
		{"CreateRejects", testCreateRejects},
		{"GetNotFound", testGetNotFound},
		{"Transition", testTransition},
		{"DueIndexFollowsTransitions", testDueIndex},
		{"List", testList},
		{"Audit", testAudit},
		{"Outbox", testOutbox},
		{"OutboxClaim", testOutboxClaim},
		{"OutboxTry", testOutboxTry},
		{"Conversation", testConversation},
		{"FirstSeen", testFirstSeen},
		{"CanceledContext", testCanceledContext},
		{"ReopenKeepsEverything", testReopen},
		{"ConcurrentTransitions", testConcurrentTransitions},
		{"ConcurrentClaims", testConcurrentClaims},
		{"MultiProcess", testMultiProcess},
		{"Import", testImport},
		{"TransitionPair", testTransitionPair},
		{"ListAudit", testListAudit},
		{"Stats", testStats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, f) })
	}
}

// Clock is a settable test clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at 2025-03-01 12:00 UTC.
func NewClock() *Clock { return &Clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t testing.TB, f Factory, loc string, clk *Clock) store.Backend {
	t.Helper()
	opts := store.Options{LockTimeout: time.Minute}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := f.Open(t, loc, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func fresh(t *testing.T, f Factory, clk *Clock) store.Backend {
	t.Helper()
	return open(t, f, f.New(t), clk)
}

func newReq(tenant string, st store.State) store.Request {
	return store.Request{Tenant: tenant, State: st, Requester: store.Person{ID: "U1", Name: "Ann"}}
}

func mustCreate(t testing.TB, s store.Backend, r store.Request, ch store.Changes) store.Request {
	t.Helper()
	got, err := s.Create(context.Background(), r, ch)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

// farFuture is after every time the tests use.
var farFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// dump is everything the contract can read back, to prove that a refused
// call changed nothing.
func dump(t *testing.T, s store.Backend) string {
	t.Helper()
	ctx := context.Background()
	reqs, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Audit(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	ob, err := s.OutboxReady(ctx, farFuture, 0)
	if err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(ctx, farFuture)
	if err != nil {
		t.Fatal(err)
	}
	next, ok, err := s.NextDue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Times are compared as instants: a backend may hand back another zone.
	norm := func(v any) any {
		b, _ := json.Marshal(v)
		var x any
		_ = json.Unmarshal(b, &x)
		return x
	}
	for i := range reqs {
		normTimes(&reqs[i])
	}
	for i := range due {
		normTimes(&due[i])
	}
	for i := range ev {
		ev[i].At = ev[i].At.UTC()
	}
	for i := range ob {
		ob[i].CreatedAt, ob[i].NextAttempt, ob[i].Tried = ob[i].CreatedAt.UTC(), ob[i].NextAttempt.UTC(), ob[i].Tried.UTC()
	}
	b, _ := json.Marshal(map[string]any{"requests": norm(reqs), "audit": norm(ev), "outbox": norm(ob),
		"due": norm(ids(due)), "next": fmt.Sprint(next.UTC(), ok)})
	return string(b)
}

func normTimes(r *store.Request) {
	for _, p := range []*time.Time{&r.CreatedAt, &r.ExpiresAt, &r.DecidedAt, &r.AppliedAt, &r.RevertAt, &r.RevertedAt, &r.DueAt} {
		*p = p.UTC()
	}
}

func ids(rs []store.Request) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func oids(items []store.OutboxItem) []uint64 {
	out := []uint64{}
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func testCreateGet(t *testing.T, f Factory) {
	clk := NewClock()
	s := fresh(t, f, clk)
	ctx := context.Background()

	in := newReq("contoso", store.Pending)
	in.ID = "ignored"
	in.Reason = "backup job"
	in.Duration = 8 * time.Hour
	in.ExpiresAt = clk.Now().Add(time.Hour)
	in.DueAt = in.ExpiresAt
	in.Items = json.RawMessage(`[{"field":"isEnabled","from":true,"to":false}]`)
	in.Conv = json.RawMessage(`{"platform":"slack","channel":"C1"}`)
	r1 := mustCreate(t, s, in, store.Changes{
		Audit:  []store.Event{{Actor: "U1", Action: "requested"}},
		Outbox: []store.OutboxItem{{Platform: "slack", Payload: json.RawMessage(`{"text":"hi"}`)}},
	})
	if r1.ID != "r-1" {
		t.Errorf("first id = %q, want r-1", r1.ID)
	}
	if !r1.CreatedAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt = %v, want clock %v", r1.CreatedAt, clk.Now())
	}
	r2 := mustCreate(t, s, newReq("fabrikam", store.Pending), store.Changes{})
	if r2.ID != "r-2" {
		t.Errorf("second id = %q, want r-2", r2.ID)
	}

	got, err := s.Get(ctx, "r-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != in.Reason || got.Duration != in.Duration || got.Tenant != "contoso" ||
		!got.DueAt.Equal(in.DueAt) || string(got.Items) != string(in.Items) || string(got.Conv) != string(in.Conv) ||
		got.Requester != in.Requester {
		t.Errorf("Get = %+v, want fields of %+v", got, in)
	}

	ev, err := s.Audit(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || ev[0].RequestID != "r-1" || ev[0].Tenant != "contoso" || ev[0].Seq != 1 ||
		!ev[0].At.Equal(clk.Now()) || ev[0].Action != "requested" {
		t.Errorf("audit = %+v", ev)
	}
	ob, err := s.OutboxReady(ctx, clk.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ob) != 1 || ob[0].ID != 1 || ob[0].RequestID != "r-1" || !ob[0].CreatedAt.Equal(clk.Now()) ||
		!ob[0].NextAttempt.Equal(clk.Now()) || string(ob[0].Payload) != `{"text":"hi"}` {
		t.Errorf("outbox = %+v", ob)
	}
	if due, _ := s.Due(ctx, in.DueAt); !reflect.DeepEqual(ids(due), []string{"r-1"}) {
		t.Errorf("Due = %v, want [r-1]", ids(due))
	}
}

func testCreateRejects(t *testing.T, f Factory) {
	tests := []struct {
		name string
		r    store.Request
		ch   store.Changes
		want string
	}{
		{"no state", newReq("contoso", ""), store.Changes{}, "no state"},
		{"no tenant", newReq("", store.Pending), store.Changes{}, "no tenant"},
		{"event without action", newReq("contoso", store.Pending), store.Changes{Audit: []store.Event{{Actor: "U1"}}}, "no action"},
		{"outbox without platform", newReq("contoso", store.Pending),
			store.Changes{Outbox: []store.OutboxItem{{Payload: json.RawMessage(`{}`)}}}, "no platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fresh(t, f, NewClock())
			before := dump(t, s)
			_, err := s.Create(context.Background(), tt.r, tt.ch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create err = %v, want %q", err, tt.want)
			}
			if after := dump(t, s); before != after {
				t.Errorf("a rejected Create wrote:\nbefore %v\nafter  %v", before, after)
			}
			if r := mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{}); r.ID != "r-1" {
				t.Errorf("id after a rejected Create = %s, want r-1", r.ID)
			}
		})
	}
}

func testGetNotFound(t *testing.T, f Factory) {
	s := fresh(t, f, nil)
	_, err := s.Get(context.Background(), "r-9")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "r-9") {
		t.Errorf("Get missing = %v, want ErrNotFound naming r-9", err)
	}
}

func testTransition(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	r := mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{Audit: []store.Event{{Actor: "U1", Action: "requested"}}})

	t.Run("moves state and appends changes", func(t *testing.T) {
		got, err := s.Transition(ctx, r.ID, []store.State{store.Pending}, func(r *store.Request, ch *store.Changes) error {
			r.State = store.Approved
			r.Approver = store.Person{ID: "U2"}
			r.ID = "r-999" // must be ignored
			ch.Audit = append(ch.Audit, store.Event{Actor: "U2", Action: "approved"})
			ch.Outbox = append(ch.Outbox, store.OutboxItem{Platform: "teams", Payload: json.RawMessage(`1`)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != r.ID || got.State != store.Approved || got.Approver.ID != "U2" {
			t.Errorf("Transition returned %+v", got)
		}
		stored, err := s.Get(ctx, r.ID)
		if err != nil || stored.State != store.Approved || stored.Approver.ID != "U2" {
			t.Errorf("stored = %+v, %v", stored, err)
		}
		if _, err := s.Get(ctx, "r-999"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("fn changed the id: r-999 exists (%v)", err)
		}
		ev, _ := s.Audit(ctx, 0, r.ID)
		if len(ev) != 2 || ev[1].Action != "approved" || ev[1].Seq != 2 || ev[1].RequestID != r.ID || ev[1].Tenant != "contoso" {
			t.Errorf("audit = %+v", ev)
		}
		ob, _ := s.OutboxReady(ctx, clk.Now(), 0)
		if len(ob) != 1 || ob[0].Platform != "teams" || ob[0].RequestID != r.ID {
			t.Errorf("outbox = %+v", ob)
		}
	})

	t.Run("conflict names the current state", func(t *testing.T) {
		before := dump(t, s)
		called := false
		_, err := s.Transition(ctx, r.ID, []store.State{store.Pending}, func(*store.Request, *store.Changes) error { called = true; return nil })
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.State != store.Approved || ce.ID != r.ID {
			t.Errorf("err = %#v, want ConflictError{r-1, approved}", err)
		}
		if !strings.Contains(err.Error(), "request r-1 is approved") {
			t.Errorf("message %q does not name the state", err)
		}
		if called {
			t.Error("fn called on conflict")
		}
		if before != dump(t, s) {
			t.Error("conflict wrote something")
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.Transition(ctx, "r-42", []store.State{store.Pending}, func(*store.Request, *store.Changes) error { return nil })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("fn error writes nothing", func(t *testing.T) {
		before := dump(t, s)
		boom := errors.New("boom")
		_, err := s.Transition(ctx, r.ID, []store.State{store.Approved}, func(r *store.Request, ch *store.Changes) error {
			r.State = store.Applying
			r.DueAt = clk.Now().Add(time.Hour)
			ch.Audit = append(ch.Audit, store.Event{Action: "applying"})
			ch.Outbox = append(ch.Outbox, store.OutboxItem{Platform: "slack"})
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want fn's error", err)
		}
		if after := dump(t, s); before != after {
			t.Errorf("fn error wrote:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("invalid result writes nothing", func(t *testing.T) {
		before := dump(t, s)
		_, err := s.Transition(ctx, r.ID, []store.State{store.Approved}, func(r *store.Request, ch *store.Changes) error {
			r.State = ""
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "no state") {
			t.Fatalf("err = %v, want no state", err)
		}
		_, err = s.Transition(ctx, r.ID, []store.State{store.Approved}, func(r *store.Request, ch *store.Changes) error {
			ch.Outbox = append(ch.Outbox, store.OutboxItem{Payload: json.RawMessage(`{}`)})
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "no platform") {
			t.Fatalf("err = %v, want no platform", err)
		}
		if before != dump(t, s) {
			t.Error("invalid transition wrote something")
		}
		// The sequence numbers a refused transition would have used are not lost.
		if err := s.AppendAudit(ctx, store.Event{Action: "next"}); err != nil {
			t.Fatal(err)
		}
		if ev, _ := s.Audit(ctx, 1, ""); len(ev) != 1 || ev[0].Seq != 3 {
			t.Errorf("audit seq after refused transitions = %+v, want 3", ev)
		}
	})

	t.Run("no from states", func(t *testing.T) {
		if _, err := s.Transition(ctx, r.ID, nil, func(*store.Request, *store.Changes) error { return nil }); err == nil {
			t.Error("Transition with no from states succeeded")
		}
	})
}

func testDueIndex(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	t0 := clk.Now()
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

	mk := func(due time.Time) string {
		r := newReq("contoso", store.Pending)
		r.DueAt = due
		return mustCreate(t, s, r, store.Changes{}).ID
	}
	setDue := func(id string, due time.Time) {
		t.Helper()
		if _, err := s.Transition(ctx, id, []store.State{store.Pending}, func(r *store.Request, _ *store.Changes) error {
			r.DueAt = due
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	due := func(now time.Time) []string {
		t.Helper()
		rs, err := s.Due(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return ids(rs)
	}
	next := func() (time.Time, bool) {
		t.Helper()
		at, ok, err := s.NextDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return at, ok
	}

	if _, ok := next(); ok {
		t.Error("NextDue on an empty store reports a time")
	}
	a := mk(at(2))
	b := mk(at(1))
	c := mk(time.Time{})
	d := mk(at(1)) // same instant as b
	if got := due(at(0)); len(got) != 0 {
		t.Errorf("Due(t0) = %v, want none", got)
	}
	if got, want := due(at(1)), []string{b, d}; !reflect.DeepEqual(got, want) {
		t.Errorf("Due(t0+1h) = %v, want %v (due exactly now counts)", got, want)
	}
	if got := due(at(1).Add(-time.Nanosecond)); len(got) != 0 {
		t.Errorf("Due(t0+1h-1ns) = %v, want none (nanoseconds count)", got)
	}
	if got, want := due(at(5)), []string{b, d, a}; !reflect.DeepEqual(got, want) {
		t.Errorf("Due(t0+5h) = %v, want %v", got, want)
	}
	if n, ok := next(); !ok || !n.Equal(at(1)) {
		t.Errorf("NextDue = %v %v, want %v", n, ok, at(1))
	}

	setDue(b, at(3)) // move later
	setDue(d, time.Time{})
	setDue(c, at(-1)) // overdue
	if got, want := due(at(2)), []string{c, a}; !reflect.DeepEqual(got, want) {
		t.Errorf("after moves Due(t0+2h) = %v, want %v", got, want)
	}
	if n, _ := next(); !n.Equal(at(-1)) {
		t.Errorf("NextDue = %v, want %v", n, at(-1))
	}
	// A same-instant time in another zone is the same due time.
	setDue(a, at(2).In(time.FixedZone("X", 3600)))
	if got, want := due(at(2)), []string{c, a}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a zone change Due(t0+2h) = %v, want %v", got, want)
	}
	setDue(c, time.Time{})
	setDue(b, time.Time{})
	setDue(a, time.Time{})
	if _, ok := next(); ok {
		t.Error("NextDue reports a time after every DueAt was cleared")
	}
	if got := due(at(100)); len(got) != 0 {
		t.Errorf("Due = %v after clearing, want none", got)
	}
	// Ids past r-9 sort as numbers would not; Due orders by time, then id bytes.
	for range 8 {
		mk(at(7))
	}
	if got := due(at(7)); len(got) != 8 || got[0] != "r-10" || got[len(got)-1] != "r-9" {
		t.Errorf("Due with equal times = %v, want byte order of the ids", got)
	}
}

func testList(t *testing.T, f Factory) {
	ctx := context.Background()
	s := fresh(t, f, NewClock())
	states := []store.State{store.Pending, store.Applied, store.Reverted}
	for i := 0; i < 12; i++ { // past r-9 so "r-10" < "r-9" byte order would show
		mustCreate(t, s, newReq("contoso", states[i%3]), store.Changes{})
	}
	tests := []struct {
		limit  int
		states []store.State
		want   []string
	}{
		{0, nil, []string{"r-12", "r-11", "r-10", "r-9", "r-8", "r-7", "r-6", "r-5", "r-4", "r-3", "r-2", "r-1"}},
		{3, nil, []string{"r-12", "r-11", "r-10"}},
		{0, []store.State{store.Pending}, []string{"r-10", "r-7", "r-4", "r-1"}},
		{2, []store.State{store.Applied, store.Reverted}, []string{"r-12", "r-11"}},
		{-1, []store.State{store.Applied}, []string{"r-11", "r-8", "r-5", "r-2"}},
		{0, []store.State{store.Failed}, []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit, tt.states), func(t *testing.T) {
			got, err := s.List(ctx, tt.limit, tt.states...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Errorf("List = %v, want %v", ids(got), tt.want)
			}
		})
	}
}

func testAudit(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	explicit := clk.Now().Add(-time.Minute)
	if err := s.AppendAudit(ctx,
		store.Event{Actor: "U1", Action: "diagnosed", Tenant: "contoso"},
		store.Event{Actor: "U1", Action: "requested", RequestID: "r-1", At: explicit},
	); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	for i := 0; i < 5; i++ {
		rid := "r-1"
		if i%2 == 1 {
			rid = "r-2"
		}
		if err := s.AppendAudit(ctx, store.Event{Actor: "c2bot", Action: fmt.Sprint("step", i), RequestID: rid}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Audit(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Fatalf("Audit all = %d events, want 7", len(all))
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d Seq = %d, want %d", i, e.Seq, i+1)
		}
	}
	if !all[0].At.Equal(clk.Now().Add(-time.Second)) || !all[1].At.Equal(explicit) || !all[2].At.Equal(clk.Now()) {
		t.Errorf("At not defaulted from the clock: %v %v %v", all[0].At, all[1].At, all[2].At)
	}
	act := func(es []store.Event) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.Action)
		}
		return out
	}
	tests := []struct {
		limit int
		rid   string
		want  []string
	}{
		{3, "", []string{"step2", "step3", "step4"}},
		{0, "r-1", []string{"requested", "step0", "step2", "step4"}},
		{2, "r-1", []string{"step2", "step4"}},
		{10, "r-2", []string{"step1", "step3"}},
		{0, "r-3", []string{}},
	}
	for _, tt := range tests {
		got, err := s.Audit(ctx, tt.limit, tt.rid)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(act(got), tt.want) {
			t.Errorf("Audit(%d, %q) = %v, want %v", tt.limit, tt.rid, act(got), tt.want)
		}
	}
	if err := s.AppendAudit(ctx, store.Event{Action: "ok"}, store.Event{Actor: "U1"}); err == nil {
		t.Error("AppendAudit accepted an event without an action")
	}
	if got, _ := s.Audit(ctx, 0, ""); len(got) != 7 {
		t.Errorf("a rejected AppendAudit wrote: %d events", len(got))
	}
}

func testOutbox(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	now := clk.Now()

	if _, ok, err := s.OutboxNext(ctx); err != nil || ok {
		t.Errorf("OutboxNext empty = %v %v", ok, err)
	}
	if err := s.Enqueue(ctx,
		store.OutboxItem{Platform: "slack", Payload: json.RawMessage(`"a"`)},                                    // 1: ready now
		store.OutboxItem{Platform: "teams", Payload: json.RawMessage(`"b"`), NextAttempt: now.Add(time.Minute)}, // 2: later
		store.OutboxItem{Platform: "slack", Payload: json.RawMessage(`"c"`), NextAttempt: now.Add(-time.Hour)},  // 3: overdue
		store.OutboxItem{Platform: "web", Payload: json.RawMessage(`"d"`), CreatedAt: now.Add(-time.Second)},    // 4: ready
	); err != nil {
		t.Fatal(err)
	}
	ready := func(at time.Time, limit int) []store.OutboxItem {
		t.Helper()
		items, err := s.OutboxReady(ctx, at, limit)
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	if got, want := oids(ready(now, 0)), []uint64{1, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("OutboxReady(now) = %v, want %v (FIFO by id)", got, want)
	}
	if got, want := oids(ready(now, 2)), []uint64{1, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("OutboxReady(now, 2) = %v, want %v", got, want)
	}
	if got, want := oids(ready(now.Add(time.Minute), 0)), []uint64{1, 2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("OutboxReady(now+1m) = %v, want %v", got, want)
	}
	if it := ready(now, 0)[2]; !it.CreatedAt.Equal(now.Add(-time.Second)) || !it.NextAttempt.Equal(it.CreatedAt) {
		t.Errorf("item 4 times = %v %v, want NextAttempt = CreatedAt", it.CreatedAt, it.NextAttempt)
	}
	if at, ok, err := s.OutboxNext(ctx); err != nil || !ok || !at.Equal(now.Add(-time.Hour)) {
		t.Errorf("OutboxNext = %v %v %v, want %v", at, ok, err, now.Add(-time.Hour))
	}

	if err := s.OutboxRetry(ctx, 3, now.Add(2*time.Minute), "slack: 503"); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxRetry(ctx, 3, now.Add(3*time.Minute), "slack: timeout"); err != nil {
		t.Fatal(err)
	}
	if got, want := oids(ready(now, 0)), []uint64{1, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("after retry OutboxReady = %v, want %v", got, want)
	}
	it3 := ready(now.Add(time.Hour), 0)[2]
	if it3.ID != 3 || it3.Attempts != 2 || it3.LastError != "slack: timeout" || !it3.NextAttempt.Equal(now.Add(3*time.Minute)) ||
		string(it3.Payload) != `"c"` {
		t.Errorf("retried item = %+v", it3)
	}
	if err := s.OutboxRetry(ctx, 99, now, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OutboxRetry missing = %v, want ErrNotFound", err)
	}

	for _, id := range []uint64{1, 4, 4, 99} { // 4 twice and 99: absent is fine
		if err := s.OutboxDone(ctx, id); err != nil {
			t.Errorf("OutboxDone(%d) = %v", id, err)
		}
	}
	if got, want := oids(ready(now.Add(time.Hour), 0)), []uint64{2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("after done = %v, want %v", got, want)
	}
	if at, _, _ := s.OutboxNext(ctx); !at.Equal(now.Add(time.Minute)) {
		t.Errorf("OutboxNext = %v, want %v", at, now.Add(time.Minute))
	}
	if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack"}, store.OutboxItem{}); err == nil {
		t.Error("Enqueue accepted an item without a platform")
	}
	if got := ready(now.Add(time.Hour), 0); len(got) != 2 {
		t.Errorf("a rejected Enqueue wrote: %d items", len(got))
	}
	// Ids are never reused.
	if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack"}); err != nil {
		t.Fatal(err)
	}
	if got := oids(ready(now.Add(time.Hour), 0)); got[len(got)-1] != 5 {
		t.Errorf("new item id = %v, want 5", got)
	}
}

func testOutboxClaim(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	now := clk.Now()
	const lease = time.Minute
	if err := s.Enqueue(ctx,
		store.OutboxItem{Platform: "slack", RequestID: "r-1", Payload: json.RawMessage(`"card"`)},  // 1
		store.OutboxItem{Platform: "slack", RequestID: "r-1", Payload: json.RawMessage(`"done"`)},  // 2: after 1
		store.OutboxItem{Platform: "slack", RequestID: "r-2"},                                      // 3
		store.OutboxItem{Platform: "slack", NextAttempt: now.Add(time.Hour)},                       // 4: later
		store.OutboxItem{Platform: "slack"},                                                        // 5
		store.OutboxItem{Platform: "teams", RequestID: "r-3", NextAttempt: now.Add(time.Hour)},     // 6: later
		store.OutboxItem{Platform: "teams", RequestID: "r-3", Payload: json.RawMessage(`"ready"`)}, // 7: after 6
	); err != nil {
		t.Fatal(err)
	}
	claim := func(at time.Time, limit int) []store.OutboxItem {
		t.Helper()
		items, err := s.OutboxClaim(ctx, at, limit, lease)
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	got := claim(now, 0)
	if want := []uint64{1, 3, 5}; !reflect.DeepEqual(oids(got), want) {
		t.Fatalf("OutboxClaim = %v, want %v (one request's items in order)", oids(got), want)
	}
	if !got[0].NextAttempt.Equal(now.Add(lease)) || string(got[0].Payload) != `"card"` {
		t.Errorf("claimed item = %+v, want NextAttempt at the end of the lease", got[0])
	}
	if again := claim(now, 0); len(again) != 0 {
		t.Errorf("claimed again during the lease: %v", oids(again))
	}
	if err := s.OutboxDone(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := claim(now, 0); !reflect.DeepEqual(oids(got), []uint64{2}) {
		t.Errorf("after item 1 was delivered: %v, want [2]", oids(got))
	}
	// A worker that died: its items come back when the lease ends.
	if got := claim(now.Add(lease-time.Nanosecond), 0); len(got) != 0 {
		t.Errorf("claimed before the lease ended: %v", oids(got))
	}
	if got := claim(now.Add(lease), 1); !reflect.DeepEqual(oids(got), []uint64{2}) {
		t.Errorf("after the lease, limit 1 = %v, want [2]", oids(got))
	}
	if at, ok, _ := s.OutboxNext(ctx); !ok || !at.Equal(now.Add(lease)) {
		t.Errorf("OutboxNext = %v, want the earliest lease end %v", at, now.Add(lease))
	}
	if _, err := s.OutboxClaim(ctx, now, 0, 0); err == nil {
		t.Error("OutboxClaim accepted a zero lease")
	}
}

// testOutboxTry: OutboxTry keeps the first start of a delivery and touches
// nothing else; every read of the outbox returns it, and a retry keeps it.
func testOutboxTry(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	now := clk.Now()
	if err := s.Enqueue(ctx,
		store.OutboxItem{Platform: "slack", RequestID: "r-1", Payload: json.RawMessage(`"card"`)}, // 1
		store.OutboxItem{Platform: "teams", Payload: json.RawMessage(`"b"`)},                      // 2: never tried
	); err != nil {
		t.Fatal(err)
	}
	item := func(id uint64) store.OutboxItem {
		t.Helper()
		items, err := s.OutboxReady(ctx, farFuture, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.ID == id {
				return it
			}
		}
		t.Fatalf("item %d not in the outbox: %v", id, oids(items))
		return store.OutboxItem{}
	}
	if it := item(1); !it.Tried.IsZero() {
		t.Errorf("new item Tried = %v, want zero", it.Tried)
	}

	claimed, err := s.OutboxClaim(ctx, now, 1, time.Minute)
	if err != nil || len(claimed) != 1 || claimed[0].ID != 1 || !claimed[0].Tried.IsZero() {
		t.Fatalf("OutboxClaim = %+v %v, want item 1 never tried", claimed, err)
	}
	before := item(1)
	started := now.Add(time.Second)
	if err := s.OutboxTry(ctx, 1, started); err != nil {
		t.Fatal(err)
	}
	it := item(1)
	if !it.Tried.Equal(started) {
		t.Errorf("Tried = %v, want %v", it.Tried, started)
	}
	if it.Attempts != before.Attempts || !it.NextAttempt.Equal(before.NextAttempt) || it.LastError != before.LastError ||
		string(it.Payload) != `"card"` || it.RequestID != "r-1" || !it.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("OutboxTry changed more than Tried: %+v, was %+v", it, before)
	}
	if it := item(2); !it.Tried.IsZero() {
		t.Errorf("item 2 Tried = %v after trying item 1", it.Tried)
	}

	// A later start (a retry, another replica) keeps the first.
	if err := s.OutboxTry(ctx, 1, started.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if it := item(1); !it.Tried.Equal(started) {
		t.Errorf("second OutboxTry moved Tried to %v, want the first start %v", it.Tried, started)
	}
	if err := s.OutboxTry(ctx, 1, time.Time{}); err == nil {
		t.Error("OutboxTry accepted a zero start time")
	}

	// A failed attempt keeps it; the item comes back from OutboxClaim and
	// OutboxReady with it.
	if err := s.OutboxRetry(ctx, 1, now.Add(2*time.Minute), "slack: 503"); err != nil {
		t.Fatal(err)
	}
	ready, err := s.OutboxReady(ctx, now.Add(2*time.Minute), 0)
	if err != nil || len(ready) != 2 || ready[0].ID != 1 || !ready[0].Tried.Equal(started) || ready[0].Attempts != 1 ||
		ready[0].LastError != "slack: 503" || !ready[1].Tried.IsZero() {
		t.Errorf("OutboxReady after retry = %+v %v, want item 1 tried at %v with one attempt", ready, err, started)
	}
	claimed, err = s.OutboxClaim(ctx, now.Add(2*time.Minute), 0, time.Minute)
	if err != nil || len(claimed) != 2 || claimed[0].ID != 1 || !claimed[0].Tried.Equal(started) || !claimed[1].Tried.IsZero() {
		t.Errorf("OutboxClaim after retry = %+v %v, want item 1 tried at %v", claimed, err, started)
	}

	// An absent item, or one already delivered, is not found, and the
	// refused call writes nothing.
	if err := s.OutboxDone(ctx, 2); err != nil {
		t.Fatal(err)
	}
	unchanged := dump(t, s)
	for _, id := range []uint64{2, 99} {
		if err := s.OutboxTry(ctx, id, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OutboxTry(%d) of an absent item = %v, want ErrNotFound", id, err)
		}
	}
	if unchanged != dump(t, s) {
		t.Error("a refused OutboxTry wrote something")
	}
}

func testConversation(t *testing.T, f Factory) {
	ctx := context.Background()
	s := fresh(t, f, nil)
	if _, err := s.Conversation(ctx, "teams:19:abc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing = %v, want ErrNotFound", err)
	}
	for _, ref := range []string{`{"v":1}`, `{"v":2}`} {
		if err := s.PutConversation(ctx, "teams:19:abc", json.RawMessage(ref)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Conversation(ctx, "teams:19:abc")
		if err != nil || string(got) != ref {
			t.Errorf("Conversation = %s %v, want %s", got, err, ref)
		}
	}
	if err := s.PutConversation(ctx, "", json.RawMessage(`{}`)); err == nil {
		t.Error("PutConversation accepted an empty key")
	}
}

func testFirstSeen(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	const ttl = time.Hour
	seen := func(id string) bool {
		t.Helper()
		ok, err := s.FirstSeen(ctx, id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !seen("slack:Ev1") {
		t.Error("first delivery reported as seen")
	}
	if seen("slack:Ev1") {
		t.Error("redelivery reported as new")
	}
	clk.Add(ttl) // exactly ttl old: still a duplicate
	if seen("slack:Ev1") {
		t.Error("redelivery exactly ttl later reported as new")
	}
	clk.Add(time.Nanosecond) // older than ttl: forgotten
	if !seen("slack:Ev1") {
		t.Error("delivery older than ttl still reported as seen")
	}
	if seen("slack:Ev1") {
		t.Error("re-recorded delivery reported as new")
	}
	// Many old ids: pruning (at most 100 a call) never forgets a fresh one.
	for i := 0; i < 250; i++ {
		seen(fmt.Sprint("teams:", i))
	}
	clk.Add(ttl / 2)
	seen("fresh")
	clk.Add(ttl/2 + time.Second)
	for i := 0; i < 4; i++ {
		seen(fmt.Sprint("new-", i))
	}
	if seen("fresh") {
		t.Error("an id seen within ttl was forgotten by pruning")
	}
	if !seen("teams:7") {
		t.Error("expired id reported as seen")
	}
	// Concurrent sightings of one id: exactly one is first.
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.FirstSeen(ctx, "slack:race", ttl)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firsts != 1 {
		t.Errorf("%d of 8 concurrent sightings were first, want 1", firsts)
	}
	if _, err := s.FirstSeen(ctx, "", ttl); err == nil {
		t.Error("FirstSeen accepted an empty id")
	}
	if _, err := s.FirstSeen(ctx, "x", 0); err == nil {
		t.Error("FirstSeen accepted a zero ttl")
	}
}

func testCanceledContext(t *testing.T, f Factory) {
	s := fresh(t, f, nil)
	r := mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{})
	before := dump(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	noop := func(*store.Request, *store.Changes) error { return nil }
	calls := map[string]func() error{
		"Create":          func() error { _, err := s.Create(ctx, newReq("contoso", store.Pending), store.Changes{}); return err },
		"Get":             func() error { _, err := s.Get(ctx, r.ID); return err },
		"Transition":      func() error { _, err := s.Transition(ctx, r.ID, []store.State{store.Pending}, noop); return err },
		"List":            func() error { _, err := s.List(ctx, 0); return err },
		"Due":             func() error { _, err := s.Due(ctx, time.Now()); return err },
		"NextDue":         func() error { _, _, err := s.NextDue(ctx); return err },
		"Audit":           func() error { _, err := s.Audit(ctx, 0, ""); return err },
		"AppendAudit":     func() error { return s.AppendAudit(ctx, store.Event{Action: "x"}) },
		"Enqueue":         func() error { return s.Enqueue(ctx, store.OutboxItem{Platform: "slack"}) },
		"OutboxReady":     func() error { _, err := s.OutboxReady(ctx, time.Now(), 0); return err },
		"OutboxClaim":     func() error { _, err := s.OutboxClaim(ctx, time.Now(), 0, time.Minute); return err },
		"OutboxNext":      func() error { _, _, err := s.OutboxNext(ctx); return err },
		"OutboxDone":      func() error { return s.OutboxDone(ctx, 1) },
		"OutboxRetry":     func() error { return s.OutboxRetry(ctx, 1, time.Now(), "x") },
		"OutboxTry":       func() error { return s.OutboxTry(ctx, 1, time.Now()) },
		"PutConversation": func() error { return s.PutConversation(ctx, "k", json.RawMessage(`{}`)) },
		"Conversation":    func() error { _, err := s.Conversation(ctx, "k"); return err },
		"FirstSeen":       func() error { _, err := s.FirstSeen(ctx, "id", time.Hour); return err },
		"Ping":            func() error { return s.Ping(ctx) },
		"ListAudit":       func() error { _, err := s.ListAudit(ctx, store.AuditFilter{}); return err },
		"Stats":           func() error { _, err := s.Stats(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", name, err)
		}
	}
	if before != dump(t, s) {
		t.Error("a call with a canceled context wrote something")
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func testReopen(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	loc := f.New(t)
	s, err := f.Open(t, loc, store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := newReq("contoso", store.Pending)
	r.DueAt = clk.Now().Add(time.Hour)
	r.Items = json.RawMessage(`{"plan":1}`)
	r = mustCreate(t, s, r, store.Changes{Audit: []store.Event{{Action: "requested"}}, Outbox: []store.OutboxItem{{Platform: "slack"}}})
	if _, err := s.Transition(ctx, r.ID, []store.State{store.Pending}, func(r *store.Request, ch *store.Changes) error {
		r.State = store.Applied
		r.DueAt = r.DueAt.Add(time.Hour)
		ch.Audit = append(ch.Audit, store.Event{Action: "applied"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConversation(ctx, "slack:C1", json.RawMessage(`{"c":"C1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FirstSeen(ctx, "Ev1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxTry(ctx, 1, clk.Now()); err != nil {
		t.Fatal(err)
	}
	before := dump(t, s)
	if !strings.Contains(before, `"tried":"2025-03-01T12:00:00Z"`) {
		t.Errorf("dump before reopen has no Tried: %s", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, f, loc, clk)
	if after := dump(t, s); before != after {
		t.Errorf("reopen lost data:\nbefore %v\nafter  %v", before, after)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil || got.State != store.Applied || string(got.Items) != `{"plan":1}` {
		t.Errorf("Get after reopen = %+v %v", got, err)
	}
	if ref, err := s.Conversation(ctx, "slack:C1"); err != nil || string(ref) != `{"c":"C1"}` {
		t.Errorf("Conversation after reopen = %s %v", ref, err)
	}
	if first, _ := s.FirstSeen(ctx, "Ev1", time.Hour); first {
		t.Error("seen id forgotten across reopen")
	}
	if r2 := mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{Audit: []store.Event{{Action: "requested"}}}); r2.ID != "r-2" {
		t.Errorf("id after reopen = %s, want r-2", r2.ID)
	}
	if ev, _ := s.Audit(ctx, 1, ""); len(ev) != 1 || ev[0].Seq != 3 {
		t.Errorf("audit seq after reopen = %+v, want 3", ev)
	}
}

// approve is the transition the concurrency tests race for: pending to
// approved, recording who won.
func approve(ctx context.Context, s store.Backend, id, actor string) error {
	_, err := s.Transition(ctx, id, []store.State{store.Pending}, func(r *store.Request, ch *store.Changes) error {
		r.State = store.Approved
		r.Approver = store.Person{ID: actor}
		ch.Audit = append(ch.Audit, store.Event{Actor: actor, Action: "approved"})
		ch.Outbox = append(ch.Outbox, store.OutboxItem{Platform: "slack", Payload: json.RawMessage(`"approved"`)})
		return nil
	})
	return err
}

// checkOneWinner verifies that each request was approved exactly once, by
// the actor wins names, with one audit event and one outbox item.
func checkOneWinner(t *testing.T, s store.Backend, n int, wins map[string][]string) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		id := fmt.Sprint("r-", i)
		if len(wins[id]) != 1 {
			t.Errorf("%s approved by %v, want exactly one winner", id, wins[id])
			continue
		}
		r, err := s.Get(ctx, id)
		if err != nil || r.State != store.Approved || r.Approver.ID != wins[id][0] {
			t.Errorf("%s = %s by %s (%v), want approved by %s", id, r.State, r.Approver.ID, err, wins[id][0])
		}
		ev, _ := s.Audit(ctx, 0, id)
		if len(ev) != 1 || ev[0].Actor != wins[id][0] {
			t.Errorf("%s audit = %+v, want the winner's one event", id, ev)
		}
	}
	ob, _ := s.OutboxReady(ctx, farFuture, 0)
	if len(ob) != n {
		t.Errorf("%d outbox items, want %d (one per winning transition)", len(ob), n)
	}
	ev, _ := s.Audit(ctx, 0, "")
	for i, e := range ev {
		if e.Seq != uint64(i+1) {
			t.Errorf("audit event %d has Seq %d: sequence has a gap or a repeat", i, e.Seq)
			break
		}
	}
}

func testConcurrentTransitions(t *testing.T, f Factory) {
	ctx := context.Background()
	s := fresh(t, f, nil)
	const requests, workers = 10, 8
	for range requests {
		mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{})
	}
	var mu sync.Mutex
	wins := map[string][]string{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			actor := fmt.Sprint("U", w)
			for _, i := range rand.Perm(requests) {
				id := fmt.Sprint("r-", i+1)
				err := approve(ctx, s, id, actor)
				switch {
				case err == nil:
					mu.Lock()
					wins[id] = append(wins[id], actor)
					mu.Unlock()
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("approve %s: %v", id, err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	checkOneWinner(t, s, requests, wins)
}

func testConcurrentClaims(t *testing.T, f Factory) {
	ctx := context.Background()
	s := fresh(t, f, nil)
	const items, workers = 60, 6
	for i := range items {
		if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack", RequestID: fmt.Sprint("r-", i%20)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[uint64]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				got, err := s.OutboxClaim(ctx, time.Now(), 5, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				for _, it := range got {
					mu.Lock()
					claimed[it.ID]++
					mu.Unlock()
					if err := s.OutboxDone(ctx, it.ID); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("item %d claimed %d times", id, n)
		}
	}
	if len(claimed) != items {
		t.Errorf("%d of %d items claimed", len(claimed), items)
	}
}

// testMultiProcess races several processes (this test binary, run again as
// children) for the same transitions on one store.
func testMultiProcess(t *testing.T, f Factory) {
	const requests, children = 20, 3
	if loc := os.Getenv(childEnv); loc != "" {
		runChild(t, f, loc)
		return
	}
	loc := f.New(t)
	s, err := f.Open(t, loc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range requests {
		mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{})
	}
	if f.Exclusive {
		// The children take turns on the file lock; this process lets go.
		_ = s.Close()
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	type result struct {
		actor string
		out   []byte
		err   error
	}
	results := make(chan result, children)
	for c := range children {
		actor := fmt.Sprint("P", c)
		cmd := exec.Command(exe, "-test.run="+strings.Join(pattern, "/"), "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+loc, childNameEv+"="+actor, fmt.Sprint(childCount, "=", requests))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		go func() {
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("%v: %s%s", err, out, stderr.Bytes())
			}
			results <- result{actor, out, err}
		}()
	}
	wins := map[string][]string{}
	// This process races too, when the store allows it.
	if !f.Exclusive {
		ctx := context.Background()
		for _, i := range rand.Perm(requests) {
			id := fmt.Sprint("r-", i+1)
			if err := approve(ctx, s, id, "parent"); err == nil {
				wins[id] = append(wins[id], "parent")
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("approve %s: %v", id, err)
			}
		}
	}
	for range children {
		res := <-results
		if res.err != nil {
			t.Fatalf("child %s: %v", res.actor, res.err)
		}
		sc := bufio.NewScanner(bytes.NewReader(res.out))
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "won "); ok {
				wins[id] = append(wins[id], res.actor)
			}
		}
	}
	if f.Exclusive {
		s = open(t, f, loc, nil)
	} else {
		t.Cleanup(func() { _ = s.Close() })
	}
	checkOneWinner(t, s, requests, wins)
}

// runChild is one child process of testMultiProcess: it tries every
// transition and prints the ones it won.
func runChild(t *testing.T, f Factory, loc string) {
	actor := os.Getenv(childNameEv)
	var n int
	if _, err := fmt.Sscan(os.Getenv(childCount), &n); err != nil {
		t.Fatalf("child: %s: %v", childCount, err)
	}
	s := open(t, f, loc, nil)
	ctx := context.Background()
	for _, i := range rand.Perm(n) {
		id := fmt.Sprint("r-", i+1)
		err := approve(ctx, s, id, actor)
		switch {
		case err == nil:
			fmt.Printf("won %s\n", id)
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("child %s: approve %s: %v", actor, id, err)
		}
	}
}

// testImport fills an empty store from a Dump (backends that are
// store.Importer): ids and sequences carry on where the dump stopped.
func testImport(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	im, ok := s.(store.Importer)
	if !ok {
		t.Skip("backend cannot import")
	}
	now := clk.Now()
	item9 := store.OutboxItem{ID: 9, Platform: "slack", RequestID: "r-7", CreatedAt: now, NextAttempt: now, Payload: json.RawMessage(`"x"`),
		Attempts: 2, LastError: "slack: 503", Tried: now.Add(-time.Minute)} // a delivery started, then failed
	d := store.Dump{
		Requests: []store.Request{
			{ID: "r-5", Tenant: "contoso", State: store.Reverted, CreatedAt: now},
			{ID: "r-7", Tenant: "contoso", State: store.Applied, CreatedAt: now, DueAt: now.Add(time.Hour), Items: json.RawMessage(`[1]`)},
		},
		Audit:         []store.Event{{Seq: 2, At: now, Action: "requested", RequestID: "r-7"}, {Seq: 3, At: now, Action: "applied", RequestID: "r-7"}},
		Outbox:        []store.OutboxItem{item9},
		Conversations: map[string]json.RawMessage{"teams:19:a": json.RawMessage(`{"a":1}`)},
		Seen:          map[string]time.Time{"slack:Ev9": now},
		RequestSeq:    7, AuditSeq: 3, OutboxSeq: 10,
	}
	if err := im.Import(ctx, d); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, "r-7"); err != nil || r.State != store.Applied || string(r.Items) != `[1]` {
		t.Errorf("imported r-7 = %+v %v", r, err)
	}
	if due, _ := s.Due(ctx, now.Add(time.Hour)); !reflect.DeepEqual(ids(due), []string{"r-7"}) {
		t.Errorf("Due after import = %v", ids(due))
	}
	if ev, _ := s.Audit(ctx, 0, "r-7"); len(ev) != 2 || ev[1].Seq != 3 {
		t.Errorf("imported audit = %+v", ev)
	}
	if ref, err := s.Conversation(ctx, "teams:19:a"); err != nil || string(ref) != `{"a":1}` {
		t.Errorf("imported conversation = %s %v", ref, err)
	}
	if first, _ := s.FirstSeen(ctx, "slack:Ev9", time.Hour); first {
		t.Error("an imported delivery id is new")
	}
	if r := mustCreate(t, s, newReq("contoso", store.Pending), store.Changes{Audit: []store.Event{{Action: "requested"}}}); r.ID != "r-8" {
		t.Errorf("next request after import = %s, want r-8", r.ID)
	}
	if ev, _ := s.Audit(ctx, 1, ""); len(ev) != 1 || ev[0].Seq != 4 {
		t.Errorf("next audit seq after import = %+v, want 4", ev)
	}
	if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack"}); err != nil {
		t.Fatal(err)
	}
	if ob, _ := s.OutboxReady(ctx, farFuture, 0); len(ob) != 2 || ob[1].ID != 11 {
		t.Errorf("outbox after import = %v, want [9 11]", oids(ob))
	} else if it := ob[0]; !it.Tried.Equal(now.Add(-time.Minute)) || it.Attempts != 2 || it.LastError != "slack: 503" || !ob[1].Tried.IsZero() {
		t.Errorf("imported item = %+v, want it tried at %v after 2 attempts; new item %+v never tried", it, now.Add(-time.Minute), ob[1])
	}
	before := dump(t, s)
	if err := im.Import(ctx, d); !errors.Is(err, store.ErrNotEmpty) {
		t.Errorf("second Import = %v, want ErrNotEmpty", err)
	}
	if before != dump(t, s) {
		t.Error("a refused Import wrote something")
	}
}

// pairer is a backend with TransitionPair (an extension and its parent in
// one transaction).
type pairer interface {
	TransitionPair(ctx context.Context, id string, from []store.State, other string, otherFrom []store.State,
		fn func(r, o *store.Request, ch *store.Changes) error) (store.Request, store.Request, error)
}

// testTransitionPair: both requests, their due times and the changes are
// committed together, or nothing is; concurrent pairs over the same two
// requests (in either order) neither deadlock nor both win.
func testTransitionPair(t *testing.T, f Factory) {
	ctx := context.Background()
	clk := NewClock()
	s := fresh(t, f, clk)
	ps, ok := s.(pairer)
	if !ok {
		t.Skip("backend has no TransitionPair")
	}
	parent := newReq("contoso", store.Applied)
	parent.DueAt = clk.Now().Add(time.Hour)
	parent = mustCreate(t, s, parent, store.Changes{})
	ext := newReq("contoso", store.Approved)
	ext.ParentID = parent.ID
	ext.DueAt = clk.Now().Add(10 * time.Minute)
	ext = mustCreate(t, s, ext, store.Changes{})
	move := func(e, p *store.Request, ch *store.Changes) error {
		p.DueAt = p.DueAt.Add(time.Hour)
		e.State, e.DueAt = store.Applied, time.Time{}
		ch.Audit = append(ch.Audit, store.Event{Action: "extended", RequestID: p.ID})
		return nil
	}
	before := dump(t, s)
	_, _, err := ps.TransitionPair(ctx, ext.ID, []store.State{store.Approved}, parent.ID, []store.State{store.Reverting}, move)
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.ID != parent.ID || ce.State != store.Applied {
		t.Fatalf("err = %v, want a conflict naming %s", err, parent.ID)
	}
	boom := errors.New("refused")
	if _, _, err := ps.TransitionPair(ctx, ext.ID, []store.State{store.Approved}, parent.ID, []store.State{store.Applied},
		func(e, p *store.Request, ch *store.Changes) error { p.DueAt = time.Time{}; return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fn's error", err)
	}
	if _, _, err := ps.TransitionPair(ctx, ext.ID, []store.State{store.Approved}, "r-99", []store.State{store.Applied}, move); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if before != dump(t, s) {
		t.Fatal("a refused pair transition wrote something")
	}
	// Racing pairs, half naming the requests the other way round.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, _, err = ps.TransitionPair(ctx, ext.ID, []store.State{store.Approved}, parent.ID, []store.State{store.Applied}, move)
			} else {
				_, _, err = ps.TransitionPair(ctx, parent.ID, []store.State{store.Applied}, ext.ID, []store.State{store.Approved},
					func(p, e *store.Request, ch *store.Changes) error { return move(e, p, ch) })
			}
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("pair: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d pair transitions won, want 1", wins)
	}
	if due, _ := s.Due(ctx, clk.Now().Add(3*time.Hour)); !reflect.DeepEqual(ids(due), []string{parent.ID}) {
		t.Errorf("due = %v, want only the parent", ids(due))
	}
	if early, _ := s.Due(ctx, clk.Now().Add(90*time.Minute)); len(early) != 0 {
		t.Errorf("parent still due at its old time: %v", ids(early))
	}
	if ev, _ := s.Audit(ctx, 0, parent.ID); len(ev) != 1 || ev[0].Action != "extended" || ev[0].Tenant != "contoso" {
		t.Errorf("audit = %+v", ev)
	}
	if _, _, err := ps.TransitionPair(ctx, ext.ID, []store.State{store.Approved}, ext.ID, []store.State{store.Approved}, move); err == nil {
		t.Error("a pair naming one request twice was accepted")
	}
}

func testListAudit(t *testing.T, f Factory) {
	clk := NewClock()
	s := fresh(t, f, clk)
	ctx := context.Background()
	start := clk.Now()
	for i := 0; i < 10; i++ {
		tenant := "contoso"
		if i%2 == 1 {
			tenant = "fabrikam"
		}
		req := "r-1"
		if i >= 5 {
			req = "r-2"
		}
		if err := s.AppendAudit(ctx, store.Event{Actor: "U1", Action: "a", Tenant: tenant, RequestID: req}); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
	}
	seqs := func(es []store.Event) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want []uint64
	}{
		{"all", store.AuditFilter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"newest page", store.AuditFilter{Limit: 3}, []uint64{8, 9, 10}},
		{"page before 8", store.AuditFilter{Limit: 3, BeforeSeq: 8}, []uint64{5, 6, 7}},
		{"last page", store.AuditFilter{Limit: 3, BeforeSeq: 3}, []uint64{1, 2}},
		{"past the end", store.AuditFilter{Limit: 3, BeforeSeq: 1}, nil},
		{"tenant", store.AuditFilter{Tenants: []string{"fabrikam"}}, []uint64{2, 4, 6, 8, 10}},
		{"request", store.AuditFilter{RequestID: "r-1"}, []uint64{1, 2, 3, 4, 5}},
		{"since", store.AuditFilter{Since: start.Add(7 * time.Hour)}, []uint64{8, 9, 10}},
		{"combined", store.AuditFilter{RequestID: "r-2", Tenants: []string{"contoso"}, Limit: 2}, []uint64{7, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if g := seqs(got); len(g) != len(tt.want) || (len(g) > 0 && !equalU64(g, tt.want)) {
				t.Fatalf("got %v, want %v", g, tt.want)
			}
		})
	}
}

func equalU64(a, b []uint64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func testStats(t *testing.T, f Factory) {
	clk := NewClock()
	s := fresh(t, f, clk)
	ctx := context.Background()
	now := clk.Now()

	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingReverts != 0 || !st.NextRevert.IsZero() || st.OutboxDepth != 0 || !st.OldestUndelivered.IsZero() || len(st.ByState) != 0 {
		t.Fatalf("empty store stats = %+v", st)
	}

	pending := newReq("contoso", store.Pending)
	pending.DueAt = now.Add(time.Minute) // approval expiry: not a revert
	mustCreate(t, s, pending, store.Changes{})
	late := newReq("contoso", store.Applied)
	late.DueAt = now.Add(2 * time.Hour)
	mustCreate(t, s, late, store.Changes{})
	early := newReq("contoso", store.RevertFailed)
	early.DueAt = now.Add(30 * time.Minute)
	mustCreate(t, s, early, store.Changes{})
	mustCreate(t, s, newReq("contoso", store.Reverted), store.Changes{})
	if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	st, err = s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.State]int{store.Pending: 1, store.Applied: 1, store.RevertFailed: 1, store.Reverted: 1}
	for k, v := range want {
		if st.ByState[k] != v {
			t.Errorf("ByState[%s] = %d, want %d (%v)", k, st.ByState[k], v, st.ByState)
		}
	}
	if st.PendingReverts != 2 {
		t.Errorf("PendingReverts = %d, want 2", st.PendingReverts)
	}
	if !st.NextRevert.Equal(now.Add(30 * time.Minute)) {
		t.Errorf("NextRevert = %v, want the revert_failed retry at %v", st.NextRevert, now.Add(30*time.Minute))
	}
	if st.OutboxDepth != 2 || !st.OldestUndelivered.Equal(now) {
		t.Errorf("outbox = %d oldest %v, want 2 oldest %v", st.OutboxDepth, st.OldestUndelivered, now)
	}
}
