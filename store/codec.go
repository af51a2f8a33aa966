package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Limits of time.UnixNano; times outside are clamped so keys stay ordered.
var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

// u64Key encodes a sequence number as an 8-byte big-endian key, so byte order
// is numeric order.
func u64Key(n uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, n)
	return k
}

// timeKey encodes t as 8 bytes whose byte order is time order: the Unix
// nanoseconds, big-endian, with the sign bit flipped so that times before
// 1970 sort first too.
func timeKey(t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minKeyTime):
		n = math.MinInt64
	case t.After(maxKeyTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return u64Key(uint64(n) ^ (1 << 63))
}

// keyTime decodes the first 8 bytes of a timeKey.
func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63)))
}

// dueKey is the due-index key of request id due at t.
func dueKey(id string, t time.Time) []byte {
	return append(timeKey(t), id...)
}

// putDue adds the index entry for id when due is set.
func putDue(tx *bolt.Tx, id string, due time.Time) error {
	if due.IsZero() {
		return nil
	}
	if err := tx.Bucket(bucketDue).Put(dueKey(id, due), nil); err != nil {
		return fmt.Errorf("index due time of %s: %w", id, err)
	}
	return nil
}

// delDue removes the index entry for id when due is set.
func delDue(tx *bolt.Tx, id string, due time.Time) error {
	if due.IsZero() {
		return nil
	}
	if err := tx.Bucket(bucketDue).Delete(dueKey(id, due)); err != nil {
		return fmt.Errorf("unindex due time of %s: %w", id, err)
	}
	return nil
}

// stateIn reports whether s is one of states.
func stateIn(s State, states []State) bool {
	for _, x := range states {
		if s == x {
			return true
		}
	}
	return false
}

// validRequest checks the fields every stored request needs.
func validRequest(r *Request) error {
	switch {
	case r.State == "":
		return errors.New("request has no state")
	case r.Tenant == "":
		return errors.New("request has no tenant")
	}
	return nil
}

// getRequest loads request id, or returns an error wrapping ErrNotFound.
func getRequest(tx *bolt.Tx, id string) (Request, error) {
	v := tx.Bucket(bucketRequests).Get([]byte(id))
	if v == nil {
		return Request{}, fmt.Errorf("request %s: %w", id, ErrNotFound)
	}
	var r Request
	if err := json.Unmarshal(v, &r); err != nil {
		return Request{}, fmt.Errorf("decode request %s: %w", id, err)
	}
	return r, nil
}

// putRequest stores r under its ID.
func putRequest(tx *bolt.Tx, r *Request) error {
	if err := putJSON(tx.Bucket(bucketRequests), []byte(r.ID), r); err != nil {
		return fmt.Errorf("store request %s: %w", r.ID, err)
	}
	return nil
}

// putJSON stores v encoded as JSON under key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return b.Put(key, data)
}

// applyChanges appends ch's audit events and outbox items, filling in what
// the store owns and defaulting request fields from r.
func (s *Store) applyChanges(tx *bolt.Tx, r *Request, ch Changes) error {
	for _, e := range ch.Audit {
		if e.RequestID == "" {
			e.RequestID = r.ID
		}
		if e.Tenant == "" {
			e.Tenant = r.Tenant
		}
		if err := s.putEvent(tx, e); err != nil {
			return err
		}
	}
	for _, it := range ch.Outbox {
		if it.RequestID == "" {
			it.RequestID = r.ID
		}
		if err := s.putOutbox(tx, it); err != nil {
			return err
		}
	}
	return nil
}

// putEvent appends e to the audit log with the next sequence number.
func (s *Store) putEvent(tx *bolt.Tx, e Event) error {
	if e.Action == "" {
		return errors.New("audit event has no action")
	}
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	e.Seq = seq
	if e.At.IsZero() {
		e.At = s.now()
	}
	if err := putJSON(b, u64Key(seq), e); err != nil {
		return fmt.Errorf("store audit event %d: %w", seq, err)
	}
	return nil
}

// putOutbox appends it to the outbox with the next id.
func (s *Store) putOutbox(tx *bolt.Tx, it OutboxItem) error {
	if it.Platform == "" {
		return errors.New("outbox item has no platform")
	}
	b := tx.Bucket(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("outbox sequence: %w", err)
	}
	it.ID = id
	if it.CreatedAt.IsZero() {
		it.CreatedAt = s.now()
	}
	if it.NextAttempt.IsZero() {
		it.NextAttempt = it.CreatedAt
	}
	if err := putJSON(b, u64Key(id), it); err != nil {
		return fmt.Errorf("store outbox item %d: %w", id, err)
	}
	return nil
}

// forEachOutbox calls fn for each outbox item in id order until fn returns
// false.
func forEachOutbox(tx *bolt.Tx, fn func(OutboxItem) bool) error {
	c := tx.Bucket(bucketOutbox).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var it OutboxItem
		if err := json.Unmarshal(v, &it); err != nil {
			return fmt.Errorf("decode outbox item %x: %w", k, err)
		}
		if !fn(it) {
			return nil
		}
	}
	return nil
}
