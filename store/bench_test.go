package store

import (
	"context"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fill creates n requests in one transaction (Create would fsync each one);
// every hundredth is due at base, the rest later.
func fill(b *testing.B, s *Store, n int, base time.Time) {
	b.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			r := newReq("contoso", Applied)
			r.CreatedAt = base
			r.DueAt = base.Add(time.Duration(i%100) * time.Hour)
			if _, err := s.create(tx, r, Changes{Audit: []Event{{Actor: "U1", Action: "requested"}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTransition measures one committed transition (fsync included) on
// a store holding 10k requests: move the due time and append an audit event.
func BenchmarkTransition(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, nil)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fill(b, s, 10_000, base)
	from := []State{Applied}
	i := 0
	for b.Loop() {
		i++
		_, err := s.Transition(ctx, "r-5000", from, func(r *Request, ch *Changes) error {
			r.DueAt = base.Add(time.Duration(i) * time.Second)
			ch.Audit = append(ch.Audit, Event{Actor: "c2bot", Action: "retry"})
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDue measures a scheduler wake-up on 10k requests of which 100
// are due.
func BenchmarkDue(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, nil)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fill(b, s, 10_000, base)
	for b.Loop() {
		rs, err := s.Due(ctx, base)
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) != 100 {
			b.Fatalf("Due = %d requests, want 100", len(rs))
		}
	}
}

// BenchmarkNextDue measures finding the scheduler's next wake-up time.
func BenchmarkNextDue(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, nil)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fill(b, s, 10_000, base)
	for b.Loop() {
		if _, ok, err := s.NextDue(ctx); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// fillAudit appends n audit events in one transaction, alternating tenants.
func fillAudit(b *testing.B, s *Store, n int) {
	b.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			tenant := "contoso"
			if i%2 == 1 {
				tenant = "fabrikam"
			}
			if err := s.putEvent(tx, Event{Actor: "U1", Action: "requested", Tenant: tenant, RequestID: "r-1", Detail: "for 8h: a change"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkListAuditPage is the chat's "audit" (and its More button): the
// newest 21 events of one tenant, from the middle of a 100k-event log.
func BenchmarkListAuditPage(b *testing.B) {
	s := openTest(b, nil)
	fillAudit(b, s, 100_000)
	ctx := context.Background()
	for b.Loop() {
		ev, err := s.ListAudit(ctx, AuditFilter{Tenants: []string{"fabrikam"}, BeforeSeq: 50_000, Limit: 21})
		if err != nil || len(ev) != 21 {
			b.Fatal(err, len(ev))
		}
	}
}

// BenchmarkListAuditAll is `c2bot audit`: every event of a 100k-event log.
func BenchmarkListAuditAll(b *testing.B) {
	s := openTest(b, nil)
	fillAudit(b, s, 100_000)
	ctx := context.Background()
	for b.Loop() {
		ev, err := s.ListAudit(ctx, AuditFilter{})
		if err != nil || len(ev) != 100_000 {
			b.Fatal(err, len(ev))
		}
	}
}
