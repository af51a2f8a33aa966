package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/postgres/pgtest"
)

// TestMigrateStore moves a bbolt file with requests in flight into
// PostgreSQL and checks the copy record by record, ids and sequences kept.
func TestMigrateStore(t *testing.T) {
	ctx := context.Background()
	dst := pgtest.Database(t)
	path := filepath.Join(t.TempDir(), "c2bot.db")
	now := time.Now().Truncate(time.Second)
	src, err := store.Open(path, store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// r-1 reverted, r-2 applied with a revert due, r-3 pending.
	for i, st := range []store.State{store.Reverted, store.Applied, store.Pending} {
		r := store.Request{Tenant: "contoso", State: st, Requester: store.Person{ID: "U1"}, Items: json.RawMessage(`[{"kind":"security_defaults"}]`)}
		if st != store.Reverted {
			r.DueAt = now.Add(time.Duration(i) * time.Hour)
		}
		if _, err := src.Create(ctx, r, store.Changes{
			Audit:  []store.Event{{Actor: "U1", Action: "requested"}},
			Outbox: []store.OutboxItem{{Platform: "slack", Payload: json.RawMessage(`"card"`)}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.OutboxDone(ctx, 3); err != nil { // the newest item delivered: the sequence is past every id left
		t.Fatal(err)
	}
	// A delivery of item 1 started and failed: the new store must know, or it would post the notice again.
	tried := now.Add(-time.Minute)
	if err := src.OutboxTry(ctx, 1, tried); err != nil {
		t.Fatal(err)
	}
	if err := src.OutboxRetry(ctx, 1, now, "slack: 503"); err != nil {
		t.Fatal(err)
	}
	if err := src.PutConversation(ctx, "teams:19:abc", json.RawMessage(`{"conv":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.FirstSeen(ctx, "slack:Ev1", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	want, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"migrate-store", "--from", path, "--to", dst}, &out, &errOut, func(string) string { return "" }); err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "copied 3 requests, 3 audit events, 2 outbox items, 1 conversations and 1 delivery ids") {
		t.Errorf("output %q", out.String())
	}
	pg, err := openStore(ctx, dst, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	got, err := pg.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d requests copied", len(got))
	}
	for i, r := range got { // newest first
		w := want.Requests[len(want.Requests)-1-i]
		if r.ID != w.ID || r.State != w.State || !r.DueAt.Equal(w.DueAt) || string(r.Items) != string(w.Items) {
			t.Errorf("request %s = %+v, want %+v", w.ID, r, w)
		}
	}
	due, _ := pg.Due(ctx, now.Add(time.Hour))
	if len(due) != 1 || due[0].ID != "r-2" {
		t.Errorf("due after the move = %v, want r-2", due)
	}
	ev, _ := pg.Audit(ctx, 0, "")
	if len(ev) != 3 || ev[2].Seq != 3 || ev[2].RequestID != "r-3" {
		t.Errorf("audit = %+v", ev)
	}
	ob, _ := pg.OutboxReady(ctx, now, 0)
	if ids := []uint64{ob[0].ID, ob[1].ID}; len(ob) != 2 || !reflect.DeepEqual(ids, []uint64{1, 2}) {
		t.Errorf("outbox = %+v", ob)
	} else if !ob[0].Tried.Equal(tried) || ob[0].Attempts != 1 || ob[0].LastError != "slack: 503" || !ob[1].Tried.IsZero() {
		t.Errorf("outbox after the move = %+v, want item 1 tried at %v after one attempt, item 2 never tried", ob, tried)
	}
	if ref, err := pg.Conversation(ctx, "teams:19:abc"); err != nil || string(ref) != `{"conv":1}` {
		t.Errorf("conversation = %s %v", ref, err)
	}
	if first, _ := pg.FirstSeen(ctx, "slack:Ev1", 24*time.Hour); first {
		t.Error("a delivery seen before the move is new after it")
	}
	// Sequences carry on where the file stopped.
	r4, err := pg.Create(ctx, store.Request{Tenant: "contoso", State: store.Pending}, store.Changes{Audit: []store.Event{{Action: "requested"}}})
	if err != nil || r4.ID != "r-4" {
		t.Errorf("next request = %s %v, want r-4", r4.ID, err)
	}
	if err := pg.Enqueue(ctx, store.OutboxItem{Platform: "slack"}); err != nil {
		t.Fatal(err)
	}
	if ob, _ := pg.OutboxReady(ctx, now, 0); ob[len(ob)-1].ID != 4 {
		t.Errorf("next outbox id = %d, want 4 (3 was used before the move)", ob[len(ob)-1].ID)
	}

	// The audit export reads the database while it is in use.
	var audit bytes.Buffer
	getenv := func(k string) string {
		if k == "C2_DB" {
			return dst
		}
		return ""
	}
	if err := run(ctx, []string{"audit", "--format", "json", "--request", "r-3"}, &audit, &errOut, getenv); err != nil {
		t.Fatalf("audit on PostgreSQL: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(audit.String(), `"requested"`) || strings.Contains(audit.String(), `"r-2"`) {
		t.Errorf("audit export = %s", audit.String())
	}

	// A second run into the same database refuses and writes nothing.
	err = run(ctx, []string{"migrate-store", "--from", path, "--to", dst}, &out, &errOut, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "only fills an empty database") {
		t.Errorf("second migrate-store = %v, want a refusal", err)
	}
	if n, _ := pg.List(ctx, 0); len(n) != 4 {
		t.Errorf("the refused run changed the requests: %d", len(n))
	}
}

func TestMigrateStoreRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--from", "a.db"},
		{"--to", "postgres://x/y"},
		{"--from", "postgres://x/y", "--to", "postgres://x/z"},
		{"--from", "a.db", "--to", "b.db"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"migrate-store"}, args...), &out, &errOut, func(string) string { return "" })
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("migrate-store %v = %v, want a usage error", args, err)
		}
	}
}
