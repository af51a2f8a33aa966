package slack

import (
	"sync"
	"time"
)

// Redelivery memory. Slack retries an event up to three times within about
// an hour when it did not see an acknowledgement; the core also de-duplicates
// by Command.ID durably, so this only spares it the work.
const (
	dedupTTL = time.Hour
	dedupMax = 10000
)

// recent remembers delivery ids for a while, so a redelivered request is
// acknowledged without being run again.
type recent struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	seen  map[string]time.Time
	order []string
}

func newRecent(ttl time.Duration, max int, now func() time.Time) *recent {
	return &recent{ttl: ttl, max: max, now: now, seen: make(map[string]time.Time)}
}

// claim records id and reports true, or reports false when id was
// claimed within the ttl. An empty id is always claimed.
func (r *recent) claim(id string) bool {
	if id == "" {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if t, ok := r.seen[id]; ok && now.Sub(t) < r.ttl {
		return false
	}
	if _, ok := r.seen[id]; !ok {
		r.order = append(r.order, id)
	}
	r.seen[id] = now
	for len(r.order) > 0 {
		oldest := r.order[0]
		if t, ok := r.seen[oldest]; ok && len(r.order) <= r.max && now.Sub(t) < r.ttl {
			break
		}
		delete(r.seen, oldest)
		r.order = r.order[1:]
	}
	return true
}

// forget drops id, so a later delivery with it is run.
func (r *recent) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, id)
}
