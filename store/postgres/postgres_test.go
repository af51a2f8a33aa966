package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c2bot/c2bot/store"
	"github.com/c2bot/c2bot/store/postgres"
	"github.com/c2bot/c2bot/store/postgres/pgtest"
	"github.com/c2bot/c2bot/store/storetest"
)

func openPG(t testing.TB, dsn string, opts store.Options) (store.Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TestConformance runs the store contract's suite against PostgreSQL.
func TestConformance(t *testing.T) {
	pgtest.Server(t)
	storetest.Run(t, storetest.Factory{
		New:  func(t *testing.T) string { return pgtest.Database(t) },
		Open: openPG,
	})
}

func TestMigrationsAreContiguous(t *testing.T) {
	if v := postgres.SchemaVersion(); v < 1 {
		t.Errorf("SchemaVersion = %d", v)
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	dsn := pgtest.Database(t)
	s, err := openPG(t, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO c2bot_schema (version, name) VALUES ($1, 'from the future')", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if _, err := openPG(t, dsn, store.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema = %v, want an error saying it is newer", err)
	}
}

// TestMigratesOutboxFromSchema1: a database an older build left at schema
// 1, with an item in its outbox, is brought to the current schema by Open;
// the item reads as never tried, with everything else it had, and can be
// marked tried afterwards.
func TestMigratesOutboxFromSchema1(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	if err := postgres.MigrateTo(ctx, dsn, 1); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	hasTried := func() bool {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'c2bot_outbox' AND column_name = 'tried_ns'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if hasTried() {
		t.Fatal("schema 1 already has tried_ns")
	}
	next := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// The row as a schema-1 build wrote it: no tried_ns column, no "tried" in the body.
	body := `{"id":1,"platform":"slack","request_id":"r-1","payload":"card","created_at":"2025-03-01T11:00:00Z","next_attempt":"2025-03-01T12:00:00Z","attempts":2,"last_error":"slack: 503"}`
	if _, err := conn.Exec(ctx, `INSERT INTO c2bot_outbox (id, request_id, next_ns, attempts, last_error, body) VALUES (1, 'r-1', $1, 2, 'slack: 503', $2)`,
		next.UnixNano(), body); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "UPDATE c2bot_counters SET value = 1 WHERE name = 'outbox'"); err != nil {
		t.Fatal(err)
	}

	s, err := openPG(t, dsn, store.Options{})
	if err != nil {
		t.Fatalf("Open of a schema-1 database: %v", err)
	}
	defer s.Close()
	var version int
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM c2bot_schema").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != postgres.SchemaVersion() || version < 2 || !hasTried() {
		t.Fatalf("after Open: schema %d (tried_ns %v), want %d with tried_ns", version, hasTried(), postgres.SchemaVersion())
	}
	ob, err := s.OutboxReady(ctx, next, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ob) != 1 {
		t.Fatalf("outbox after the upgrade = %+v, want the one item", ob)
	}
	it := ob[0]
	if !it.Tried.IsZero() || it.ID != 1 || it.RequestID != "r-1" || it.Attempts != 2 || it.LastError != "slack: 503" ||
		!it.NextAttempt.Equal(next) || string(it.Payload) != `"card"` {
		t.Errorf("item after the upgrade = %+v, want it as written and never tried", it)
	}
	started := next.Add(time.Second)
	if err := s.OutboxTry(ctx, 1, started); err != nil {
		t.Fatal(err)
	}
	if ob, err := s.OutboxReady(ctx, next, 0); err != nil || len(ob) != 1 || !ob[0].Tried.Equal(started) {
		t.Errorf("after OutboxTry = %+v %v, want Tried %v", ob, err, started)
	}
	if err := s.Enqueue(ctx, store.OutboxItem{Platform: "slack"}); err != nil {
		t.Fatal(err)
	}
	if ob, err := s.OutboxReady(ctx, time.Now().Add(time.Hour), 0); err != nil || len(ob) != 2 || ob[1].ID != 2 || !ob[1].Tried.IsZero() {
		t.Errorf("new item after the upgrade = %+v %v, want id 2 never tried", ob, err)
	}
}

// TestConcurrentOpenMigratesOnce starts several replicas on an empty
// database at once: the advisory lock lets one migrate, the others find it done.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.Database(t)
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			s, err := openPG(t, dsn, store.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM c2bot_schema").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != postgres.SchemaVersion() {
		t.Errorf("%d schema rows, want %d (each migration once)", n, postgres.SchemaVersion())
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := postgres.Open(ctx, "postgres://c2bot:s3cret-password@127.0.0.1:1/c2bot?connect_timeout=2", store.Options{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of an unreachable server = %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
	if _, err := postgres.Open(ctx, "postgres://u:s3cret@[::1", store.Options{}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of a bad URL = %v, want an error without the password", err)
	}
}

// TestWakes: a write in one process's store wakes another's listener.
func TestWakes(t *testing.T) {
	dsn := pgtest.Database(t)
	a, err := openPG(t, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := openPG(t, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wakes := b.(store.Shared).Wakes()
	// The first wake says the listener is connected.
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake after connecting")
	}
	if _, err := a.Create(context.Background(), store.Request{Tenant: "contoso", State: store.Pending, DueAt: time.Now()}, store.Changes{}); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-wakes:
		if w&store.WakeDue == 0 {
			t.Errorf("wake = %v, want WakeDue", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a new due time in another store did not wake this one")
	}
	if err := a.Enqueue(context.Background(), store.OutboxItem{Platform: "slack"}); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-wakes:
		if w&store.WakeOutbox == 0 {
			t.Errorf("wake = %v, want WakeOutbox", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a new outbox item in another store did not wake this one")
	}
}

// TestReconnectsAfterRestart: a PostgreSQL restart makes calls fail with
// ErrUnavailable while it is down; afterwards the same Store works again and
// its listener, reconnected, wakes the scheduler (it may have missed
// notifications) and hears new ones.
func TestReconnectsAfterRestart(t *testing.T) {
	cl := pgtest.StartCluster(t)
	dsn := pgtest.DatabaseOn(t, cl.URL)
	s, err := openPG(t, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wakes := s.(store.Shared).Wakes()
	waitWake := func(what string) store.Wake {
		t.Helper()
		select {
		case w := <-wakes:
			return w
		case <-time.After(20 * time.Second):
			t.Fatalf("no wake %s", what)
		}
		return 0
	}
	waitWake("after connecting")
	cl.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping with the server down = %v, want ErrUnavailable", err)
	}
	if _, err := s.Create(ctx, store.Request{Tenant: "contoso", State: store.Pending}, store.Changes{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Create with the server down = %v, want ErrUnavailable", err)
	}
	cl.Start()
	if w := waitWake("after reconnecting"); w != store.WakeDue|store.WakeOutbox {
		t.Errorf("wake after reconnecting = %v, want both kinds", w)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.Create(context.Background(), store.Request{Tenant: "contoso", State: store.Pending, DueAt: time.Now()}, store.Changes{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Create after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if w := waitWake("for a write after the restart"); w&store.WakeDue == 0 {
		t.Errorf("wake = %v, want WakeDue", w)
	}
}

// TestReadOnly: a read-only Open migrates nothing and the server refuses writes.
func TestReadOnly(t *testing.T) {
	dsn := pgtest.Database(t)
	if _, err := openPG(t, dsn, store.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "not a c2bot database") {
		t.Errorf("read-only Open of an empty database = %v, want not a c2bot database", err)
	}
	w, err := openPG(t, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AppendAudit(context.Background(), store.Event{Action: "requested"}); err != nil {
		t.Fatal(err)
	}
	r, err := openPG(t, dsn, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if ev, err := r.ListAudit(context.Background(), store.AuditFilter{}); err != nil || len(ev) != 1 {
		t.Errorf("read-only ListAudit = %v %v", ev, err)
	}
	if err := r.AppendAudit(context.Background(), store.Event{Action: "x"}); err == nil {
		t.Error("a read-only store accepted a write")
	}
}
