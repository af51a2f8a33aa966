package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

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
