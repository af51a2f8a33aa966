package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, clk *clock) *Store {
	t.Helper()
	opts := Options{}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := Open(filepath.Join(t.TempDir(), "c2bot.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newReq(tenant string, st State) Request {
	return Request{Tenant: tenant, State: st, Requester: Person{ID: "U1", Name: "Ann"}}
}

func mustCreate(t testing.TB, s *Store, r Request, ch Changes) Request {
	t.Helper()
	got, err := s.Create(context.Background(), r, ch)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

// snapshot returns every bucket's contents, to prove that nothing changed.
func snapshot(t *testing.T, s *Store) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			m := map[string]string{}
			b := tx.Bucket(name)
			_ = b.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
			m["\x00sequence"] = fmt.Sprint(b.Sequence())
			out[string(name)] = m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkDueIndex verifies the due index holds exactly one entry per request
// with a DueAt, matching it.
func checkDueIndex(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		want := map[string]bool{}
		err := tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
			var r Request
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if !r.DueAt.IsZero() {
				want[string(dueKey(r.ID, r.DueAt))] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		got := map[string]bool{}
		_ = tx.Bucket(bucketDue).ForEach(func(k, _ []byte) error { got[string(k)] = true; return nil })
		if !reflect.DeepEqual(got, want) {
			t.Errorf("due index %q, want %q", keys(got), keys(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%x", k))
	}
	return out
}

func ids(rs []Request) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestCreateGet(t *testing.T) {
	clk := newClock()
	s := openTest(t, clk)
	ctx := context.Background()

	in := newReq("contoso", Pending)
	in.ID = "ignored"
	in.Reason = "backup job"
	in.Duration = 8 * time.Hour
	in.ExpiresAt = clk.Now().Add(time.Hour)
	in.DueAt = in.ExpiresAt
	in.Items = json.RawMessage(`[{"field":"isEnabled","from":true,"to":false}]`)
	in.Conv = json.RawMessage(`{"platform":"slack","channel":"C1"}`)
	r1 := mustCreate(t, s, in, Changes{
		Audit:  []Event{{Actor: "U1", Action: "requested"}},
		Outbox: []OutboxItem{{Platform: "slack", Payload: json.RawMessage(`{"text":"hi"}`)}},
	})
	if r1.ID != "r-1" {
		t.Errorf("first id = %q, want r-1", r1.ID)
	}
	if !r1.CreatedAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt = %v, want clock %v", r1.CreatedAt, clk.Now())
	}
	r2 := mustCreate(t, s, newReq("fabrikam", Pending), Changes{})
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
	checkDueIndex(t, s)
}

func TestCreateRejects(t *testing.T) {
	tests := []struct {
		name string
		r    Request
		ch   Changes
		want string
	}{
		{"no state", newReq("contoso", ""), Changes{}, "no state"},
		{"no tenant", newReq("", Pending), Changes{}, "no tenant"},
		{"event without action", newReq("contoso", Pending), Changes{Audit: []Event{{Actor: "U1"}}}, "no action"},
		{"outbox without platform", newReq("contoso", Pending), Changes{Outbox: []OutboxItem{{Payload: json.RawMessage(`{}`)}}}, "no platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, newClock())
			before := snapshot(t, s)
			_, err := s.Create(context.Background(), tt.r, tt.ch)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create err = %v, want %q", err, tt.want)
			}
			if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
				t.Errorf("a rejected Create wrote:\nbefore %v\nafter  %v", before, after)
			}
			if r := mustCreate(t, s, newReq("contoso", Pending), Changes{}); r.ID != "r-1" {
				t.Errorf("id after a rejected Create = %s, want r-1", r.ID)
			}
		})
	}
}

func TestGetNotFound(t *testing.T) {
	s := openTest(t, nil)
	_, err := s.Get(context.Background(), "r-9")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "r-9") {
		t.Errorf("Get missing = %v, want ErrNotFound naming r-9", err)
	}
}

func TestTransition(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	r := mustCreate(t, s, newReq("contoso", Pending), Changes{Audit: []Event{{Actor: "U1", Action: "requested"}}})

	t.Run("moves state and appends changes", func(t *testing.T) {
		got, err := s.Transition(ctx, r.ID, []State{Pending}, func(r *Request, ch *Changes) error {
			r.State = Approved
			r.Approver = Person{ID: "U2"}
			r.ID = "r-999" // must be ignored
			ch.Audit = append(ch.Audit, Event{Actor: "U2", Action: "approved"})
			ch.Outbox = append(ch.Outbox, OutboxItem{Platform: "teams", Payload: json.RawMessage(`1`)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != r.ID || got.State != Approved || got.Approver.ID != "U2" {
			t.Errorf("Transition returned %+v", got)
		}
		stored, err := s.Get(ctx, r.ID)
		if err != nil || stored.State != Approved || stored.Approver.ID != "U2" {
			t.Errorf("stored = %+v, %v", stored, err)
		}
		if _, err := s.Get(ctx, "r-999"); !errors.Is(err, ErrNotFound) {
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
		before := snapshot(t, s)
		called := false
		_, err := s.Transition(ctx, r.ID, []State{Pending}, func(*Request, *Changes) error { called = true; return nil })
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.State != Approved || ce.ID != r.ID {
			t.Errorf("err = %#v, want ConflictError{r-1, approved}", err)
		}
		if !strings.Contains(err.Error(), "request r-1 is approved") {
			t.Errorf("message %q does not name the state", err)
		}
		if called {
			t.Error("fn called on conflict")
		}
		if !reflect.DeepEqual(before, snapshot(t, s)) {
			t.Error("conflict wrote something")
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.Transition(ctx, "r-42", []State{Pending}, func(*Request, *Changes) error { return nil })
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("fn error writes nothing", func(t *testing.T) {
		before := snapshot(t, s)
		boom := errors.New("boom")
		_, err := s.Transition(ctx, r.ID, []State{Approved}, func(r *Request, ch *Changes) error {
			r.State = Applying
			r.DueAt = clk.Now().Add(time.Hour)
			ch.Audit = append(ch.Audit, Event{Action: "applying"})
			ch.Outbox = append(ch.Outbox, OutboxItem{Platform: "slack"})
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want fn's error", err)
		}
		if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
			t.Errorf("fn error wrote:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("invalid result writes nothing", func(t *testing.T) {
		before := snapshot(t, s)
		_, err := s.Transition(ctx, r.ID, []State{Approved}, func(r *Request, ch *Changes) error {
			r.State = ""
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "no state") {
			t.Fatalf("err = %v, want no state", err)
		}
		_, err = s.Transition(ctx, r.ID, []State{Approved}, func(r *Request, ch *Changes) error {
			ch.Outbox = append(ch.Outbox, OutboxItem{Payload: json.RawMessage(`{}`)})
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "no platform") {
			t.Fatalf("err = %v, want no platform", err)
		}
		if !reflect.DeepEqual(before, snapshot(t, s)) {
			t.Error("invalid transition wrote something")
		}
	})

	t.Run("no from states", func(t *testing.T) {
		if _, err := s.Transition(ctx, r.ID, nil, func(*Request, *Changes) error { return nil }); err == nil {
			t.Error("Transition with no from states succeeded")
		}
	})
}

func TestDueIndexFollowsTransitions(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	t0 := clk.Now()
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

	mk := func(due time.Time) string {
		r := newReq("contoso", Pending)
		r.DueAt = due
		return mustCreate(t, s, r, Changes{}).ID
	}
	setDue := func(id string, due time.Time) {
		t.Helper()
		if _, err := s.Transition(ctx, id, []State{Pending}, func(r *Request, _ *Changes) error {
			r.DueAt = due
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		checkDueIndex(t, s)
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
	checkDueIndex(t, s)

	if got := due(at(0)); len(got) != 0 {
		t.Errorf("Due(t0) = %v, want none", got)
	}
	if got, want := due(at(1)), []string{b, d}; !reflect.DeepEqual(got, want) {
		t.Errorf("Due(t0+1h) = %v, want %v (due exactly now counts)", got, want)
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
	// Changing something else keeps the entry; a same-instant time in another
	// zone is the same key.
	setDue(a, at(2).In(time.FixedZone("X", 3600)))
	setDue(c, time.Time{})
	setDue(b, time.Time{})
	setDue(a, time.Time{})
	if _, ok := next(); ok {
		t.Error("NextDue reports a time after every DueAt was cleared")
	}
	if got := due(at(100)); len(got) != 0 {
		t.Errorf("Due = %v after clearing, want none", got)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), // clamped
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), // clamped
	}
	for i := 1; i < len(times); i++ {
		if string(timeKey(times[i-1])) >= string(timeKey(times[i])) {
			t.Errorf("timeKey(%v) does not sort before timeKey(%v)", times[i-1], times[i])
		}
	}
	for _, tm := range times[1:5] {
		if got := keyTime(timeKey(tm)); !got.Equal(tm) {
			t.Errorf("keyTime(timeKey(%v)) = %v", tm, got)
		}
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, newClock())
	states := []State{Pending, Applied, Reverted}
	for i := 0; i < 12; i++ { // past r-9 so "r-10" < "r-9" byte order would show
		mustCreate(t, s, newReq("contoso", states[i%3]), Changes{})
	}
	tests := []struct {
		limit  int
		states []State
		want   []string
	}{
		{0, nil, []string{"r-12", "r-11", "r-10", "r-9", "r-8", "r-7", "r-6", "r-5", "r-4", "r-3", "r-2", "r-1"}},
		{3, nil, []string{"r-12", "r-11", "r-10"}},
		{0, []State{Pending}, []string{"r-10", "r-7", "r-4", "r-1"}},
		{2, []State{Applied, Reverted}, []string{"r-12", "r-11"}},
		{-1, []State{Applied}, []string{"r-11", "r-8", "r-5", "r-2"}},
		{0, []State{Failed}, []string{}},
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

func TestAudit(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	explicit := clk.Now().Add(-time.Minute)
	if err := s.AppendAudit(ctx,
		Event{Actor: "U1", Action: "diagnosed", Tenant: "contoso"},
		Event{Actor: "U1", Action: "requested", RequestID: "r-1", At: explicit},
	); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	for i := 0; i < 5; i++ {
		rid := "r-1"
		if i%2 == 1 {
			rid = "r-2"
		}
		if err := s.AppendAudit(ctx, Event{Actor: "c2bot", Action: fmt.Sprint("step", i), RequestID: rid}); err != nil {
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
	act := func(es []Event) []string {
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
	if err := s.AppendAudit(ctx, Event{Action: "ok"}, Event{Actor: "U1"}); err == nil {
		t.Error("AppendAudit accepted an event without an action")
	}
	if got, _ := s.Audit(ctx, 0, ""); len(got) != 7 {
		t.Errorf("a rejected AppendAudit wrote: %d events", len(got))
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	now := clk.Now()

	if _, ok, err := s.OutboxNext(ctx); err != nil || ok {
		t.Errorf("OutboxNext empty = %v %v", ok, err)
	}
	if err := s.Enqueue(ctx,
		OutboxItem{Platform: "slack", Payload: json.RawMessage(`"a"`)},                                    // 1: ready now
		OutboxItem{Platform: "teams", Payload: json.RawMessage(`"b"`), NextAttempt: now.Add(time.Minute)}, // 2: later
		OutboxItem{Platform: "slack", Payload: json.RawMessage(`"c"`), NextAttempt: now.Add(-time.Hour)},  // 3: overdue
		OutboxItem{Platform: "web", Payload: json.RawMessage(`"d"`), CreatedAt: now.Add(-time.Second)},    // 4: ready
	); err != nil {
		t.Fatal(err)
	}
	oids := func(items []OutboxItem) []uint64 {
		out := []uint64{}
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	ready := func(at time.Time, limit int) []OutboxItem {
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
	if err := s.OutboxRetry(ctx, 99, now, "x"); !errors.Is(err, ErrNotFound) {
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
	if err := s.Enqueue(ctx, OutboxItem{Platform: "slack"}, OutboxItem{}); err == nil {
		t.Error("Enqueue accepted an item without a platform")
	}
	if got := ready(now.Add(time.Hour), 0); len(got) != 2 {
		t.Errorf("a rejected Enqueue wrote: %d items", len(got))
	}
	// Ids are never reused.
	if err := s.Enqueue(ctx, OutboxItem{Platform: "slack"}); err != nil {
		t.Fatal(err)
	}
	if got := oids(ready(now.Add(time.Hour), 0)); got[len(got)-1] != 5 {
		t.Errorf("new item id = %v, want 5", got)
	}
}

func TestConversation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	if _, err := s.Conversation(ctx, "teams:19:abc"); !errors.Is(err, ErrNotFound) {
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

func TestFirstSeen(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	const ttl = time.Hour
	seen := func(id string) bool {
		t.Helper()
		ok, err := s.FirstSeen(ctx, id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	count := func() (ids, byTime int) {
		_ = s.db.View(func(tx *bolt.Tx) error {
			ids = tx.Bucket(bucketSeen).Stats().KeyN
			byTime = tx.Bucket(bucketSeenByTime).Stats().KeyN
			return nil
		})
		return
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
	if n, m := count(); n != 1 || m != 1 {
		t.Errorf("after re-recording: %d ids, %d time entries, want 1 and 1", n, m)
	}

	// Pruning: 250 old ids go at most 100 per call.
	for i := 0; i < 250; i++ {
		seen(fmt.Sprint("teams:", i))
	}
	if n, _ := count(); n != 251 {
		t.Fatalf("%d ids, want 251", n)
	}
	clk.Add(ttl + time.Second)
	seen("new-1")
	if n, m := count(); n != 152 || m != 152 {
		t.Errorf("after one pruning call: %d ids, %d time entries, want 152", n, m)
	}
	seen("new-2")
	seen("new-3")
	if n, m := count(); n != 3 || m != 3 {
		t.Errorf("after three pruning calls: %d ids, %d time entries, want 3", n, m)
	}
	if !seen("teams:7") {
		t.Error("pruned id reported as seen")
	}

	if _, err := s.FirstSeen(ctx, "", ttl); err == nil {
		t.Error("FirstSeen accepted an empty id")
	}
	if _, err := s.FirstSeen(ctx, "x", 0); err == nil {
		t.Error("FirstSeen accepted a zero ttl")
	}
}

func TestCanceledContext(t *testing.T) {
	s := openTest(t, nil)
	r := mustCreate(t, s, newReq("contoso", Pending), Changes{})
	before := snapshot(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	noop := func(*Request, *Changes) error { return nil }
	calls := map[string]func() error{
		"Create":          func() error { _, err := s.Create(ctx, newReq("contoso", Pending), Changes{}); return err },
		"Get":             func() error { _, err := s.Get(ctx, r.ID); return err },
		"Transition":      func() error { _, err := s.Transition(ctx, r.ID, []State{Pending}, noop); return err },
		"List":            func() error { _, err := s.List(ctx, 0); return err },
		"Due":             func() error { _, err := s.Due(ctx, time.Now()); return err },
		"NextDue":         func() error { _, _, err := s.NextDue(ctx); return err },
		"Audit":           func() error { _, err := s.Audit(ctx, 0, ""); return err },
		"AppendAudit":     func() error { return s.AppendAudit(ctx, Event{Action: "x"}) },
		"Enqueue":         func() error { return s.Enqueue(ctx, OutboxItem{Platform: "slack"}) },
		"OutboxReady":     func() error { _, err := s.OutboxReady(ctx, time.Now(), 0); return err },
		"OutboxNext":      func() error { _, _, err := s.OutboxNext(ctx); return err },
		"OutboxDone":      func() error { return s.OutboxDone(ctx, 1) },
		"OutboxRetry":     func() error { return s.OutboxRetry(ctx, 1, time.Now(), "x") },
		"PutConversation": func() error { return s.PutConversation(ctx, "k", json.RawMessage(`{}`)) },
		"Conversation":    func() error { _, err := s.Conversation(ctx, "k"); return err },
		"FirstSeen":       func() error { _, err := s.FirstSeen(ctx, "id", time.Hour); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", name, err)
		}
	}
	if !reflect.DeepEqual(before, snapshot(t, s)) {
		t.Error("a call with a canceled context wrote something")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := newReq("contoso", Pending)
	r.DueAt = clk.Now().Add(time.Hour)
	r.Items = json.RawMessage(`{"plan":1}`)
	r = mustCreate(t, s, r, Changes{Audit: []Event{{Action: "requested"}}, Outbox: []OutboxItem{{Platform: "slack"}}})
	if _, err := s.Transition(ctx, r.ID, []State{Pending}, func(r *Request, ch *Changes) error {
		r.State = Applied
		r.DueAt = r.DueAt.Add(time.Hour)
		ch.Audit = append(ch.Audit, Event{Action: "applied"})
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
	before := snapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("reopen lost data:\nbefore %v\nafter  %v", before, after)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil || got.State != Applied || string(got.Items) != `{"plan":1}` {
		t.Errorf("Get after reopen = %+v %v", got, err)
	}
	if due, _ := s.Due(ctx, clk.Now().Add(2*time.Hour)); len(due) != 1 {
		t.Errorf("Due after reopen = %v", ids(due))
	}
	if first, _ := s.FirstSeen(ctx, "Ev1", time.Hour); first {
		t.Error("seen id forgotten across reopen")
	}
	if r2 := mustCreate(t, s, newReq("contoso", Pending), Changes{Audit: []Event{{Action: "requested"}}}); r2.ID != "r-2" {
		t.Errorf("id after reopen = %s, want r-2", r2.ID)
	}
	if ev, _ := s.Audit(ctx, 1, ""); len(ev) != 1 || ev[0].Seq != 3 {
		t.Errorf("audit seq after reopen = %+v, want 3", ev)
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema = %v, want an error", err)
	}
}

func TestConcurrentTransition(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, nil)
	r := mustCreate(t, s, newReq("contoso", Pending), Changes{})
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Transition(ctx, r.ID, []State{Pending}, func(r *Request, ch *Changes) error {
				r.State = Approved
				r.Approver = Person{ID: fmt.Sprint("U", i)}
				ch.Audit = append(ch.Audit, Event{Actor: r.Approver.ID, Action: "approved"})
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrConflict):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflicts != n-1 {
		t.Errorf("%d succeeded and %d conflicted, want 1 and %d", ok, conflicts, n-1)
	}
	ev, _ := s.Audit(ctx, 0, r.ID)
	got, _ := s.Get(ctx, r.ID)
	if len(ev) != 1 || ev[0].Actor != got.Approver.ID {
		t.Errorf("audit = %+v for approver %s, want exactly the winner's event", ev, got.Approver.ID)
	}
}
