// Package store keeps c2bot's durable state in one bbolt file: change
// requests (with their change plan and revert due time), the index of due
// times the scheduler wakes on, the audit log, conversation references, the
// notification outbox and delivery ids already seen. Every state change is a
// check-then-set inside one bbolt transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: no record with that id.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record is not in a state the transition accepts
	// (a double click, a redelivered event, a second replica).
	ErrConflict = errors.New("conflict")
	// ErrLocked: another process holds the database file.
	ErrLocked = errors.New("database in use by another process")
)

// State is a request's place in its life cycle.
type State string

// Request states (DESIGN.md, "The flow").
const (
	Pending      State = "pending"
	Approved     State = "approved"
	Applying     State = "applying"
	Applied      State = "applied"
	Reverting    State = "reverting"
	Reverted     State = "reverted"
	Denied       State = "denied"
	Expired      State = "expired"
	Failed       State = "failed"
	RevertFailed State = "revert_failed"
	Cancelled    State = "cancelled"
)

// Final reports whether no further transition leaves s.
func (s State) Final() bool {
	switch s {
	case Reverted, Denied, Expired, Failed, Cancelled:
		return true
	}
	return false
}

// Person is a chat user as the store keeps it.
type Person struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Request is one change request and everything needed to finish it after a
// restart. Opaque fields (Items, Conv, Card) belong to the caller, which
// encodes them; the store never looks inside.
type Request struct {
	ID        string `json:"id"`     // "r-1", "r-2", … assigned by Create
	Tenant    string `json:"tenant"` // tenant name from the configuration
	State     State  `json:"state"`
	Requester Person `json:"requester"`
	Approver  Person `json:"approver,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Duration is the approved change window.
	Duration time.Duration `json:"duration"`
	// ParentID is set on an extension request: the applied request whose
	// revert time an approval moves by Duration.
	ParentID string `json:"parent_id,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitempty"`  // approval deadline
	DecidedAt  time.Time `json:"decided_at,omitempty"`  // approved or denied
	AppliedAt  time.Time `json:"applied_at,omitempty"`  // change verified
	RevertAt   time.Time `json:"revert_at,omitempty"`   // end of the window
	RevertedAt time.Time `json:"reverted_at,omitempty"` // revert finished

	// DueAt is when the scheduler must next look at this request (approval
	// expiry, revert time, next retry); zero means never. The store keeps
	// the due-time index in step with it in the same transaction.
	DueAt time.Time `json:"due_at,omitempty"`
	// Attempts counts failed revert (or apply) attempts; LastError is the
	// latest failure, as logged (no secrets).
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`

	Items json.RawMessage `json:"items,omitempty"` // the change plan
	Conv  json.RawMessage `json:"conv,omitempty"`  // where it was asked
	Card  json.RawMessage `json:"card,omitempty"`  // the approval message
	// Results records per-item outcomes of apply and revert, for the audit
	// and for messages.
	Results json.RawMessage `json:"results,omitempty"`
}

// Event is one audit-log entry.
type Event struct {
	Seq       uint64    `json:"seq"` // assigned by the store, increasing
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"` // user id, or "c2bot" for the scheduler
	Action    string    `json:"action"`
	RequestID string    `json:"request_id,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// OutboxItem is a notification waiting to be delivered.
type OutboxItem struct {
	ID          uint64          `json:"id"` // assigned by the store, increasing
	Platform    string          `json:"platform"`
	RequestID   string          `json:"request_id,omitempty"`
	Payload     json.RawMessage `json:"payload"` // caller-defined
	CreatedAt   time.Time       `json:"created_at"`
	NextAttempt time.Time       `json:"next_attempt"`
	Attempts    int             `json:"attempts"`
	LastError   string          `json:"last_error,omitempty"`
}

// Changes is what a transition adds in its own transaction besides the
// request: audit events and outbox items. Zero Seq/ID/At/CreatedAt are
// filled by the store.
type Changes struct {
	Audit  []Event
	Outbox []OutboxItem
}

// Options tunes Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file before failing with ErrLocked; zero means one second.
	LockTimeout time.Duration
	// Now is the clock for audit and outbox timestamps; nil means time.Now.
	Now func() time.Time
}

// Store is an open database. It is safe for concurrent use.
type Store struct{}

// Open opens or creates the database at path with mode 0600. When another
// process holds it, Open fails within Options.LockTimeout with an error
// wrapping ErrLocked that names the file.
func Open(path string, opts Options) (*Store, error) { panic("not implemented") }

// Close closes the database.
func (s *Store) Close() error { panic("not implemented") }

// Create stores a new request, assigning its ID ("r-<sequence>"), together
// with ch, and returns it.
func (s *Store) Create(ctx context.Context, r Request, ch Changes) (Request, error) {
	panic("not implemented")
}

// Get returns the request with that id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Request, error) { panic("not implemented") }

// Transition loads request id and, only when its state is one of from, calls
// fn to change it; the result, the due-time index and whatever fn added to
// ch are committed in one transaction. It returns ErrNotFound, ErrConflict
// (wrapping the current state) when the state is not in from, or fn's error
// (nothing is written then). The returned request is the committed one.
func (s *Store) Transition(ctx context.Context, id string, from []State, fn func(r *Request, ch *Changes) error) (Request, error) {
	panic("not implemented")
}

// List returns requests, newest first, whose state is in states (all when
// states is empty), at most limit of them (all when limit <= 0).
func (s *Store) List(ctx context.Context, limit int, states ...State) ([]Request, error) {
	panic("not implemented")
}

// Due returns the requests whose DueAt is not after now, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time) ([]Request, error) { panic("not implemented") }

// NextDue returns the earliest DueAt of any request; ok is false when none is due ever.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	panic("not implemented")
}

// Audit returns the last limit events, oldest first (all when limit <= 0),
// optionally only those of one request.
func (s *Store) Audit(ctx context.Context, limit int, requestID string) ([]Event, error) {
	panic("not implemented")
}

// AppendAudit records events outside a transition.
func (s *Store) AppendAudit(ctx context.Context, events ...Event) error { panic("not implemented") }

// Enqueue adds outbox items outside a transition.
func (s *Store) Enqueue(ctx context.Context, items ...OutboxItem) error { panic("not implemented") }

// OutboxReady returns up to limit items whose NextAttempt is not after now, oldest first.
func (s *Store) OutboxReady(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	panic("not implemented")
}

// OutboxNext returns the earliest NextAttempt in the outbox; ok is false when it is empty.
func (s *Store) OutboxNext(ctx context.Context) (at time.Time, ok bool, err error) {
	panic("not implemented")
}

// OutboxDone removes a delivered item. Removing an absent item is not an error.
func (s *Store) OutboxDone(ctx context.Context, id uint64) error { panic("not implemented") }

// OutboxRetry records a failed attempt and when to try again.
func (s *Store) OutboxRetry(ctx context.Context, id uint64, next time.Time, lastErr string) error {
	panic("not implemented")
}

// PutConversation stores the latest reference for a conversation key.
func (s *Store) PutConversation(ctx context.Context, key string, ref json.RawMessage) error {
	panic("not implemented")
}

// Conversation returns the reference stored for key, or ErrNotFound.
func (s *Store) Conversation(ctx context.Context, key string) (json.RawMessage, error) {
	panic("not implemented")
}

// FirstSeen records a delivery id and reports whether it was new. Ids older
// than ttl are forgotten, so the bucket stays small. A redelivered Slack
// event or Teams activity returns false and is dropped.
func (s *Store) FirstSeen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	panic("not implemented")
}
