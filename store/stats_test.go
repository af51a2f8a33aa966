package store

import (
	"context"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	clk := newClock()
	s := openTest(t, clk)
	ctx := context.Background()
	now := clk.Now()

	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PendingReverts != 0 || !st.NextRevert.IsZero() || st.OutboxDepth != 0 || !st.OldestUndelivered.IsZero() || len(st.ByState) != 0 {
		t.Fatalf("empty store stats = %+v", st)
	}

	pending := newReq("contoso", Pending)
	pending.DueAt = now.Add(time.Minute) // approval expiry: not a revert
	mustCreate(t, s, pending, Changes{})
	late := newReq("contoso", Applied)
	late.DueAt = now.Add(2 * time.Hour)
	mustCreate(t, s, late, Changes{})
	early := newReq("contoso", RevertFailed)
	early.DueAt = now.Add(30 * time.Minute)
	mustCreate(t, s, early, Changes{})
	mustCreate(t, s, newReq("contoso", Reverted), Changes{})
	if err := s.Enqueue(ctx, OutboxItem{Platform: "slack", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if err := s.Enqueue(ctx, OutboxItem{Platform: "slack", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}

	st, err = s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[State]int{Pending: 1, Applied: 1, RevertFailed: 1, Reverted: 1}
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
