package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestListAuditFiltersAndPages(t *testing.T) {
	clk := newClock()
	s := openTest(t, clk)
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
		if err := s.AppendAudit(ctx, Event{Actor: "U1", Action: "a", Tenant: tenant, RequestID: req}); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
	}
	seqs := func(es []Event) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	tests := []struct {
		name string
		f    AuditFilter
		want []uint64
	}{
		{"all", AuditFilter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"newest page", AuditFilter{Limit: 3}, []uint64{8, 9, 10}},
		{"page before 8", AuditFilter{Limit: 3, BeforeSeq: 8}, []uint64{5, 6, 7}},
		{"last page", AuditFilter{Limit: 3, BeforeSeq: 3}, []uint64{1, 2}},
		{"past the end", AuditFilter{Limit: 3, BeforeSeq: 1}, nil},
		{"tenant", AuditFilter{Tenants: []string{"fabrikam"}}, []uint64{2, 4, 6, 8, 10}},
		{"request", AuditFilter{RequestID: "r-1"}, []uint64{1, 2, 3, 4, 5}},
		{"since", AuditFilter{Since: start.Add(7 * time.Hour)}, []uint64{8, 9, 10}},
		{"combined", AuditFilter{RequestID: "r-2", Tenants: []string{"contoso"}, Limit: 2}, []uint64{7, 9}},
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

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c2bot.db")
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open created a missing file")
	}
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AppendAudit(context.Background(), Event{Actor: "U1", Action: "requested"}); err != nil {
		t.Fatal(err)
	}
	// While the writer holds the file, a reader fails fast with ErrLocked.
	if _, err := Open(path, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open beside a writer: %v, want ErrLocked", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("two readers cannot share the file: %v", err)
	}
	defer r2.Close()
	ev, err := r2.ListAudit(context.Background(), AuditFilter{})
	if err != nil || len(ev) != 1 || ev[0].Action != "requested" {
		t.Fatalf("events = %+v, %v", ev, err)
	}
	if err := r1.AppendAudit(context.Background(), Event{Actor: "x", Action: "y"}); err == nil {
		t.Fatal("a read-only store accepted a write")
	}
}
