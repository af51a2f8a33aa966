package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats is what the metrics read from the store: counts by state, the
// pending reverts and the outbox.
type Stats struct {
	// ByState counts requests in each state.
	ByState map[State]int
	// PendingReverts counts requests whose settings are (or may be) changed
	// and await a revert: applied, reverting and revert_failed.
	PendingReverts int
	// NextRevert is the earliest revert due time among them; zero when none.
	NextRevert time.Time
	// OutboxDepth counts undelivered notices; OldestUndelivered is the
	// creation time of the oldest (zero when the outbox is empty).
	OutboxDepth       int
	OldestUndelivered time.Time
}

// awaitsRevert reports whether a request in state s still has to be put back.
func awaitsRevert(s State) bool {
	return s == Applied || s == Reverting || s == RevertFailed
}

// Stats reads the whole store once, in one read transaction.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	st := Stats{ByState: map[State]int{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		var head struct {
			State State     `json:"state"`
			DueAt time.Time `json:"due_at"`
		}
		err := tx.Bucket(bucketRequests).ForEach(func(_, v []byte) error {
			head.State, head.DueAt = "", time.Time{}
			if err := json.Unmarshal(v, &head); err != nil {
				return err
			}
			st.ByState[head.State]++
			if awaitsRevert(head.State) {
				st.PendingReverts++
				if !head.DueAt.IsZero() && (st.NextRevert.IsZero() || head.DueAt.Before(st.NextRevert)) {
					st.NextRevert = head.DueAt
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return forEachOutbox(tx, func(it OutboxItem) bool {
			st.OutboxDepth++
			if st.OldestUndelivered.IsZero() || it.CreatedAt.Before(st.OldestUndelivered) {
				st.OldestUndelivered = it.CreatedAt
			}
			return true
		})
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}
