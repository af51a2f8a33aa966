package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrUnavailable: the database cannot be reached (a lost connection, a
// restart). Nothing is known to have been written by the call that failed
// this way; the caller may try again later.
var ErrUnavailable = errors.New("database unavailable")

// Backend is the contract every store keeps, whatever its database: the
// bbolt file of a single binary (*Store) and the PostgreSQL database that
// several replicas share (store/postgres). The conformance suite in
// store/storetest proves it for each.
//
// Every method fails with the caller's context error when ctx is done, and
// with an error wrapping ErrUnavailable when the database cannot be reached.
type Backend interface {
	// Create stores a new request with its changes; see (*Store).Create.
	Create(ctx context.Context, r Request, ch Changes) (Request, error)
	// Get returns a request or ErrNotFound.
	Get(ctx context.Context, id string) (Request, error)
	// Transition is a compare-and-swap on the request's state, committed in
	// one transaction with its due time and changes; see (*Store).Transition.
	Transition(ctx context.Context, id string, from []State, fn func(r *Request, ch *Changes) error) (Request, error)
	// TransitionPair is Transition on two requests at once (an extension and
	// the change it extends), in one transaction; see (*Store).TransitionPair.
	TransitionPair(ctx context.Context, id1 string, from1 []State, id2 string, from2 []State, fn func(r1, r2 *Request, ch *Changes) error) (Request, Request, error)
	// List returns requests newest first.
	List(ctx context.Context, limit int, states ...State) ([]Request, error)
	// Due returns the requests due at now, earliest first.
	Due(ctx context.Context, now time.Time) ([]Request, error)
	// NextDue returns the earliest due time.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// Audit returns the last events, oldest first.
	Audit(ctx context.Context, limit int, requestID string) ([]Event, error)
	// ListAudit returns the events that match a filter, oldest first; see
	// (*Store).ListAudit.
	ListAudit(ctx context.Context, f AuditFilter) ([]Event, error)
	// Stats counts requests by state, pending reverts and the outbox.
	Stats(ctx context.Context) (Stats, error)
	// AppendAudit records events outside a transition.
	AppendAudit(ctx context.Context, events ...Event) error
	// Enqueue adds outbox items outside a transition.
	Enqueue(ctx context.Context, items ...OutboxItem) error
	// OutboxReady lists ready items without claiming them.
	OutboxReady(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error)
	// OutboxClaim takes ready items for delivery; see (*Store).OutboxClaim.
	OutboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxItem, error)
	// OutboxNext returns the earliest NextAttempt.
	OutboxNext(ctx context.Context) (time.Time, bool, error)
	// OutboxDone removes a delivered item.
	OutboxDone(ctx context.Context, id uint64) error
	// OutboxRetry records a failed attempt.
	OutboxRetry(ctx context.Context, id uint64, next time.Time, lastErr string) error
	// OutboxTry records that a delivery of an item starts: it sets Tried
	// when still zero, nothing else; see (*Store).OutboxTry.
	OutboxTry(ctx context.Context, id uint64, at time.Time) error
	// PutConversation stores a conversation reference.
	PutConversation(ctx context.Context, key string, ref json.RawMessage) error
	// Conversation returns a conversation reference or ErrNotFound.
	Conversation(ctx context.Context, key string) (json.RawMessage, error)
	// FirstSeen records a delivery id and reports whether it was new.
	FirstSeen(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// Ping reports whether the database answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// Wake says what another process changed, for backends shared by several
// processes.
type Wake uint8

// Wake kinds.
const (
	// WakeDue: a request's due time was set or moved.
	WakeDue Wake = 1 << iota
	// WakeOutbox: an outbox item was written.
	WakeOutbox
)

// Shared is implemented by backends that several processes use at once
// (PostgreSQL). Work in flight in another process is then not interrupted
// work: only a lease that ran out says so. Wakes receives a value whenever
// any process commits a new due time or outbox item, and after the backend
// reconnects (when it may have missed some); the scheduler re-reads the
// store then, so a timer that lives in another process is not needed.
type Shared interface {
	Wakes() <-chan Wake
}

var _ Backend = (*Store)(nil)

// Dump is every record of a store, for moving it to another backend
// (c2bot migrate-store). The sequences are the last values handed out, so
// ids are never reused after the move.
type Dump struct {
	Requests      []Request                  // oldest first
	Audit         []Event                    // by Seq
	Outbox        []OutboxItem               // by ID
	Conversations map[string]json.RawMessage // key → reference
	Seen          map[string]time.Time       // delivery id → first seen
	RequestSeq    uint64
	AuditSeq      uint64
	OutboxSeq     uint64
}

// ErrNotEmpty: Import was given a store that already holds records.
var ErrNotEmpty = errors.New("the store already holds c2bot records")

// Importer is implemented by backends that can be filled from a Dump (an
// empty store only; ids and sequences are kept): migrate-store uses it.
type Importer interface {
	Import(ctx context.Context, d Dump) error
}

var _ Importer = (*Store)(nil)
