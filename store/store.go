// Package store keeps c2bot's durable state: change requests (with their
// change plan and revert due time), the index of due times the scheduler
// wakes on, the audit log, conversation references, the notification outbox
// and delivery ids already seen. Backend is the contract; *Store keeps it in
// one bbolt file (the single binary), store/postgres in a PostgreSQL
// database that several replicas share, and store/storetest is the suite
// both pass. Every state change is a check-then-set inside one transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
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

// ConflictError is the error Transition returns when the request is not in
// one of the accepted states. It matches ErrConflict with errors.Is, and
// errors.As gives the state the request is actually in.
type ConflictError struct {
	ID    string // the request
	State State  // its current state
}

// Error says which request is in which state.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("request %s is %s: %v", e.ID, e.State, ErrConflict)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

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
	// ApprovalsRequired is how many distinct approvers must approve
	// (0 means 1); Approvals are the ones given so far, oldest first.
	ApprovalsRequired int        `json:"approvals_required,omitempty"`
	Approvals         []Approval `json:"approvals,omitempty"`
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
	// Lease names the worker that currently owns an apply or its rollback
	// (an opaque token the caller chooses). The owner checks it in every
	// transition it makes while DueAt is its lease expiry, so a worker whose
	// lease was taken over finds out before its next write. The store never
	// interprets it.
	Lease string `json:"lease,omitempty"`

	Items json.RawMessage `json:"items,omitempty"` // the change plan
	Conv  json.RawMessage `json:"conv,omitempty"`  // where it was asked
	Card  json.RawMessage `json:"card,omitempty"`  // the approval message
	// Results records per-item outcomes of apply and revert, for the audit
	// and for messages.
	Results json.RawMessage `json:"results,omitempty"`
	// Follow is the caller's follow-up of an applied change (sign-in
	// watch, checkpoints, reminder); opaque like Items.
	Follow json.RawMessage `json:"follow,omitempty"`
}

// Approval is one approver's yes to a request.
type Approval struct {
	By Person    `json:"by"`
	At time.Time `json:"at"`
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
	// Tried is when a delivery of this item was first started (OutboxTry),
	// zero when none ever was. A sender that finds it set knows an earlier
	// delivery may have posted the notice before it could be marked done.
	Tried time.Time `json:"tried,omitempty"`
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
	// Now is the clock for the timestamps the store fills in (audit events,
	// outbox items, a new request's CreatedAt) and for FirstSeen's expiry;
	// nil means time.Now.
	Now func() time.Time
	// ReadOnly opens the file for reading only (audit export): nothing is
	// written, several readers may share the file, and Open fails with
	// ErrLocked while a writer (c2bot serve) holds it. The file must exist.
	ReadOnly bool
}

// DefaultLockTimeout is how long Open waits for the file lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// schemaVersion is the layout written to the meta bucket; Open refuses a
// file written by a newer layout.
const schemaVersion = 1

// Bucket names. The due index and the two secondary indexes are kept in step
// with their primary bucket in the same transaction.
var (
	bucketRequests      = []byte("requests")       // id → JSON Request
	bucketRequestsBySeq = []byte("requests_order") // 8-byte creation sequence → id
	bucketDue           = []byte("due")            // 8-byte DueAt nanos + id → nothing
	bucketAudit         = []byte("audit")          // 8-byte seq → JSON Event
	bucketOutbox        = []byte("outbox")         // 8-byte id → JSON OutboxItem
	bucketConversations = []byte("conversations")  // key → raw reference
	bucketSeen          = []byte("seen")           // delivery id → 8-byte first-seen nanos
	bucketSeenByTime    = []byte("seen_order")     // 8-byte first-seen nanos + delivery id → nothing
	bucketMeta          = []byte("meta")           // "schema" → version

	allBuckets = [][]byte{bucketRequests, bucketRequestsBySeq, bucketDue, bucketAudit,
		bucketOutbox, bucketConversations, bucketSeen, bucketSeenByTime, bucketMeta}

	keySchema = []byte("schema")
)

// seenPruneBatch bounds how many expired delivery ids one FirstSeen call
// deletes, so a call never does unbounded work.
const seenPruneBatch = 100

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
}

// Open opens or creates the database at path with mode 0600. When another
// process holds it, Open fails within Options.LockTimeout with an error
// wrapping ErrLocked that names the file.
//
// A file Open creates gets mode 0600 whatever the umask; the mode of an
// existing file is left alone. Open fails if the file was written by a newer
// version of the store.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.ReadOnly {
		return openReadOnly(path, timeout, now)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, OpenFile: openFile})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (is another c2bot running?)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("bad schema version %q", v)
			}
			if n > schemaVersion {
				return fmt.Errorf("schema version %d is newer than this build supports (%d)", n, schemaVersion)
			}
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{db: db, path: path, now: now}, nil
}

// openReadOnly opens an existing file with a shared lock and checks its
// layout without writing.
func openReadOnly(path string, timeout time.Duration, now func() time.Time) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (c2bot serve holds it; stop it, or read a copy made with bbolt's backup)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("not a c2bot database")
		}
		if v := meta.Get(keySchema); v != nil {
			if n, err := strconv.Atoi(string(v)); err != nil || n > schemaVersion {
				return fmt.Errorf("schema version %q is not supported by this build (%d)", v, schemaVersion)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{db: db, path: path, now: now}, nil
}

// openFile is bbolt's file opener. When it creates the file it sets mode
// 0600 explicitly, so an unusual umask cannot leave it unreadable or wider.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&os.O_CREATE != 0 {
		f, err := os.OpenFile(name, flag|os.O_EXCL, perm)
		if err == nil {
			if err := f.Chmod(0o600); err != nil {
				_ = f.Close()
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		flag &^= os.O_CREATE
	}
	return os.OpenFile(name, flag, perm)
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Create stores a new request, assigning its ID ("r-<sequence>"), together
// with ch, and returns it. Any ID the caller set is replaced. State and
// Tenant are required; a zero CreatedAt is set to now. Audit events without
// a RequestID or Tenant get the request's.
func (s *Store) Create(ctx context.Context, r Request, ch Changes) (Request, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		r, err = s.create(tx, r, ch)
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("create request: %w", err)
	}
	return r, nil
}

// create is Create inside an open write transaction.
func (s *Store) create(tx *bolt.Tx, r Request, ch Changes) (Request, error) {
	if err := validRequest(&r); err != nil {
		return Request{}, err
	}
	reqs := tx.Bucket(bucketRequests)
	seq, err := reqs.NextSequence()
	if err != nil {
		return Request{}, err
	}
	r.ID = "r-" + strconv.FormatUint(seq, 10)
	if reqs.Get([]byte(r.ID)) != nil {
		return Request{}, fmt.Errorf("request %s already exists", r.ID)
	}
	if err := tx.Bucket(bucketRequestsBySeq).Put(u64Key(seq), []byte(r.ID)); err != nil {
		return Request{}, err
	}
	if err := putRequest(tx, &r); err != nil {
		return Request{}, err
	}
	if err := putDue(tx, r.ID, r.DueAt); err != nil {
		return Request{}, err
	}
	if err := s.applyChanges(tx, &r, ch); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Get returns the request with that id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Request, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, err
	}
	var r Request
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = getRequest(tx, id)
		return err
	})
	if err != nil {
		return Request{}, err
	}
	return r, nil
}

// Transition loads request id and, only when its state is one of from, calls
// fn to change it; the result, the due-time index and whatever fn added to
// ch are committed in one transaction. It returns ErrNotFound, ErrConflict
// (as a *ConflictError naming the current state) when the state is not in
// from, or fn's error (nothing is written then). The returned request is the
// committed one.
//
// fn runs inside the write transaction, which blocks every other writer: it
// must decide from the request alone and must not do I/O or call the Store.
// It cannot change the request's ID. Audit events it adds without a
// RequestID or Tenant get the request's.
func (s *Store) Transition(ctx context.Context, id string, from []State, fn func(r *Request, ch *Changes) error) (Request, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, err
	}
	if len(from) == 0 {
		return Request{}, fmt.Errorf("transition %s: no from states given", id)
	}
	var out Request
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRequest(tx, id)
		if err != nil {
			return err
		}
		if !stateIn(r.State, from) {
			return &ConflictError{ID: id, State: r.State}
		}
		oldDue := r.DueAt
		var ch Changes
		if err := fn(&r, &ch); err != nil {
			return err
		}
		r.ID = id
		if err := validRequest(&r); err != nil {
			return fmt.Errorf("request %s: %w", id, err)
		}
		if err := delDue(tx, id, oldDue); err != nil {
			return err
		}
		if err := putDue(tx, id, r.DueAt); err != nil {
			return err
		}
		if err := putRequest(tx, &r); err != nil {
			return err
		}
		if err := s.applyChanges(tx, &r, ch); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	return out, nil
}

// TransitionPair is Transition for two requests at once: request id must be
// in one of from and request other in one of otherFrom; fn may change both,
// and both, their due-time index entries and ch are committed in one
// transaction, or nothing is (an extension that moves its parent's revert
// time and is marked applied in the same commit). Audit events and outbox
// items in ch that name no request belong to id. It returns ErrNotFound,
// ErrConflict (a *ConflictError naming the request that is in another
// state), or fn's error. The two ids must differ.
func (s *Store) TransitionPair(ctx context.Context, id string, from []State, other string, otherFrom []State,
	fn func(r, o *Request, ch *Changes) error) (Request, Request, error) {
	if err := ctx.Err(); err != nil {
		return Request{}, Request{}, err
	}
	if len(from) == 0 || len(otherFrom) == 0 {
		return Request{}, Request{}, fmt.Errorf("transition %s and %s: no from states given", id, other)
	}
	if id == other {
		return Request{}, Request{}, fmt.Errorf("transition %s: the pair names one request twice", id)
	}
	var outR, outO Request
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRequest(tx, id)
		if err != nil {
			return err
		}
		o, err := getRequest(tx, other)
		if err != nil {
			return err
		}
		if !stateIn(r.State, from) {
			return &ConflictError{ID: id, State: r.State}
		}
		if !stateIn(o.State, otherFrom) {
			return &ConflictError{ID: other, State: o.State}
		}
		oldR, oldO := r.DueAt, o.DueAt
		var ch Changes
		if err := fn(&r, &o, &ch); err != nil {
			return err
		}
		r.ID, o.ID = id, other
		for _, x := range []struct {
			req *Request
			old time.Time
		}{{&r, oldR}, {&o, oldO}} {
			if err := validRequest(x.req); err != nil {
				return fmt.Errorf("request %s: %w", x.req.ID, err)
			}
			if err := delDue(tx, x.req.ID, x.old); err != nil {
				return err
			}
			if err := putDue(tx, x.req.ID, x.req.DueAt); err != nil {
				return err
			}
			if err := putRequest(tx, x.req); err != nil {
				return err
			}
		}
		if err := s.applyChanges(tx, &r, ch); err != nil {
			return err
		}
		outR, outO = r, o
		return nil
	})
	if err != nil {
		return Request{}, Request{}, err
	}
	return outR, outO, nil
}

// List returns requests, newest first, whose state is in states (all when
// states is empty), at most limit of them (all when limit <= 0).
func (s *Store) List(ctx context.Context, limit int, states ...State) ([]Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Request
	err := s.db.View(func(tx *bolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		c := tx.Bucket(bucketRequestsBySeq).Cursor()
		for k, id := c.Last(); k != nil; k, id = c.Prev() {
			v := reqs.Get(id)
			if v == nil {
				continue // cannot happen: both are written together
			}
			var r Request
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode request %s: %w", id, err)
			}
			if len(states) > 0 && !stateIn(r.State, states) {
				continue
			}
			out = append(out, r)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

// Due returns the requests whose DueAt is not after now, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time) ([]Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := timeKey(now)
	var out []Request
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 8 {
				continue
			}
			if string(k[:8]) > string(limit) {
				break
			}
			r, err := getRequest(tx, string(k[8:]))
			if errors.Is(err, ErrNotFound) {
				continue // cannot happen: both are written together
			}
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due requests: %w", err)
	}
	return out, nil
}

// NextDue returns the earliest DueAt of any request; ok is false when none is due ever.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketDue).Cursor().First()
		if len(k) >= 8 {
			at, ok = keyTime(k[:8]), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due: %w", err)
	}
	return at, ok, nil
}

// Audit returns the last limit events, oldest first (all when limit <= 0),
// optionally only those of one request.
func (s *Store) Audit(ctx context.Context, limit int, requestID string) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			if requestID != "" && e.RequestID != requestID {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// AuditFilter selects audit events for ListAudit. Zero fields select all.
type AuditFilter struct {
	RequestID string
	// Tenants keeps only events of these tenants (events with no tenant
	// are left out too); empty keeps every event.
	Tenants []string
	// Since keeps events at or after this time.
	Since time.Time
	// BeforeSeq keeps events whose Seq is below it (paging backwards);
	// zero means no bound.
	BeforeSeq uint64
	// Limit keeps the newest Limit matching events; <= 0 keeps all.
	Limit int
}

// ListAudit returns the events that match f, oldest first. With a Limit it
// returns the newest Limit of them, so a caller pages back through the log
// by passing the smallest Seq it got as the next BeforeSeq.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if f.BeforeSeq > 0 {
			k, v = c.Seek(u64Key(f.BeforeSeq))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			if f.BeforeSeq > 0 && e.Seq >= f.BeforeSeq {
				continue
			}
			if !f.Since.IsZero() && e.At.Before(f.Since) {
				continue
			}
			if f.RequestID != "" && e.RequestID != f.RequestID {
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
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// AppendAudit records events outside a transition. Each needs an Action; a
// zero At is set to now.
func (s *Store) AppendAudit(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, e := range events {
			if err := s.putEvent(tx, e); err != nil {
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

// Enqueue adds outbox items outside a transition. Each needs a Platform;
// a zero CreatedAt is set to now and a zero NextAttempt to CreatedAt.
func (s *Store) Enqueue(ctx context.Context, items ...OutboxItem) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, it := range items {
			if err := s.putOutbox(tx, it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// OutboxReady returns up to limit items whose NextAttempt is not after now, oldest first.
// A limit <= 0 means no limit.
func (s *Store) OutboxReady(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []OutboxItem
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachOutbox(tx, func(it OutboxItem) bool {
			if !it.NextAttempt.After(now) {
				out = append(out, it)
			}
			return limit <= 0 || len(out) < limit
		})
	})
	if err != nil {
		return nil, fmt.Errorf("outbox ready: %w", err)
	}
	return out, nil
}

// OutboxNext returns the earliest NextAttempt in the outbox, leaving out
// items that wait behind an earlier item of their request (OutboxClaim would
// not take them); ok is false when it is empty.
func (s *Store) OutboxNext(ctx context.Context) (at time.Time, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		waiting := map[string]bool{}
		return forEachOutbox(tx, func(it OutboxItem) bool {
			if it.RequestID != "" {
				if waiting[it.RequestID] {
					return true // its turn comes after an earlier item
				}
				waiting[it.RequestID] = true
			}
			if !ok || it.NextAttempt.Before(at) {
				at, ok = it.NextAttempt, true
			}
			return true
		})
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("outbox next: %w", err)
	}
	return at, ok, nil
}

// OutboxDone removes a delivered item. Removing an absent item is not an error.
func (s *Store) OutboxDone(ctx context.Context, id uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Delete(u64Key(id))
	})
	if err != nil {
		return fmt.Errorf("outbox done %d: %w", id, err)
	}
	return nil
}

// OutboxRetry records a failed attempt and when to try again: it increments
// Attempts and sets NextAttempt and LastError. It returns ErrNotFound when
// the item is gone.
func (s *Store) OutboxRetry(ctx context.Context, id uint64, next time.Time, lastErr string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.updateOutbox(id, "retry", func(it *OutboxItem) bool {
		it.Attempts++
		it.NextAttempt = next
		it.LastError = lastErr
		return true
	})
}

// OutboxTry records that a delivery of item id starts at at: it sets Tried
// when it is still zero and leaves it otherwise (the first start is kept),
// and changes nothing else (not Attempts, NextAttempt or LastError). A zero
// at is refused. It returns ErrNotFound when the item is gone.
func (s *Store) OutboxTry(ctx context.Context, id uint64, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("outbox try %d: zero start time", id)
	}
	return s.updateOutbox(id, "try", func(it *OutboxItem) bool {
		if !it.Tried.IsZero() {
			return false
		}
		it.Tried = at
		return true
	})
}

// updateOutbox reads item id, lets fn change it and writes it back when fn
// says so, in one transaction; what names the operation in errors. It
// returns ErrNotFound when the item is gone.
func (s *Store) updateOutbox(id uint64, what string, fn func(*OutboxItem) bool) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		v := b.Get(u64Key(id))
		if v == nil {
			return ErrNotFound
		}
		var it OutboxItem
		if err := json.Unmarshal(v, &it); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if !fn(&it) {
			return nil
		}
		return putJSON(b, u64Key(id), it)
	})
	if err != nil {
		return fmt.Errorf("outbox %s %d: %w", what, id, err)
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
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConversations).Put([]byte(key), ref)
	})
	if err != nil {
		return fmt.Errorf("put conversation %s: %w", key, err)
	}
	return nil
}

// Conversation returns the reference stored for key, or ErrNotFound.
func (s *Store) Conversation(ctx context.Context, key string) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out json.RawMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketConversations).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		out = append(json.RawMessage(nil), v...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("conversation %s: %w", key, err)
	}
	return out, nil
}

// FirstSeen records a delivery id and reports whether it was new. Ids older
// than ttl are forgotten, so the bucket stays small. A redelivered Slack
// event or Teams activity returns false and is dropped.
//
// An id seen no longer than ttl ago is a duplicate; one seen longer ago
// counts as new again. Each call also deletes up to 100 expired ids. The id
// must not be empty and ttl must be positive.
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
	cutoff := timeKey(now.Add(-ttl))
	var first bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSeen)
		byTime := tx.Bucket(bucketSeenByTime)
		key := []byte(id)
		if v := seen.Get(key); len(v) == 8 {
			if string(v) >= string(cutoff) {
				return nil // seen within ttl: a duplicate
			}
			if err := byTime.Delete(append(append([]byte(nil), v...), key...)); err != nil {
				return err
			}
		}
		first = true
		if err := seen.Put(key, timeKey(now)); err != nil {
			return err
		}
		if err := byTime.Put(append(timeKey(now), key...), nil); err != nil {
			return err
		}
		return pruneSeen(seen, byTime, cutoff)
	})
	if err != nil {
		return false, fmt.Errorf("first seen %s: %w", id, err)
	}
	return first, nil
}

// pruneSeen deletes up to seenPruneBatch delivery ids first seen before
// cutoff, oldest first.
func pruneSeen(seen, byTime *bolt.Bucket, cutoff []byte) error {
	c := byTime.Cursor()
	var old [][]byte
	for k, _ := c.First(); k != nil && len(old) < seenPruneBatch; k, _ = c.Next() {
		if len(k) < 8 || string(k[:8]) >= string(cutoff) {
			break
		}
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := byTime.Delete(k); err != nil {
			return err
		}
		// Only forget the id if this entry is still its latest sighting.
		if v := seen.Get(k[8:]); string(v) == string(k[:8]) {
			if err := seen.Delete(k[8:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// OutboxClaim takes up to limit ready items (NextAttempt not after now) for
// delivery, oldest first, and moves their NextAttempt to now+lease in the
// same transaction, so no other worker takes them while the lease runs; an
// item whose worker died becomes ready again when the lease ends. An item
// waits while an earlier item of the same request is still in the outbox, so
// one request's notices are delivered in order. A limit <= 0 means no limit;
// lease must be positive.
func (s *Store) OutboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if lease <= 0 {
		return nil, fmt.Errorf("outbox claim: lease must be positive, got %s", lease)
	}
	var out []OutboxItem
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = nil
		waiting := map[string]bool{} // requests with an earlier item in the outbox
		err := forEachOutbox(tx, func(it OutboxItem) bool {
			earlier := it.RequestID != "" && waiting[it.RequestID]
			if it.RequestID != "" {
				waiting[it.RequestID] = true
			}
			if !earlier && !it.NextAttempt.After(now) {
				it.NextAttempt = now.Add(lease)
				out = append(out, it)
			}
			return limit <= 0 || len(out) < limit
		})
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketOutbox)
		for _, it := range out {
			if err := putJSON(b, u64Key(it.ID), it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox claim: %w", err)
	}
	return out, nil
}

// Ping reports whether the database is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

// Export reads every record in one read transaction.
func (s *Store) Export(ctx context.Context) (Dump, error) {
	if err := ctx.Err(); err != nil {
		return Dump{}, err
	}
	d := Dump{Conversations: map[string]json.RawMessage{}, Seen: map[string]time.Time{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		d.RequestSeq = reqs.Sequence()
		err := tx.Bucket(bucketRequestsBySeq).ForEach(func(_, id []byte) error {
			r, err := getRequest(tx, string(id))
			if err != nil {
				return err
			}
			d.Requests = append(d.Requests, r)
			return nil
		})
		if err != nil {
			return err
		}
		audit := tx.Bucket(bucketAudit)
		d.AuditSeq = audit.Sequence()
		if err := audit.ForEach(func(k, v []byte) error {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			d.Audit = append(d.Audit, e)
			return nil
		}); err != nil {
			return err
		}
		d.OutboxSeq = tx.Bucket(bucketOutbox).Sequence()
		if err := forEachOutbox(tx, func(it OutboxItem) bool { d.Outbox = append(d.Outbox, it); return true }); err != nil {
			return err
		}
		if err := tx.Bucket(bucketConversations).ForEach(func(k, v []byte) error {
			d.Conversations[string(k)] = append(json.RawMessage(nil), v...)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketSeen).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				d.Seen[string(k)] = keyTime(v)
			}
			return nil
		})
	})
	if err != nil {
		return Dump{}, fmt.Errorf("export %s: %w", s.path, err)
	}
	return d, nil
}

// Import writes d into an empty store in one transaction, keeping every id
// and sequence. It fails with ErrNotEmpty when the store holds any request,
// audit event or outbox item, and writes nothing then.
func (s *Store) Import(ctx context.Context, d Dump) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		reqs, audit, outbox := tx.Bucket(bucketRequests), tx.Bucket(bucketAudit), tx.Bucket(bucketOutbox)
		if reqs.Stats().KeyN+audit.Stats().KeyN+outbox.Stats().KeyN > 0 {
			return ErrNotEmpty
		}
		reqSeq, auditSeq, outSeq := d.RequestSeq, d.AuditSeq, d.OutboxSeq
		for i := range d.Requests {
			r := &d.Requests[i]
			seq, err := strconv.ParseUint(strings.TrimPrefix(r.ID, "r-"), 10, 64)
			if err != nil || !strings.HasPrefix(r.ID, "r-") {
				return fmt.Errorf("request id %q is not r-<number>", r.ID)
			}
			if err := validRequest(r); err != nil {
				return fmt.Errorf("request %s: %w", r.ID, err)
			}
			if err := tx.Bucket(bucketRequestsBySeq).Put(u64Key(seq), []byte(r.ID)); err != nil {
				return err
			}
			if err := putRequest(tx, r); err != nil {
				return err
			}
			if err := putDue(tx, r.ID, r.DueAt); err != nil {
				return err
			}
			reqSeq = max(reqSeq, seq)
		}
		for _, e := range d.Audit {
			if err := putJSON(audit, u64Key(e.Seq), e); err != nil {
				return err
			}
			auditSeq = max(auditSeq, e.Seq)
		}
		for _, it := range d.Outbox {
			if err := putJSON(outbox, u64Key(it.ID), it); err != nil {
				return err
			}
			outSeq = max(outSeq, it.ID)
		}
		for k, ref := range d.Conversations {
			if err := tx.Bucket(bucketConversations).Put([]byte(k), ref); err != nil {
				return err
			}
		}
		for id, at := range d.Seen {
			if err := tx.Bucket(bucketSeen).Put([]byte(id), timeKey(at)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketSeenByTime).Put(append(timeKey(at), id...), nil); err != nil {
				return err
			}
		}
		for b, v := range map[*bolt.Bucket]uint64{reqs: reqSeq, audit: auditSeq, outbox: outSeq} {
			if err := b.SetSequence(v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import into %s: %w", s.path, err)
	}
	return nil
}
