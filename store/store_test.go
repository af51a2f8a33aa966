package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, clk *clock) *Store {
	t.Helper()
	opts := Options{}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := Open(filepath.Join(t.TempDir(), "c2bot.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newReq(tenant string, st State) Request {
	return Request{Tenant: tenant, State: st, Requester: Person{ID: "U1", Name: "Ann"}}
}

func mustCreate(t testing.TB, s *Store, r Request, ch Changes) Request {
	t.Helper()
	got, err := s.Create(context.Background(), r, ch)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

// snapshot returns every bucket's contents, to prove that nothing changed.
func snapshot(t *testing.T, s *Store) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			m := map[string]string{}
			b := tx.Bucket(name)
			_ = b.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
			m["\x00sequence"] = fmt.Sprint(b.Sequence())
			out[string(name)] = m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkDueIndex verifies the due index holds exactly one entry per request
// with a DueAt, matching it.
func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), // clamped
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), // clamped
	}
	for i := 1; i < len(times); i++ {
		if string(timeKey(times[i-1])) >= string(timeKey(times[i])) {
			t.Errorf("timeKey(%v) does not sort before timeKey(%v)", times[i-1], times[i])
		}
	}
	for _, tm := range times[1:5] {
		if got := keyTime(timeKey(tm)); !got.Equal(tm) {
			t.Errorf("keyTime(timeKey(%v)) = %v", tm, got)
		}
	}
}

func TestFirstSeen(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, clk)
	const ttl = time.Hour
	seen := func(id string) bool {
		t.Helper()
		ok, err := s.FirstSeen(ctx, id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	count := func() (ids, byTime int) {
		_ = s.db.View(func(tx *bolt.Tx) error {
			ids = tx.Bucket(bucketSeen).Stats().KeyN
			byTime = tx.Bucket(bucketSeenByTime).Stats().KeyN
			return nil
		})
		return
	}

	if !seen("slack:Ev1") {
		t.Error("first delivery reported as seen")
	}
	if seen("slack:Ev1") {
		t.Error("redelivery reported as new")
	}
	clk.Add(ttl) // exactly ttl old: still a duplicate
	if seen("slack:Ev1") {
		t.Error("redelivery exactly ttl later reported as new")
	}
	clk.Add(time.Nanosecond) // older than ttl: forgotten
	if !seen("slack:Ev1") {
		t.Error("delivery older than ttl still reported as seen")
	}
	if seen("slack:Ev1") {
		t.Error("re-recorded delivery reported as new")
	}
	if n, m := count(); n != 1 || m != 1 {
		t.Errorf("after re-recording: %d ids, %d time entries, want 1 and 1", n, m)
	}

	// Pruning: 250 old ids go at most 100 per call.
	for i := 0; i < 250; i++ {
		seen(fmt.Sprint("teams:", i))
	}
	if n, _ := count(); n != 251 {
		t.Fatalf("%d ids, want 251", n)
	}
	clk.Add(ttl + time.Second)
	seen("new-1")
	if n, m := count(); n != 152 || m != 152 {
		t.Errorf("after one pruning call: %d ids, %d time entries, want 152", n, m)
	}
	seen("new-2")
	seen("new-3")
	if n, m := count(); n != 3 || m != 3 {
		t.Errorf("after three pruning calls: %d ids, %d time entries, want 3", n, m)
	}
	if !seen("teams:7") {
		t.Error("pruned id reported as seen")
	}

	if _, err := s.FirstSeen(ctx, "", ttl); err == nil {
		t.Error("FirstSeen accepted an empty id")
	}
	if _, err := s.FirstSeen(ctx, "x", 0); err == nil {
		t.Error("FirstSeen accepted a zero ttl")
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c2bot.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema = %v, want an error", err)
	}
}
