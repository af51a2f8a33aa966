package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TransitionPair commits both requests, their due times and the changes
// together, or nothing at all.
func TestTransitionPairIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	parent := newReq("contoso", Applied)
	parent.DueAt = clk.Now().Add(time.Hour)
	parent = mustCreate(t, s, parent, Changes{})
	ext := newReq("contoso", Approved)
	ext.ParentID = parent.ID
	ext.DueAt = clk.Now().Add(10 * time.Minute)
	ext = mustCreate(t, s, ext, Changes{})

	move := func(e, p *Request, ch *Changes) error {
		p.DueAt = p.DueAt.Add(time.Hour)
		e.State, e.DueAt = Applied, time.Time{}
		ch.Audit = append(ch.Audit, Event{Action: "extended", RequestID: p.ID})
		return nil
	}
	// The other request in the wrong state: nothing is written.
	_, _, err := s.TransitionPair(ctx, ext.ID, []State{Approved}, parent.ID, []State{Reverting}, move)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.ID != parent.ID || ce.State != Applied {
		t.Fatalf("err = %v, want a conflict naming %s", err, parent.ID)
	}
	// fn refuses: nothing is written.
	boom := errors.New("refused")
	if _, _, err := s.TransitionPair(ctx, ext.ID, []State{Approved}, parent.ID, []State{Applied},
		func(e, p *Request, ch *Changes) error { p.DueAt = time.Time{}; return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if got, _ := s.Get(ctx, parent.ID); !got.DueAt.Equal(parent.DueAt) {
		t.Fatal("a refused pair transition was written")
	}
	e2, p2, err := s.TransitionPair(ctx, ext.ID, []State{Approved}, parent.ID, []State{Applied}, move)
	if err != nil {
		t.Fatal(err)
	}
	if e2.State != Applied || !p2.DueAt.Equal(parent.DueAt.Add(time.Hour)) {
		t.Fatalf("returned %+v / %+v", e2, p2)
	}
	// The due index follows both: only the parent is due, at its new time.
	due, err := s.Due(ctx, clk.Now().Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != parent.ID {
		t.Fatalf("due = %+v", due)
	}
	if early, _ := s.Due(ctx, clk.Now().Add(90*time.Minute)); len(early) != 0 {
		t.Fatalf("parent still due at its old time: %+v", early)
	}
	events, _ := s.Audit(ctx, 0, parent.ID)
	if len(events) != 1 || events[0].Action != "extended" || events[0].Tenant != "contoso" {
		t.Fatalf("audit = %+v", events)
	}
	// Again: the extension is applied now, so the pair conflicts on it.
	if _, _, err := s.TransitionPair(ctx, ext.ID, []State{Approved}, parent.ID, []State{Applied}, move); !errors.As(err, &ce) || ce.ID != ext.ID {
		t.Fatalf("second run: err = %v", err)
	}
	if _, _, err := s.TransitionPair(ctx, ext.ID, []State{Approved}, ext.ID, []State{Approved}, move); err == nil {
		t.Fatal("a pair naming one request twice was accepted")
	}
}

// Lease is stored as given and comes back from Get, Due and List.
func TestLeaseRoundTrips(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	r := newReq("contoso", Applying)
	r.DueAt = clk.Now()
	r = mustCreate(t, s, r, Changes{})
	if _, err := s.Transition(ctx, r.ID, []State{Applying}, func(r *Request, _ *Changes) error {
		r.Lease = "owner-1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, r.ID)
	due, _ := s.Due(ctx, clk.Now())
	list, _ := s.List(ctx, 0, Applying)
	if got.Lease != "owner-1" || len(due) != 1 || due[0].Lease != "owner-1" || len(list) != 1 || list[0].Lease != "owner-1" {
		t.Fatalf("lease lost: get %q due %+v list %+v", got.Lease, due, list)
	}
}
