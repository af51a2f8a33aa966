// Package postgres is the store backend that several c2bot replicas share:
// the same records and the same contract as the bbolt file (store.Backend),
// kept in PostgreSQL. Every transition is a compare-and-swap on the
// request's row (SELECT … FOR UPDATE, then UPDATE … WHERE state = ANY(…)),
// committed in one transaction with the due time, the audit events and the
// outbox items it adds. Outbox items are claimed with FOR UPDATE SKIP LOCKED
// and a lease; LISTEN/NOTIFY tells every replica when a due time or an
// outbox item was written. The schema is migrated at Open under an advisory
// lock, and a database written by a newer build is refused.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/c2bot/c2bot/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// notifyChannel is the LISTEN/NOTIFY channel; the payload is a store.Wake.
const notifyChannel = "c2bot"

// migrationLock is the pg_advisory_lock key held while the schema is
// migrated, so replicas starting together migrate once ("c2bt").
const migrationLock = 0x63326274

// seenPruneBatch bounds how many expired delivery ids one FirstSeen call
// deletes (as in the bbolt store).
const seenPruneBatch = 100

// Listener reconnect backoff bounds.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// Store is a PostgreSQL database opened by Open. It is safe for concurrent
// use, and by several processes at once.
type Store struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	where  string // host and database, for errors (never the password)
	wakes  chan store.Wake
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ store.Backend = (*Store)(nil)
	_ store.Shared  = (*Store)(nil)
)

// IsURL reports whether dsn names a PostgreSQL database (postgres:// or
// postgresql://) rather than a bbolt file.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database at dsn (a postgres:// URL), migrates its
// schema under an advisory lock, and starts listening for other replicas'
// writes. With Options.ReadOnly (audit export) it migrates nothing, checks
// the schema, and the server refuses every write. It fails when the database was migrated by a newer build, and
// with an error wrapping store.ErrUnavailable when it cannot connect. Errors
// never contain the password.
func Open(ctx context.Context, dsn string, opts store.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the URL; say only what is wrong.
		return nil, errors.New("open postgres: the database URL cannot be parsed")
	}
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.ReadOnly {
		// The server itself refuses every write on these connections.
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", where, dbErr(err))
	}
	if opts.ReadOnly {
		if err := checkSchema(ctx, pool); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open %s: %w", where, err)
		}
		s := &Store{pool: pool, now: now, where: where, wakes: make(chan store.Wake, 1), cancel: func() {}, done: make(chan struct{})}
		close(s.done)
		return s, nil
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s := &Store{pool: pool, now: now, where: where, wakes: make(chan store.Wake, 1), cancel: cancel, done: make(chan struct{})}
	go s.listen(lctx, cfg.ConnConfig.Copy())
	return s, nil
}

// Close stops listening and closes every connection.
func (s *Store) Close() error {
	s.cancel()
	<-s.done
	s.pool.Close()
	return nil
}

// String names the database (host, port and database; no credentials).
func (s *Store) String() string { return s.where }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.where, dbErr(err))
	}
	return nil
}

// Wakes receives a value when any replica commits a new due time or outbox
// item, and after the listener reconnects.
func (s *Store) Wakes() <-chan store.Wake { return s.wakes }

func (s *Store) wake(w store.Wake) {
	select {
	case s.wakes <- w:
	default: // one pending wake-up is enough: the reader re-reads the store
	}
}

// listen holds one connection in LISTEN, reconnecting with backoff.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(s.done)
	wait := listenRetryMin
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			if err == nil {
				wait = listenRetryMin
				s.wake(store.WakeDue | store.WakeOutbox) // some may have been missed
				for {
					n, err := conn.WaitForNotification(ctx)
					if err != nil {
						break
					}
					w, _ := strconv.Atoi(n.Payload)
					s.wake(store.Wake(w))
				}
			}
			_ = conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, listenRetryMax)
	}
}

// dbErr classifies an error from pgx: a lost or refused connection, a
// server shutting down or out of connections wraps store.ErrUnavailable; a
// context error is returned as is.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutdown, cannot connect now
			pe.Code == "53300": // too many connections
			return fmt.Errorf("%w: %s", store.ErrUnavailable, pe.Message)
		}
		return err
	}
	// Anything else from the driver is the connection itself (refused,
	// reset, closed, timed out).
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

// migration is one embedded schema file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order; versions are
// 1, 2, 3, … with no gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its version", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are checked by the tests
	}
	return len(ms)
}

// checkSchema is Open's check when read-only: the schema exists and is not
// newer than this build; nothing is migrated.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var cur int
	err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM c2bot_schema").Scan(&cur)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return errors.New("not a c2bot database (no c2bot_schema table)")
	}
	if err != nil {
		return fmt.Errorf("schema version: %w", dbErr(err))
	}
	switch {
	case cur == 0:
		return errors.New("not a c2bot database (no schema version)")
	case cur > SchemaVersion():
		return fmt.Errorf("schema version %d is newer than this build supports (%d)", cur, SchemaVersion())
	}
	return nil
}

// migrate brings the schema to SchemaVersion under an advisory lock, each
// migration in its own transaction with its version row.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrateTo(ctx, pool, SchemaVersion())
}

// migrateTo is migrate stopping at version target (the tests build a
// database of an older schema with it).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, target int) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if target < 1 || target > len(ms) {
		return fmt.Errorf("no schema version %d (this build knows 1 to %d)", target, len(ms))
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return dbErr(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("lock schema: %w", dbErr(err))
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS c2bot_schema (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("schema table: %w", dbErr(err))
	}
	var cur int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM c2bot_schema").Scan(&cur); err != nil {
		return fmt.Errorf("schema version: %w", dbErr(err))
	}
	if cur > len(ms) {
		return fmt.Errorf("schema version %d is newer than this build supports (%d)", cur, len(ms))
	}
	for _, m := range ms[min(cur, target):target] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO c2bot_schema (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to %s: %w", m.name, dbErr(err))
		}
	}
	return nil
}

// ns is t in Unix nanoseconds, clamped to int64 like the bbolt keys.
func ns(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// dueNS is the due_ns column for a DueAt: NULL when zero.
func dueNS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := ns(t)
	return &n
}

// triedNS is the tried_ns column for a Tried: 0 when zero (so an instant of
// exactly the Unix epoch reads back as never tried).
func triedNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ns(t)
}

// triedTime is the Tried of a tried_ns column: zero for 0.
func triedTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func stateStrings(states []store.State) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

// validRequest checks the fields every stored request needs (as the bbolt store).
func validRequest(r *store.Request) error {
	switch {
	case r.State == "":
		return errors.New("request has no state")
	case r.Tenant == "":
		return errors.New("request has no tenant")
	}
	return nil
}

// inTx runs fn in a transaction and commits it.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx, wake *store.Wake) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return dbErr(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var wake store.Wake
	if err := fn(tx, &wake); err != nil {
		return err
	}
	if wake != 0 {
		// Delivered to every listener when the transaction commits.
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, strconv.Itoa(int(wake))); err != nil {
			return dbErr(err)
		}
	}
	return dbErr(tx.Commit(ctx))
}

// next takes the next value of a gapless counter; the row stays locked
// until the transaction ends, so values follow commit order.
func next(ctx context.Context, tx pgx.Tx, name string) (uint64, error) {
	var v int64
	err := tx.QueryRow(ctx, "UPDATE c2bot_counters SET value = value + 1 WHERE name = $1 RETURNING value", name).Scan(&v)
	if err != nil {
		return 0, dbErr(err)
	}
	return uint64(v), nil
}

// Create stores a new request, assigning its ID ("r-<sequence>"), together
// with ch, in one transaction. See store.(*Store).Create.
func (s *Store) Create(ctx context.Context, r store.Request, ch store.Changes) (store.Request, error) {
	if err := ctx.Err(); err != nil {
		return store.Request{}, err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	if err := validRequest(&r); err != nil {
		return store.Request{}, fmt.Errorf("create request: %w", err)
	}
	if err := s.validChanges(ch); err != nil {
		return store.Request{}, fmt.Errorf("create request: %w", err)
	}
	err := s.inTx(ctx, func(tx pgx.Tx, wake *store.Wake) error {
		seq, err := next(ctx, tx, "request")
		if err != nil {
			return err
		}
		r.ID = "r-" + strconv.FormatUint(seq, 10)
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO c2bot_requests (id, seq, state, tenant, due_ns, body) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.ID, int64(seq), string(r.State), r.Tenant, dueNS(r.DueAt), body); err != nil {
			return dbErr(err)
		}
		if !r.DueAt.IsZero() {
			*wake |= store.WakeDue
		}
		return s.applyChanges(ctx, tx, wake, &r, ch)
	})
	if err != nil {
		return store.Request{}, fmt.Errorf("create request: %w", err)
	}
	return r, nil
}

// validChanges checks ch before anything is written.
func (s *Store) validChanges(ch store.Changes) error {
	for _, e := range ch.Audit {
		if e.Action == "" {
			return errors.New("audit event has no action")
		}
	}
	for _, it := range ch.Outbox {
		if it.Platform == "" {
			return errors.New("outbox item has no platform")
		}
	}
	return nil
}

// applyChanges appends ch's audit events and outbox items, defaulting
// request fields from r.
func (s *Store) applyChanges(ctx context.Context, tx pgx.Tx, wake *store.Wake, r *store.Request, ch store.Changes) error {
	for _, e := range ch.Audit {
		if e.RequestID == "" {
			e.RequestID = r.ID
		}
		if e.Tenant == "" {
			e.Tenant = r.Tenant
		}
		if err := s.putEvent(ctx, tx, e); err != nil {
			return err
		}
	}
	for _, it := range ch.Outbox {
		if it.RequestID == "" {
			it.RequestID = r.ID
		}
		if err := s.putOutbox(ctx, tx, it); err != nil {
			return err
		}
		*wake |= store.WakeOutbox
	}
	return nil
}

func (s *Store) putEvent(ctx context.Context, tx pgx.Tx, e store.Event) error {
	if e.Action == "" {
		return errors.New("audit event has no action")
	}
	seq, err := next(ctx, tx, "audit")
	if err != nil {
		return err
	}
	e.Seq = seq
	if e.At.IsZero() {
		e.At = s.now()
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO c2bot_audit (seq, request_id, body) VALUES ($1, $2, $3)", int64(seq), e.RequestID, body); err != nil {
		return fmt.Errorf("store audit event %d: %w", seq, dbErr(err))
	}
	return nil
}

func (s *Store) putOutbox(ctx context.Context, tx pgx.Tx, it store.OutboxItem) error {
	if it.Platform == "" {
		return errors.New("outbox item has no platform")
	}
	id, err := next(ctx, tx, "outbox")
	if err != nil {
		return err
	}
	it.ID = id
	if it.CreatedAt.IsZero() {
		it.CreatedAt = s.now()
	}
	if it.NextAttempt.IsZero() {
		it.NextAttempt = it.CreatedAt
	}
	if err := insertOutbox(ctx, tx, it); err != nil {
		return fmt.Errorf("store outbox item %d: %w", id, err)
	}
	return nil
}

// insertOutbox writes item it, id included, as one row: the columns the
// outbox methods update, and the whole item as the body.
func insertOutbox(ctx context.Context, tx pgx.Tx, it store.OutboxItem) error {
	body, err := json.Marshal(it)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO c2bot_outbox (id, request_id, next_ns, attempts, last_error, tried_ns, body) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		int64(it.ID), it.RequestID, ns(it.NextAttempt), it.Attempts, it.LastError, triedNS(it.Tried), body); err != nil {
		return dbErr(err)
	}
	return nil
}

func decodeRequest(body []byte) (store.Request, error) {
	var r store.Request
	if err := json.Unmarshal(body, &r); err != nil {
		return store.Request{}, fmt.Errorf("decode request: %w", err)
	}
	return r, nil
}

// Get returns the request with that id, or an error wrapping store.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (store.Request, error) {
	if err := ctx.Err(); err != nil {
		return store.Request{}, err
	}
	var body []byte
	err := s.pool.QueryRow(ctx, "SELECT body FROM c2bot_requests WHERE id = $1", id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Request{}, fmt.Errorf("request %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Request{}, fmt.Errorf("request %s: %w", id, dbErr(err))
	}
	return decodeRequest(body)
}

// Transition locks request id's row and, only when its state is one of
// from, calls fn to change it; the row is then updated WHERE state =
// ANY(from), and the due time and ch are committed in the same transaction.
// It returns store.ErrNotFound, a *store.ConflictError, or fn's error
// (nothing is written then). See store.(*Store).Transition.
//
// fn runs while the row is locked: it must decide from the request alone.
func (s *Store) Transition(ctx context.Context, id string, from []store.State, fn func(r *store.Request, ch *store.Changes) error) (store.Request, error) {
	if err := ctx.Err(); err != nil {
		return store.Request{}, err
	}
	if len(from) == 0 {
		return store.Request{}, fmt.Errorf("transition %s: no from states given", id)
	}
	var out store.Request
	err := s.inTx(ctx, func(tx pgx.Tx, wake *store.Wake) error {
		var body []byte
		err := tx.QueryRow(ctx, "SELECT body FROM c2bot_requests WHERE id = $1 FOR UPDATE", id).Scan(&body)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("request %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return dbErr(err)
		}
		r, err := decodeRequest(body)
		if err != nil {
			return fmt.Errorf("request %s: %w", id, err)
		}
		if !slices.Contains(from, r.State) {
			return &store.ConflictError{ID: id, State: r.State}
		}
		oldDue := r.DueAt
		var ch store.Changes
		if err := fn(&r, &ch); err != nil {
			return err
		}
		r.ID = id
		if err := validRequest(&r); err != nil {
			return fmt.Errorf("request %s: %w", id, err)
		}
		if err := s.validChanges(ch); err != nil {
			return err
		}
		if body, err = json.Marshal(r); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE c2bot_requests SET state = $2, tenant = $3, due_ns = $4, body = $5
			WHERE id = $1 AND state = ANY($6)`, id, string(r.State), r.Tenant, dueNS(r.DueAt), body, stateStrings(from))
		if err != nil {
			return fmt.Errorf("store request %s: %w", id, dbErr(err))
		}
		if tag.RowsAffected() != 1 {
			// Cannot happen while the row is locked; never write past it.
			return &store.ConflictError{ID: id, State: r.State}
		}
		if !r.DueAt.Equal(oldDue) {
			*wake |= store.WakeDue
		}
		if err := s.applyChanges(ctx, tx, wake, &r, ch); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return store.Request{}, err
	}
	return out, nil
}

// queryRequests runs a query returning request bodies.
func (s *Store) queryRequests(ctx context.Context, sql string, args ...any) ([]store.Request, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbErr(err)
	}
	out := make([]store.Request, 0, len(bodies))
	for _, b := range bodies {
		r, err := decodeRequest(b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// limitClause is " LIMIT n", or nothing when limit <= 0.
func limitClause(limit int) string {
	if limit <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(limit)
}

// List returns requests, newest first, whose state is in states (all when
// states is empty), at most limit of them (all when limit <= 0).
func (s *Store) List(ctx context.Context, limit int, states ...store.State) ([]store.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.Request
	var err error
	if len(states) == 0 {
		out, err = s.queryRequests(ctx, "SELECT body FROM c2bot_requests ORDER BY seq DESC"+limitClause(limit))
	} else {
		out, err = s.queryRequests(ctx, "SELECT body FROM c2bot_requests WHERE state = ANY($1) ORDER BY seq DESC"+limitClause(limit),
			stateStrings(states))
	}
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Due returns the requests whose DueAt is not after now, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time) ([]store.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := s.queryRequests(ctx, `SELECT body FROM c2bot_requests WHERE due_ns <= $1 ORDER BY due_ns, id COLLATE "C"`, ns(now))
	if err != nil {
		return nil, fmt.Errorf("due requests: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// NextDue returns the earliest DueAt of any request; ok is false when none
// is due ever.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	var n *int64
	if err := s.pool.QueryRow(ctx, "SELECT min(due_ns) FROM c2bot_requests").Scan(&n); err != nil {
		return time.Time{}, false, fmt.Errorf("next due: %w", dbErr(err))
	}
	if n == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, *n), true, nil
}

// Audit returns the last limit events, oldest first (all when limit <= 0),
// optionally only those of one request.
func (s *Store) Audit(ctx context.Context, limit int, requestID string) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if requestID == "" {
		rows, err = s.pool.Query(ctx, "SELECT body FROM c2bot_audit ORDER BY seq DESC"+limitClause(limit))
	} else {
		rows, err = s.pool.Query(ctx, "SELECT body FROM c2bot_audit WHERE request_id = $1 ORDER BY seq DESC"+limitClause(limit), requestID)
	}
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", dbErr(err))
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", dbErr(err))
	}
	var out []store.Event
	for i := len(bodies) - 1; i >= 0; i-- {
		var e store.Event
		if err := json.Unmarshal(bodies[i], &e); err != nil {
			return nil, fmt.Errorf("read audit: decode event: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// AppendAudit records events outside a transition. Each needs an Action; a
// zero At is set to now.
func (s *Store) AppendAudit(ctx context.Context, events ...store.Event) error {
	if err := s.validChanges(store.Changes{Audit: events}); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("append audit: %w", err)
	}
	err := s.inTx(ctx, func(tx pgx.Tx, _ *store.Wake) error {
		for _, e := range events {
			if err := s.putEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// Enqueue adds outbox items outside a transition. Each needs a Platform; a
// zero CreatedAt is set to now and a zero NextAttempt to CreatedAt.
func (s *Store) Enqueue(ctx context.Context, items ...store.OutboxItem) error {
	if err := s.validChanges(store.Changes{Outbox: items}); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("enqueue: %w", err)
	}
	err := s.inTx(ctx, func(tx pgx.Tx, wake *store.Wake) error {
		for _, it := range items {
			if err := s.putOutbox(ctx, tx, it); err != nil {
				return err
			}
			*wake |= store.WakeOutbox
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// collectOutbox reads rows of (id, next_ns, attempts, last_error, tried_ns,
// body); the columns, which OutboxClaim, OutboxRetry and OutboxTry update,
// win over the body written at insert.
func collectOutbox(rows pgx.Rows) ([]store.OutboxItem, error) {
	var out []store.OutboxItem
	for rows.Next() {
		var (
			id, next, tried int64
			attempts        int
			lastErr         string
			body            []byte
		)
		if err := rows.Scan(&id, &next, &attempts, &lastErr, &tried, &body); err != nil {
			rows.Close()
			return nil, dbErr(err)
		}
		var it store.OutboxItem
		if err := json.Unmarshal(body, &it); err != nil {
			rows.Close()
			return nil, fmt.Errorf("decode outbox item %d: %w", id, err)
		}
		it.ID = uint64(id)
		it.NextAttempt = time.Unix(0, next)
		it.Attempts = attempts
		it.LastError = lastErr
		it.Tried = triedTime(tried)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// OutboxReady returns up to limit items whose NextAttempt is not after now,
// oldest first, without claiming them. A limit <= 0 means no limit.
func (s *Store) OutboxReady(ctx context.Context, now time.Time, limit int) ([]store.OutboxItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, next_ns, attempts, last_error, tried_ns, body FROM c2bot_outbox
		WHERE next_ns <= $1 ORDER BY id`+limitClause(limit), ns(now))
	if err != nil {
		return nil, fmt.Errorf("outbox ready: %w", dbErr(err))
	}
	out, err := collectOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("outbox ready: %w", err)
	}
	return out, nil
}

// OutboxClaim takes up to limit ready items for delivery, oldest first, and
// moves their NextAttempt to now+lease in the same statement. Rows another
// replica is claiming at that moment are skipped (FOR UPDATE SKIP LOCKED),
// and an item waits while an earlier item of its request is still in the
// outbox. See store.(*Store).OutboxClaim.
func (s *Store) OutboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.OutboxItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if lease <= 0 {
		return nil, fmt.Errorf("outbox claim: lease must be positive, got %s", lease)
	}
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT o.id FROM c2bot_outbox o
			WHERE o.next_ns <= $1 AND (o.request_id = '' OR NOT EXISTS (
				SELECT 1 FROM c2bot_outbox e WHERE e.request_id = o.request_id AND e.id < o.id))
			ORDER BY o.id`+limitClause(limit)+`
			FOR UPDATE SKIP LOCKED)
		UPDATE c2bot_outbox SET next_ns = $2 FROM c WHERE c2bot_outbox.id = c.id
		RETURNING c2bot_outbox.id, next_ns, attempts, last_error, tried_ns, body`, ns(now), ns(now.Add(lease)))
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", dbErr(err))
	}
	out, err := collectOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	return out, nil
}

// OutboxNext returns the earliest NextAttempt in the outbox, leaving out
// items that wait behind an earlier item of their request; ok is false when
// it is empty.
func (s *Store) OutboxNext(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	var n *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(o.next_ns) FROM c2bot_outbox o WHERE o.request_id = '' OR NOT EXISTS (
		SELECT 1 FROM c2bot_outbox e WHERE e.request_id = o.request_id AND e.id < o.id)`).Scan(&n); err != nil {
		return time.Time{}, false, fmt.Errorf("outbox next: %w", dbErr(err))
	}
	if n == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, *n), true, nil
}

// OutboxDone removes a delivered item. Removing an absent item is not an error.
func (s *Store) OutboxDone(ctx context.Context, id uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM c2bot_outbox WHERE id = $1", int64(id)); err != nil {
		return fmt.Errorf("outbox done %d: %w", id, dbErr(err))
	}
	return nil
}

// OutboxRetry records a failed attempt: it increments Attempts and sets
// NextAttempt and LastError. It returns store.ErrNotFound when the item is gone.
func (s *Store) OutboxRetry(ctx context.Context, id uint64, next time.Time, lastErr string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, "UPDATE c2bot_outbox SET attempts = attempts + 1, next_ns = $2, last_error = $3 WHERE id = $1",
		int64(id), ns(next), lastErr)
	if err != nil {
		return fmt.Errorf("outbox retry %d: %w", id, dbErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("outbox retry %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// OutboxTry records that a delivery of item id starts at at: it sets Tried
// when it is still zero and leaves it otherwise (the first start is kept),
// and changes nothing else. A zero at is refused. It returns
// store.ErrNotFound when the item is gone. See store.(*Store).OutboxTry.
func (s *Store) OutboxTry(ctx context.Context, id uint64, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("outbox try %d: zero start time", id)
	}
	tag, err := s.pool.Exec(ctx, "UPDATE c2bot_outbox SET tried_ns = CASE WHEN tried_ns = 0 THEN $2 ELSE tried_ns END WHERE id = $1",
		int64(id), triedNS(at))
	if err != nil {
		return fmt.Errorf("outbox try %d: %w", id, dbErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("outbox try %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// PutConversation stores the latest reference for a conversation key.
func (s *Store) PutConversation(ctx context.Context, key string, ref json.RawMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errors.New("put conversation: empty key")
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO c2bot_conversations (key, ref) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET ref = EXCLUDED.ref`, key, []byte(ref)); err != nil {
		return fmt.Errorf("put conversation %s: %w", key, dbErr(err))
	}
	return nil
}

// Conversation returns the reference stored for key, or store.ErrNotFound.
func (s *Store) Conversation(ctx context.Context, key string) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ref []byte
	err := s.pool.QueryRow(ctx, "SELECT ref FROM c2bot_conversations WHERE key = $1", key).Scan(&ref)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("conversation %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("conversation %s: %w", key, dbErr(err))
	}
	return json.RawMessage(ref), nil
}

// FirstSeen records a delivery id and reports whether it was new: an id
// seen no longer than ttl ago is a duplicate, whichever replica saw it. Each
// call also deletes up to 100 expired ids.
func (s *Store) FirstSeen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if id == "" {
		return false, errors.New("first seen: empty delivery id")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("first seen: ttl must be positive, got %s", ttl)
	}
	now := s.now()
	cutoff := ns(now.Add(-ttl))
	var first bool
	err := s.inTx(ctx, func(tx pgx.Tx, _ *store.Wake) error {
		rows, err := tx.Query(ctx, `INSERT INTO c2bot_seen (id, seen_ns) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET seen_ns = EXCLUDED.seen_ns WHERE c2bot_seen.seen_ns < $3
			RETURNING 1`, id, ns(now), cutoff)
		if err != nil {
			return dbErr(err)
		}
		n, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return dbErr(err)
		}
		first = len(n) == 1
		_, err = tx.Exec(ctx, `DELETE FROM c2bot_seen WHERE id IN (
			SELECT id FROM c2bot_seen WHERE seen_ns < $1 ORDER BY seen_ns LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, seenPruneBatch)
		return dbErr(err)
	})
	if err != nil {
		return false, fmt.Errorf("first seen %s: %w", id, err)
	}
	return first, nil
}

// ErrNotEmpty is store.ErrNotEmpty: Import was given a database that
// already holds records.
var ErrNotEmpty = store.ErrNotEmpty

// Import writes d into an empty database in one transaction, keeping every
// id and sequence. It fails with ErrNotEmpty when the database holds any
// request, audit event or outbox item, and writes nothing then.
func (s *Store) Import(ctx context.Context, d store.Dump) error {
	err := s.inTx(ctx, func(tx pgx.Tx, wake *store.Wake) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM c2bot_requests) + (SELECT count(*) FROM c2bot_audit)
			+ (SELECT count(*) FROM c2bot_outbox)`).Scan(&n); err != nil {
			return dbErr(err)
		}
		if n > 0 {
			return ErrNotEmpty
		}
		maxSeq := func(cur, v uint64) uint64 { return max(cur, v) }
		reqSeq, auditSeq, outSeq := d.RequestSeq, d.AuditSeq, d.OutboxSeq
		for _, r := range d.Requests {
			seq, err := strconv.ParseUint(strings.TrimPrefix(r.ID, "r-"), 10, 64)
			if err != nil || !strings.HasPrefix(r.ID, "r-") {
				return fmt.Errorf("request id %q is not r-<number>", r.ID)
			}
			if err := validRequest(&r); err != nil {
				return fmt.Errorf("request %s: %w", r.ID, err)
			}
			body, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO c2bot_requests (id, seq, state, tenant, due_ns, body) VALUES ($1, $2, $3, $4, $5, $6)`,
				r.ID, int64(seq), string(r.State), r.Tenant, dueNS(r.DueAt), body); err != nil {
				return fmt.Errorf("request %s: %w", r.ID, dbErr(err))
			}
			reqSeq = maxSeq(reqSeq, seq)
		}
		for _, e := range d.Audit {
			body, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO c2bot_audit (seq, request_id, body) VALUES ($1, $2, $3)", int64(e.Seq), e.RequestID, body); err != nil {
				return fmt.Errorf("audit event %d: %w", e.Seq, dbErr(err))
			}
			auditSeq = maxSeq(auditSeq, e.Seq)
		}
		for _, it := range d.Outbox {
			if err := insertOutbox(ctx, tx, it); err != nil {
				return fmt.Errorf("outbox item %d: %w", it.ID, err)
			}
			outSeq = maxSeq(outSeq, it.ID)
		}
		for k, ref := range d.Conversations {
			if _, err := tx.Exec(ctx, `INSERT INTO c2bot_conversations (key, ref) VALUES ($1, $2)
				ON CONFLICT (key) DO UPDATE SET ref = EXCLUDED.ref`, k, []byte(ref)); err != nil {
				return fmt.Errorf("conversation %s: %w", k, dbErr(err))
			}
		}
		for id, at := range d.Seen {
			if _, err := tx.Exec(ctx, `INSERT INTO c2bot_seen (id, seen_ns) VALUES ($1, $2)
				ON CONFLICT (id) DO UPDATE SET seen_ns = EXCLUDED.seen_ns`, id, ns(at)); err != nil {
				return fmt.Errorf("seen id: %w", dbErr(err))
			}
		}
		for name, v := range map[string]uint64{"request": reqSeq, "audit": auditSeq, "outbox": outSeq} {
			if _, err := tx.Exec(ctx, "UPDATE c2bot_counters SET value = $2 WHERE name = $1", name, int64(v)); err != nil {
				return dbErr(err)
			}
		}
		*wake = store.WakeDue | store.WakeOutbox
		return nil
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

var _ store.Importer = (*Store)(nil)

// TableBytes is the disk size of c2bot's tables with their indexes (for
// capacity planning and the benchmarks).
func (s *Store) TableBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relname LIKE 'c2bot\_%' AND n.nspname = current_schema()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("table sizes: %w", dbErr(err))
	}
	return n, nil
}

// TransitionPair is Transition for two requests at once (an extension that
// moves its parent's revert time and is marked applied in the same commit):
// both rows are locked, in id order so two pairs cannot deadlock; request id
// must be in one of from and other in one of otherFrom; fn may change both;
// both rows are updated WHERE state = ANY(…) and committed with their due
// times and ch in one transaction, or nothing is. Audit events and outbox
// items that name no request belong to id. It returns store.ErrNotFound, a
// *store.ConflictError naming the request in another state, or fn's error.
// The two ids must differ.
func (s *Store) TransitionPair(ctx context.Context, id string, from []store.State, other string, otherFrom []store.State,
	fn func(r, o *store.Request, ch *store.Changes) error) (store.Request, store.Request, error) {
	if err := ctx.Err(); err != nil {
		return store.Request{}, store.Request{}, err
	}
	if len(from) == 0 || len(otherFrom) == 0 {
		return store.Request{}, store.Request{}, fmt.Errorf("transition %s and %s: no from states given", id, other)
	}
	if id == other {
		return store.Request{}, store.Request{}, fmt.Errorf("transition %s: the pair names one request twice", id)
	}
	var outR, outO store.Request
	err := s.inTx(ctx, func(tx pgx.Tx, wake *store.Wake) error {
		rows, err := tx.Query(ctx, `SELECT id, body FROM c2bot_requests WHERE id = ANY($1) ORDER BY id COLLATE "C" FOR UPDATE`,
			[]string{id, other})
		if err != nil {
			return dbErr(err)
		}
		got := map[string]store.Request{}
		for rows.Next() {
			var rid string
			var body []byte
			if err := rows.Scan(&rid, &body); err != nil {
				rows.Close()
				return dbErr(err)
			}
			r, err := decodeRequest(body)
			if err != nil {
				rows.Close()
				return fmt.Errorf("request %s: %w", rid, err)
			}
			got[rid] = r
		}
		if err := rows.Err(); err != nil {
			return dbErr(err)
		}
		r, ok := got[id]
		if !ok {
			return fmt.Errorf("request %s: %w", id, store.ErrNotFound)
		}
		o, ok := got[other]
		if !ok {
			return fmt.Errorf("request %s: %w", other, store.ErrNotFound)
		}
		if !slices.Contains(from, r.State) {
			return &store.ConflictError{ID: id, State: r.State}
		}
		if !slices.Contains(otherFrom, o.State) {
			return &store.ConflictError{ID: other, State: o.State}
		}
		oldR, oldO := r.DueAt, o.DueAt
		var ch store.Changes
		if err := fn(&r, &o, &ch); err != nil {
			return err
		}
		r.ID, o.ID = id, other
		if err := s.validChanges(ch); err != nil {
			return err
		}
		for _, x := range []struct {
			req  *store.Request
			old  time.Time
			from []store.State
		}{{&r, oldR, from}, {&o, oldO, otherFrom}} {
			if err := validRequest(x.req); err != nil {
				return fmt.Errorf("request %s: %w", x.req.ID, err)
			}
			body, err := json.Marshal(x.req)
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE c2bot_requests SET state = $2, tenant = $3, due_ns = $4, body = $5
				WHERE id = $1 AND state = ANY($6)`, x.req.ID, string(x.req.State), x.req.Tenant, dueNS(x.req.DueAt), body, stateStrings(x.from))
			if err != nil {
				return fmt.Errorf("store request %s: %w", x.req.ID, dbErr(err))
			}
			if tag.RowsAffected() != 1 {
				return &store.ConflictError{ID: x.req.ID, State: x.req.State}
			}
			if !x.req.DueAt.Equal(x.old) {
				*wake |= store.WakeDue
			}
		}
		if err := s.applyChanges(ctx, tx, wake, &r, ch); err != nil {
			return err
		}
		outR, outO = r, o
		return nil
	})
	if err != nil {
		return store.Request{}, store.Request{}, err
	}
	return outR, outO, nil
}

// ListAudit returns the events that match f, oldest first; with a Limit the
// newest Limit of them (page back with BeforeSeq). See store.(*Store).ListAudit.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Since and Tenants are read from the events themselves, as the bbolt
	// store does; request and sequence bounds use the columns.
	q := "SELECT body FROM c2bot_audit WHERE true"
	var args []any
	if f.RequestID != "" {
		args = append(args, f.RequestID)
		q += fmt.Sprintf(" AND request_id = $%d", len(args))
	}
	if f.BeforeSeq > 0 {
		args = append(args, int64(f.BeforeSeq))
		q += fmt.Sprintf(" AND seq < $%d", len(args))
	}
	q += " ORDER BY seq DESC"
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", dbErr(err))
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("list audit: %w", dbErr(err))
		}
		var e store.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("list audit: decode event: %w", err)
		}
		if !f.Since.IsZero() && e.At.Before(f.Since) {
			continue
		}
		if len(f.Tenants) > 0 && !slices.Contains(f.Tenants, e.Tenant) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", dbErr(err))
	}
	slices.Reverse(out)
	return out, nil
}

// Stats counts requests by state, the pending reverts (applied, reverting,
// revert_failed) with the earliest of their due times, and the outbox.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	if err := ctx.Err(); err != nil {
		return store.Stats{}, err
	}
	st := store.Stats{ByState: map[store.State]int{}}
	rows, err := s.pool.Query(ctx, "SELECT state, count(*) FROM c2bot_requests GROUP BY state")
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			rows.Close()
			return store.Stats{}, fmt.Errorf("stats: %w", dbErr(err))
		}
		st.ByState[store.State(state)] = n
	}
	if err := rows.Err(); err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	pending := []string{string(store.Applied), string(store.Reverting), string(store.RevertFailed)}
	var next *int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*), min(due_ns) FROM c2bot_requests WHERE state = ANY($1)", pending).
		Scan(&st.PendingReverts, &next); err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	if next != nil {
		st.NextRevert = time.Unix(0, *next)
	}
	ob, err := s.pool.Query(ctx, "SELECT body FROM c2bot_outbox")
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	bodies, err := pgx.CollectRows(ob, pgx.RowTo[[]byte])
	if err != nil {
		return store.Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	for _, b := range bodies {
		var it store.OutboxItem
		if err := json.Unmarshal(b, &it); err != nil {
			return store.Stats{}, fmt.Errorf("stats: decode outbox item: %w", err)
		}
		st.OutboxDepth++
		if st.OldestUndelivered.IsZero() || it.CreatedAt.Before(st.OldestUndelivered) {
			st.OldestUndelivered = it.CreatedAt
		}
	}
	return st, nil
}
